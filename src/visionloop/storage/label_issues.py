"""Label-error candidates: each run of the finder, its ranked candidates, and what people decided about each one.

A *finder run* (``label_issue_runs``) records when it ran, who started it, on which dataset version and with which
model run or package, the method and its parameters, and a summary. Its *candidates* (``label_issues``) are the
images (and, for detection, the boxes) that probably carry a wrong label, ranked: rank 1 is the likeliest error.
Every candidate has a state::

    open -> fixed | dismissed      (and back: any state may follow any other)

The current state, who set it and when sit on the candidate's row (so the list filters fast); every change is also
appended to ``label_issue_events`` and never edited, so the history says who decided what and when.

Labels are class ids of the project's ontology (ids are stable through renames); :func:`list_label_issues` adds their
current names. What ``given`` and ``suggested`` mean per kind:

===============  ==================================  =====================================================
kind             given_class_id                      suggested_class_id
===============  ==================================  =====================================================
``wrong_label``  the image's class                   the class the model believes
``wrong_tag``    a tag the image has (remove it)     None; or None and a tag it lacks (add it)
``wrong_class``  the box's class                     the class the model believes for the box
``missing_box``  None                                the class of the predicted box (``box``) to add
``loose_box``    the box's class                     the same class, with the tighter box in ``box``
===============  ==================================  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.annotations import annotation_from_payload
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.storage.models import AnnotationRow, Base, ClassRow, ImageRow, RevisionRow, utcnow
from visionloop.storage.project import Project

__all__ = [
    "MAX_NOTE",
    "MAX_PAGE",
    "IssueKind",
    "IssueState",
    "LabelIssue",
    "LabelIssueEvent",
    "LabelIssueEventRow",
    "LabelIssuePage",
    "LabelIssueRow",
    "LabelIssueRun",
    "LabelIssueRunRow",
    "NewLabelIssue",
    "fix_label_issue",
    "fixed_payload",
    "get_label_issue",
    "get_label_issue_run",
    "label_issue_history",
    "list_label_issue_runs",
    "list_label_issues",
    "save_label_issue_run",
    "set_label_issue_state",
]

MAX_PAGE = 1000
MAX_NOTE = 2000


class IssueKind(StrEnum):
    WRONG_LABEL = "wrong_label"
    WRONG_TAG = "wrong_tag"
    WRONG_CLASS = "wrong_class"
    MISSING_BOX = "missing_box"
    LOOSE_BOX = "loose_box"

    @classmethod
    def parse(cls, value: str | IssueKind) -> IssueKind:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError("label issue kind", value, choices=[k.value for k in cls]) from None


class IssueState(StrEnum):
    OPEN = "open"
    FIXED = "fixed"
    DISMISSED = "dismissed"

    @classmethod
    def parse(cls, value: str | IssueState) -> IssueState:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError("label issue state", value, choices=[s.value for s in cls]) from None


class LabelIssueRunRow(Base):
    """One run of the label-error finder (migration 0007)."""

    __tablename__ = "label_issue_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[str | None] = mapped_column(String(128))
    """Name of the dataset version the finder read; None: the project's current annotations."""
    source: Mapped[str | None] = mapped_column(String(256))
    """The model run or package whose predictions gave the detection candidates; None when none was given."""
    method: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LabelIssueRow(Base):
    """One ranked candidate of a finder run, with its current state (migration 0007)."""

    __tablename__ = "label_issues"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("label_issue_runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    box_index: Mapped[int | None] = mapped_column(Integer)
    """Index of the box in the annotation revision ``revision_id`` (detection); None for image-level candidates."""
    revision_id: Mapped[int | None] = mapped_column(Integer)
    """The annotation revision the candidate was found in (a later edit may have fixed it already)."""
    kind: Mapped[str] = mapped_column(String(16))
    given_class_id: Mapped[int | None] = mapped_column(Integer)
    suggested_class_id: Mapped[int | None] = mapped_column(Integer)
    box: Mapped[list[Any] | None] = mapped_column(JSON)
    """xyxy pixels of the predicted box (missing or loose boxes); None otherwise."""
    score: Mapped[float] = mapped_column(Float)
    """How likely the label is wrong, in 0..1 (higher: likelier)."""
    rank: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    state_by: Mapped[str | None] = mapped_column(String(128))
    state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_label_issues_run", "run_id", "state", "rank"),)


class LabelIssueEventRow(Base):
    """One change of a candidate's state, never updated (migration 0007)."""

    __tablename__ = "label_issue_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("label_issues.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_label_issue_events_issue", "issue_id", "id"),)


@dataclass(frozen=True)
class NewLabelIssue:
    """A candidate to save; ``score`` in 0..1, higher is likelier an error."""

    image_id: int
    kind: IssueKind | str
    score: float
    given_class_id: int | None = None
    suggested_class_id: int | None = None
    box_index: int | None = None
    revision_id: int | None = None
    box: Sequence[float] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelIssueRun:
    id: int
    created_at: datetime
    created_by: str
    version: str | None
    source: str | None
    method: str
    params: dict[str, Any]
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "version": self.version, "source": self.source, "method": self.method, "params": self.params,
                "summary": self.summary}


@dataclass(frozen=True)
class LabelIssue:
    id: int
    run_id: int
    image_id: int
    image_name: str
    kind: IssueKind
    rank: int
    score: float
    given_class_id: int | None
    given: str | None
    suggested_class_id: int | None
    suggested: str | None
    box_index: int | None
    revision_id: int | None
    box: list[float] | None
    details: dict[str, Any]
    state: IssueState
    state_by: str | None
    state_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "run_id": self.run_id, "rank": self.rank, "kind": self.kind.value,
                "image_id": self.image_id, "image": self.image_name, "box_index": self.box_index,
                "revision_id": self.revision_id, "given": self.given, "given_class_id": self.given_class_id,
                "suggested": self.suggested, "suggested_class_id": self.suggested_class_id, "box": self.box,
                "score": self.score, "details": self.details, "state": self.state.value, "state_by": self.state_by,
                "state_at": self.state_at.isoformat() if self.state_at else None}


@dataclass(frozen=True)
class LabelIssuePage:
    items: list[LabelIssue]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class LabelIssueEvent:
    issue_id: int
    state: IssueState
    note: str | None
    author: str
    created_at: datetime


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _run(row: Any) -> LabelIssueRun:
    return LabelIssueRun(id=row.id, created_at=_utc(row.created_at) or utcnow(), created_by=row.created_by,
                         version=row.version, source=row.source, method=row.method, params=row.params or {},
                         summary=row.summary or {})


def _check_issue(n: int, issue: NewLabelIssue) -> dict[str, Any]:
    kind = IssueKind.parse(issue.kind)
    score = float(issue.score)
    if not 0.0 <= score <= 1.0:
        raise AnnotationValidationError(f"label issue {n} score", expected="a number in 0..1", actual=score)
    box = None if issue.box is None else [float(v) for v in issue.box]
    if box is not None and len(box) != 4:
        raise AnnotationValidationError(f"label issue {n} box", expected="4 numbers (xyxy pixels)", actual=box)
    return {"image_id": int(issue.image_id), "kind": kind.value, "score": score,
            "given_class_id": issue.given_class_id, "suggested_class_id": issue.suggested_class_id,
            "box_index": issue.box_index, "revision_id": issue.revision_id, "box": box,
            "details": dict(issue.details)}


def save_label_issue_run(
    project: Project, issues: Sequence[NewLabelIssue], *, created_by: str, method: str,
    params: dict[str, Any] | None = None, version: str | None = None, source: str | None = None,
    summary: dict[str, Any] | None = None,
) -> LabelIssueRun:
    """Store a finder run and its candidates (one transaction), ranked in the order given (first: rank 1), every
    one ``open``. NotFoundError names the first image id that is not in the project."""
    rows = [_check_issue(n, issue) for n, issue in enumerate(issues)]
    ids = sorted({r["image_id"] for r in rows})
    with project.transaction() as conn:
        found: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found |= set(conn.execute(select(ImageRow.id).where(ImageRow.id.in_(chunk))).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError("image", missing[0])
        run_id = conn.execute(insert(LabelIssueRunRow).values(
            created_at=utcnow(), created_by=created_by, version=version, source=source, method=method,
            params=params or {}, summary={"candidates": len(rows), **(summary or {})})).inserted_primary_key[0]
        if rows:
            conn.execute(insert(LabelIssueRow), [
                {**r, "run_id": run_id, "rank": rank, "state": IssueState.OPEN.value}
                for rank, r in enumerate(rows, start=1)])
    return get_label_issue_run(project, run_id)


def get_label_issue_run(project: Project, run_id: int | None = None) -> LabelIssueRun:
    """A finder run by id; the newest one when ``run_id`` is None."""
    query = select(LabelIssueRunRow)
    query = query.order_by(LabelIssueRunRow.id.desc()).limit(1) if run_id is None else query.where(
        LabelIssueRunRow.id == run_id)
    with project.engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFoundError("label-error run", "newest" if run_id is None else run_id,
                            hint="find candidates first: visionloop label-errors PROJECT")
    return _run(row)


def list_label_issue_runs(project: Project, *, limit: int = 50) -> list[LabelIssueRun]:
    """Newest first."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(LabelIssueRunRow).order_by(LabelIssueRunRow.id.desc()).limit(limit)).all()
    return [_run(r) for r in rows]


def _issue(row: Any, names: dict[int, str], image_name: str) -> LabelIssue:
    def name(cid: int | None) -> str | None:
        return None if cid is None else names.get(cid, str(cid))

    return LabelIssue(
        id=row.id, run_id=row.run_id, image_id=row.image_id, image_name=image_name, kind=IssueKind(row.kind),
        rank=row.rank, score=row.score, given_class_id=row.given_class_id, given=name(row.given_class_id),
        suggested_class_id=row.suggested_class_id, suggested=name(row.suggested_class_id), box_index=row.box_index,
        revision_id=row.revision_id, box=row.box, details=row.details or {}, state=IssueState(row.state),
        state_by=row.state_by, state_at=_utc(row.state_at))


def list_label_issues(
    project: Project, *, run_id: int | None = None, states: Sequence[IssueState | str] | None = None,
    kinds: Sequence[IssueKind | str] | None = None, offset: int = 0, limit: int = 100,
) -> LabelIssuePage:
    """A page of a run's candidates by rank (the newest run when ``run_id`` is None), filtered by state and kind."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise AnnotationValidationError("label issue page", expected=f"0 <= offset and 1 <= limit <= {MAX_PAGE}",
                                        actual=f"offset={offset}, limit={limit}")
    run = get_label_issue_run(project, run_id)
    where = [LabelIssueRow.run_id == run.id]
    if states:
        where.append(LabelIssueRow.state.in_([IssueState.parse(s).value for s in states]))
    if kinds:
        where.append(LabelIssueRow.kind.in_([IssueKind.parse(k).value for k in kinds]))
    with project.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(LabelIssueRow).where(*where)).scalar_one()
        rows = conn.execute(select(LabelIssueRow.__table__, ImageRow.name.label("image_name"))
                            .join(ImageRow, ImageRow.id == LabelIssueRow.image_id).where(*where)
                            .order_by(LabelIssueRow.rank).offset(offset).limit(limit)).all()
        names = {r.id: r.name for r in conn.execute(select(ClassRow.id, ClassRow.name))}
    return LabelIssuePage(items=[_issue(r, names, r.image_name) for r in rows], total=int(total),
                          offset=offset, limit=limit)


def _set_states(conn: Any, ids: list[int], state: IssueState, author: str, note: str | None) -> int:
    current = {r.id: r.state for r in conn.execute(select(LabelIssueRow.id, LabelIssueRow.state)
                                                   .where(LabelIssueRow.id.in_(ids)))}
    missing = [i for i in ids if i not in current]
    if missing:
        raise NotFoundError("label issue", missing[0], hint="list them with visionloop label-errors PROJECT")
    changing = [i for i in ids if current[i] != state.value]
    if changing:
        now = utcnow()
        conn.execute(update(LabelIssueRow).where(LabelIssueRow.id.in_(changing))
                     .values(state=state.value, state_by=author, state_at=now))
        conn.execute(insert(LabelIssueEventRow), [
            {"issue_id": i, "state": state.value, "note": note, "author": author, "created_at": now}
            for i in changing])
    return len(changing)


def _note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise AnnotationValidationError("label issue note", expected=f"at most {MAX_NOTE} characters",
                                        actual=len(note))
    return note


def set_label_issue_state(
    project: Project, issue_ids: Sequence[int], state: IssueState | str, *, author: str, note: str | None = None,
) -> int:
    """Set the state of candidates (one transaction) and log each change; candidates already in that state are left
    as they are. Returns how many changed. NotFoundError names the first id that is not a candidate."""
    state, note = IssueState.parse(state), _note(note)
    ids = list(dict.fromkeys(int(i) for i in issue_ids))
    with project.transaction() as conn:
        return _set_states(conn, ids, state, author, note)


def get_label_issue(project: Project, issue_id: int) -> LabelIssue:
    """One candidate by id, with its class names."""
    with project.engine.connect() as conn:
        row = conn.execute(select(LabelIssueRow.__table__, ImageRow.name.label("image_name"))
                           .join(ImageRow, ImageRow.id == LabelIssueRow.image_id)
                           .where(LabelIssueRow.id == issue_id)).first()
        if row is None:
            raise NotFoundError("label issue", issue_id, hint="list them with GET .../label-errors")
        names = {r.id: r.name for r in conn.execute(select(ClassRow.id, ClassRow.name))}
    return _issue(row, names, row.image_name)


def _not_applicable(issue: LabelIssue, why: str) -> ConflictError:
    return ConflictError(f"label issue {issue.id} ({issue.kind.value}) cannot be applied: {why}; open image "
                         f"{issue.image_id} in the editor and fix it there, then mark the candidate fixed")


def fixed_payload(payload: dict[str, Any], issue: LabelIssue) -> dict[str, Any]:
    """The annotation ``payload`` (as stored) with the candidate's suggestion applied (see the table at the top):
    a new class for the image or a box, a tag removed or added, a predicted box added, a box tightened. Raises
    :class:`ConflictError` when the payload does not fit the candidate (another type, the box is gone) or the fix
    needs a drawing (a mask for an instance)."""
    kind, out = issue.kind, dict(payload)
    kind_type = {IssueKind.WRONG_LABEL: ("label",), IssueKind.WRONG_TAG: ("tags",),
                 IssueKind.WRONG_CLASS: ("boxes", "instances"), IssueKind.MISSING_BOX: ("boxes",),
                 IssueKind.LOOSE_BOX: ("boxes",)}[kind]
    if payload.get("type") not in kind_type:
        raise _not_applicable(issue, f"the annotation is of type {payload.get('type')!r}, not {' or '.join(kind_type)}"
                              + (" (a mask must be drawn)" if payload.get("type") == "instances" else ""))
    if kind is IssueKind.WRONG_LABEL:
        if issue.suggested_class_id is None:
            raise _not_applicable(issue, "it suggests no class")
        return {**out, "class_id": issue.suggested_class_id}
    if kind is IssueKind.WRONG_TAG:
        tags = set(payload.get("class_ids", []))
        tags.discard(issue.given_class_id)
        if issue.suggested_class_id is not None:
            tags.add(issue.suggested_class_id)
        return {**out, "class_ids": sorted(tags)}
    xyxy = [list(b) for b in payload.get("xyxy", [])]
    classes = list(payload.get("class_id", []))
    if kind is IssueKind.MISSING_BOX:
        if issue.box is None or issue.suggested_class_id is None:
            raise _not_applicable(issue, "it has no predicted box")
        out.update(xyxy=[*xyxy, list(issue.box)], class_id=[*classes, issue.suggested_class_id])
        if "score" in out:
            out["score"] = [*out["score"], 1.0]
        if "attributes" in out:
            out["attributes"] = [*out["attributes"], {}]
        if "track_id" in out:
            out.pop("track_id")  # a track id for the new box is not known: the tracks are dropped, not invented
        return out
    i = issue.box_index
    if i is None or not 0 <= i < len(xyxy):
        raise _not_applicable(issue, f"box {i} is not in the annotation")
    if kind is IssueKind.WRONG_CLASS:
        if issue.suggested_class_id is None:
            raise _not_applicable(issue, "it suggests no class")
        classes[i] = issue.suggested_class_id
        return {**out, "class_id": classes}
    if issue.box is None:
        raise _not_applicable(issue, "it has no tighter box")
    xyxy[i] = list(issue.box)
    return {**out, "xyxy": xyxy}


def fix_label_issue(
    project: Project, issue_id: int, *, base_revision: int | None, author: str, note: str | None = None,
) -> tuple[LabelIssue, int]:
    """Apply a candidate's suggestion to its image's head annotation as a new revision by ``author`` and mark it
    fixed (one transaction). ``base_revision`` is the head revision number the person saw:
    :class:`~visionloop.core.errors.StaleRevisionError` when the head moved since. :class:`ConflictError` when the
    head is not the revision the candidate was found in (edited since the finder ran: box indexes may point
    elsewhere) or the suggestion does not apply. Returns the candidate (now fixed) and the new head revision."""
    note = _note(note)
    issue = get_label_issue(project, issue_id)
    with project.transaction() as conn:
        row = conn.execute(select(AnnotationRow.head, AnnotationRow.head_revision_id, RevisionRow.payload)
                           .join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
                           .where(AnnotationRow.image_id == issue.image_id)).first()
        if row is None:
            raise _not_applicable(issue, "the image has no annotation any more")
        if issue.revision_id is not None and row.head_revision_id != issue.revision_id:
            raise ConflictError(
                f"image {issue.image_id} was edited since label issue {issue.id} was found (head revision "
                f"{row.head}); check the image in the editor, then mark the candidate fixed or dismissed, or run "
                "the label-error finder again")
        annotation = annotation_from_payload(fixed_payload(row.payload, issue))
        revision = project.save_annotation(issue.image_id, annotation, base_revision=base_revision,
                                           author=author, conn=conn)
        _set_states(conn, [issue.id], IssueState.FIXED, author, note)
    return get_label_issue(project, issue_id), revision


def label_issue_history(project: Project, issue_id: int) -> list[LabelIssueEvent]:
    """Every state change of a candidate, oldest first."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(LabelIssueEventRow).where(LabelIssueEventRow.issue_id == issue_id)
                            .order_by(LabelIssueEventRow.id)).all()
    return [LabelIssueEvent(issue_id=r.issue_id, state=IssueState(r.state), note=r.note, author=r.author,
                            created_at=_utc(r.created_at) or utcnow()) for r in rows]
