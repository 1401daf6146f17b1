"""Work assignment: batches of images assigned to annotators, each annotator's queue, and the states of the work.

A batch assigns images (those of a list, or those an image filter selects, or N per annotator) round-robin to its
annotators: in ``normal`` mode each image to one annotator, in ``consensus`` mode each image to ``k`` different
annotators (consecutive ones, so the load stays balanced). Gold images and images still in open work (assigned and
not approved) are left out.

An assignment (an *item* to the annotator) moves ``todo -> submitted -> approved | rejected``, a rejected one back to
``submitted`` when fixed; every change is also a row of ``work_events`` (who, when) that is never edited. The
image's own review state (:mod:`visionloop.storage.review`) follows: submitted when the annotation is sent to
review, then the reviewer's decision.

:func:`next_item` is the annotator's queue: their rejected items first (oldest rejection first), then an open
honeypot, then their todo items in batch and position order. Before a todo item, a gold image is mixed in with
the batch's ``honeypot_rate``: the draw is seeded by the batch seed, the annotator and how many items they have
finished, so the same history gives the same queue; the gold image is one they have not answered yet, in an order
shuffled per annotator. A honeypot is an assignment of kind ``gold`` and looks like any other item: nothing the
queue returns tells them apart.

Submitting (scoring honeypots, merging consensus answers) lives in :mod:`visionloop.quality.review_flow`, which
needs the agreement algorithms of the quality layer; this module keeps the records.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.annotations import Annotation, annotation_to_payload
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.storage.gold import gold_image_ids
from visionloop.storage.models import ImageRow, ReviewEventRow, utcnow
from visionloop.storage.project import Project
from visionloop.storage.review import ReviewState, current_reviews, set_review_state, state_filter
from visionloop.storage.users import Role, get_user
from visionloop.storage.work_rows import AnswerRow, AssignmentRow, BatchRow, MergeRow, WorkEventRow

__all__ = [
    "CONSENSUS_AUTHOR",
    "MAX_ANNOTATORS",
    "MAX_BATCH_IMAGES",
    "Assignment",
    "Batch",
    "BatchMode",
    "ItemKind",
    "ItemState",
    "WorkItem",
    "accept_merge",
    "annotator_queue",
    "approve_images",
    "check_answer",
    "create_batch",
    "get_assignment",
    "get_batch",
    "honeypot_answers",
    "image_answers",
    "image_assignments",
    "item_events",
    "list_batches",
    "next_item",
    "open_or_gold_image_ids",
    "record_answer",
    "reject_image",
    "review_queue",
    "set_honeypot_rate",
    "set_item_state",
    "work_item",
]

MAX_ANNOTATORS = 200
CONSENSUS_AUTHOR = "consensus"
"""The author of a merged consensus annotation and of the approval of an agreed one (not a user)."""
MAX_BATCH_IMAGES = 100_000


class BatchMode(StrEnum):
    NORMAL = "normal"
    CONSENSUS = "consensus"


class ItemKind(StrEnum):
    NORMAL = "normal"
    CONSENSUS = "consensus"
    GOLD = "gold"


class ItemState(StrEnum):
    TODO = "todo"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Batch:
    id: int
    name: str
    mode: BatchMode
    k: int
    honeypot_rate: float
    agreement_threshold: float
    seed: int
    params: dict[str, Any]
    created_by: str
    created_at: datetime
    counts: dict[str, int]
    """Assignments per state (honeypots left out)."""
    by_annotator: dict[str, dict[str, int]]
    """The same per annotator (their progress)."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mode": self.mode.value, "k": self.k,
                "honeypot_rate": self.honeypot_rate, "agreement_threshold": self.agreement_threshold,
                "seed": self.seed, "params": self.params, "created_by": self.created_by,
                "created_at": self.created_at, "counts": self.counts, "by_annotator": self.by_annotator}


@dataclass(frozen=True)
class Assignment:
    """One assignment as stored (its ``kind`` is never shown to the annotator)."""

    id: int
    batch_id: int
    image_id: int
    annotator: str
    kind: ItemKind
    state: ItemState
    position: int
    updated_at: datetime


@dataclass(frozen=True)
class WorkItem:
    """What the annotator's queue hands out: the same fields for every kind of item.

    ``annotation`` is the payload to start from (the head annotation for normal work; the annotator's own last answer
    for a rejected consensus item; nothing for a fresh honeypot or consensus item) and ``base_revision`` the head it
    was read at (send it back on submit). ``review``: the latest rejection (reason, tags, comment) when rejected."""

    id: int
    image_id: int
    image_name: str
    width: int
    height: int
    batch: str
    state: str
    base_revision: int | None
    annotation: dict[str, Any] | None
    review: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {"item": self.id, "image": {"id": self.image_id, "name": self.image_name, "width": self.width,
                                           "height": self.height},
                "batch": self.batch, "state": self.state, "base_revision": self.base_revision,
                "annotation": self.annotation, "review": self.review}


def _assignment(row: Any) -> Assignment:
    return Assignment(id=row.id, batch_id=row.batch_id, image_id=row.image_id, annotator=row.annotator,
                      kind=ItemKind(row.kind), state=ItemState(row.state), position=row.position,
                      updated_at=_utc(row.updated_at))


_Counts = dict[str, dict[str, int]]


def _counts(conn: Connection, batch_ids: Sequence[int]) -> dict[int, _Counts]:
    """batch id -> annotator -> state -> assignments (honeypots left out)."""
    out: dict[int, _Counts] = {b: {} for b in batch_ids}
    for b, who, state, n in conn.execute(
            select(AssignmentRow.batch_id, AssignmentRow.annotator, AssignmentRow.state, func.count())
            .where(AssignmentRow.batch_id.in_(list(batch_ids)), AssignmentRow.kind != ItemKind.GOLD.value)
            .group_by(AssignmentRow.batch_id, AssignmentRow.annotator, AssignmentRow.state)):
        out[b].setdefault(who, {s.value: 0 for s in ItemState})[state] = n
    return out


def _batch(row: Any, by_annotator: _Counts) -> Batch:
    counts = {s.value: sum(c[s.value] for c in by_annotator.values()) for s in ItemState}
    return Batch(id=row.id, name=row.name, mode=BatchMode(row.mode), k=row.k, honeypot_rate=row.honeypot_rate,
                 agreement_threshold=row.agreement_threshold, seed=row.seed, params=row.params or {},
                 created_by=row.created_by, created_at=_utc(row.created_at), counts=counts,
                 by_annotator=dict(sorted(by_annotator.items())))


def _check_annotators(project: Project, annotators: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(annotators))
    if not names or len(names) > MAX_ANNOTATORS:
        raise AnnotationValidationError("annotators", expected=f"1..{MAX_ANNOTATORS} user names", actual=len(names))
    for name in names:
        user = get_user(project, name)
        if not user.role.allows(Role.ANNOTATOR):
            raise ConflictError(f"user {name!r} is a {user.role.value} and cannot annotate; give them the annotator "
                                "role first (visionloop user role)")
    return names


def _open_or_gold(conn: Connection, project: Project) -> set[int]:
    busy = set(conn.execute(select(AssignmentRow.image_id).where(
        AssignmentRow.kind != ItemKind.GOLD.value, AssignmentRow.state != ItemState.APPROVED.value)).scalars())
    return busy | set(gold_image_ids(project))


def open_or_gold_image_ids(project: Project) -> set[int]:
    """Images a new batch leaves out: gold images and images in open work (assigned and not approved)."""
    with project.engine.connect() as conn:
        return _open_or_gold(conn, project)


def _pick_images(conn: Connection, project: Project, image_ids: Sequence[int] | None,
                 where: Sequence[ColumnElement[bool]]) -> tuple[list[int], int]:
    """The batch's candidate images in id order, and how many the filter matched that were left out."""
    excluded = _open_or_gold(conn, project)
    if image_ids is not None:
        ids = list(dict.fromkeys(int(i) for i in image_ids))
        found: set[int] = set()
        for start in range(0, len(ids), 10_000):  # within SQLite's limit of bound parameters
            found.update(conn.execute(select(ImageRow.id).where(ImageRow.id.in_(ids[start:start + 10_000]),
                                                                ImageRow.deleted_at.is_(None))).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError("image", missing[0])
        taken = [i for i in ids if i in excluded]
        if taken:
            raise ConflictError(f"image {taken[0]} is gold or in open work of another batch ({len(taken)} such); "
                                "leave it out, or approve or finish that work first")
        return ids, 0
    matched = list(conn.execute(select(ImageRow.id).where(ImageRow.deleted_at.is_(None), *where)
                                .order_by(ImageRow.id)).scalars())
    ids = [i for i in matched if i not in excluded]
    return ids, len(matched) - len(ids)


def create_batch(
    project: Project, *, name: str, annotators: Sequence[str], created_by: str,
    image_ids: Sequence[int] | None = None, where: Sequence[ColumnElement[bool]] = (),
    per_annotator: int | None = None, mode: BatchMode | str = BatchMode.NORMAL, k: int = 1,
    honeypot_rate: float = 0.0, agreement_threshold: float = 0.8, seed: int = 0,
    describe: dict[str, Any] | None = None,
) -> Batch:
    """Create a batch and its assignments (one transaction).

    Images: ``image_ids``, or those matching the SQL conditions ``where`` on ``images`` (the image list's filters);
    ``per_annotator`` caps each annotator's share at N images (the first ones by id). ``mode`` consensus gives each
    image to ``k`` (2 or more) annotators. ``describe`` is kept in ``params`` to say how the images were chosen.
    """
    name = (name or "").strip()
    if not name or len(name) > 128:
        raise AnnotationValidationError("batch name", expected="1..128 characters", actual=repr(name)[:40])
    try:
        mode = BatchMode(mode)
    except ValueError:
        raise NotFoundError("batch mode", mode, choices=[m.value for m in BatchMode]) from None
    names = _check_annotators(project, annotators)
    m = len(names)
    k = k if mode is BatchMode.CONSENSUS else 1
    if mode is BatchMode.CONSENSUS and not 2 <= k <= m:
        raise AnnotationValidationError("consensus k", expected=f"2..{m} (the number of annotators)", actual=k)
    if not 0.0 <= honeypot_rate <= 1.0:
        raise AnnotationValidationError("honeypot rate", expected="0..1", actual=honeypot_rate)
    if not 0.0 <= agreement_threshold <= 1.0:
        raise AnnotationValidationError("agreement threshold", expected="0..1", actual=agreement_threshold)
    if per_annotator is not None and not 1 <= per_annotator <= MAX_BATCH_IMAGES:
        raise AnnotationValidationError("images per annotator", expected=f"1..{MAX_BATCH_IMAGES}",
                                        actual=per_annotator)
    with project.transaction() as conn:
        if conn.execute(select(BatchRow.id).where(BatchRow.name == name)).first() is not None:
            raise ConflictError(f"a batch named {name!r} exists; choose another name")
        ids, left_out = _pick_images(conn, project, image_ids, where)
        if per_annotator is not None:
            ids = ids[:math.ceil(per_annotator * m / k)]
        if not ids:
            raise ConflictError("no images to assign: the selection is empty, or every image in it is gold or "
                                "already in open work")
        if len(ids) * k > MAX_BATCH_IMAGES:
            raise ConflictError(f"a batch holds at most {MAX_BATCH_IMAGES} assignments ({len(ids) * k} asked); "
                                "split the work into several batches")
        params = {**(describe or {}), "images": len(ids), "left_out": left_out, "annotators": names}
        if per_annotator is not None:
            params["per_annotator"] = per_annotator
        batch_id = conn.execute(insert(BatchRow).values(
            name=name, mode=mode.value, k=k, honeypot_rate=honeypot_rate, agreement_threshold=agreement_threshold,
            seed=seed, params=params, created_by=created_by, created_at=utcnow())).inserted_primary_key[0]
        now = utcnow()
        positions = dict.fromkeys(names, 0)
        rows = []
        kind = ItemKind.CONSENSUS if mode is BatchMode.CONSENSUS else ItemKind.NORMAL
        for i, image_id in enumerate(ids):
            for j in range(k):
                who = names[(i * k + j) % m]
                rows.append({"batch_id": batch_id, "image_id": image_id, "annotator": who, "kind": kind.value,
                             "state": ItemState.TODO.value, "position": positions[who], "updated_at": now})
                positions[who] += 1
        new = conn.execute(insert(AssignmentRow).returning(AssignmentRow.id), rows).scalars().all()
        conn.execute(insert(WorkEventRow), [{"assignment_id": a, "state": ItemState.TODO.value,
                                             "author": created_by, "created_at": now} for a in new])
    return get_batch(project, batch_id)


def get_batch(project: Project, batch: int | str) -> Batch:
    """A batch by id or name."""
    cond = BatchRow.id == batch if isinstance(batch, int) else BatchRow.name == batch
    with project.engine.connect() as conn:
        row = conn.execute(select(BatchRow).where(cond)).first()
        if row is None:
            names = list(conn.execute(select(BatchRow.name).order_by(BatchRow.id).limit(20)).scalars())
            raise NotFoundError("batch", batch, choices=names)
        return _batch(row, _counts(conn, [row.id])[row.id])


def list_batches(project: Project, *, offset: int = 0, limit: int = 50) -> tuple[int, list[Batch]]:
    """(total, batches newest first) with their counts per state."""
    with project.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(BatchRow)).scalar_one()
        rows = conn.execute(select(BatchRow).order_by(BatchRow.id.desc()).offset(offset).limit(limit)).all()
        counts = _counts(conn, [r.id for r in rows])
    return total, [_batch(r, counts[r.id]) for r in rows]


def set_honeypot_rate(project: Project, batch: int | str, rate: float) -> Batch:
    """Set the share of a batch's queue that honeypots take (0..1); the draws already made stay."""
    if not 0.0 <= rate <= 1.0:
        raise AnnotationValidationError("honeypot rate", expected="0..1", actual=rate)
    found = get_batch(project, batch)
    with project.transaction() as conn:
        conn.execute(update(BatchRow).where(BatchRow.id == found.id).values(honeypot_rate=rate))
    return get_batch(project, found.id)


def set_item_state(conn: Connection, assignment_ids: Sequence[int], state: ItemState, *, author: str) -> None:
    """Move assignments to ``state`` and record each change (inside the caller's transaction)."""
    if not assignment_ids:
        return
    now = utcnow()
    conn.execute(update(AssignmentRow).where(AssignmentRow.id.in_(list(assignment_ids)))
                 .values(state=state.value, updated_at=now))
    conn.execute(insert(WorkEventRow), [{"assignment_id": a, "state": state.value, "author": author,
                                         "created_at": now} for a in assignment_ids])


def get_assignment(project: Project, item_id: int, *, annotator: str | None = None) -> Assignment:
    """An assignment by id; with ``annotator``, only theirs (another's is 'not found', as if it did not exist)."""
    q = select(AssignmentRow).where(AssignmentRow.id == item_id)
    if annotator is not None:
        q = q.where(AssignmentRow.annotator == annotator)
    with project.engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        raise NotFoundError("work item", item_id, hint="ask for the next one with GET .../work/next")
    return _assignment(row)


def image_assignments(project: Project, image_id: int, *, batch_id: int | None = None) -> list[Assignment]:
    """The non-honeypot assignments of an image (of one batch), oldest first."""
    q = select(AssignmentRow).where(AssignmentRow.image_id == image_id, AssignmentRow.kind != ItemKind.GOLD.value)
    if batch_id is not None:
        q = q.where(AssignmentRow.batch_id == batch_id)
    with project.engine.connect() as conn:
        return [_assignment(r) for r in conn.execute(q.order_by(AssignmentRow.id))]


def item_events(project: Project, item_id: int) -> list[dict[str, Any]]:
    """Every state change of an assignment, oldest first: state, author, created_at."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(WorkEventRow).where(WorkEventRow.assignment_id == item_id)
                            .order_by(WorkEventRow.id)).all()
    return [{"state": r.state, "author": r.author, "created_at": _utc(r.created_at)} for r in rows]


def check_answer(project: Project, image_id: int, annotation: Annotation) -> Annotation:
    """An answer checked like a saved annotation (the project's task, active classes, inside the image), fitted."""
    with project.engine.connect() as conn:
        size = project._sizes(conn, [image_id])[image_id]
        return project._check(annotation, project.ontology(conn), size)


def record_answer(conn: Connection, item: Assignment, payload: dict[str, Any], score: dict[str, Any] | None) -> int:
    """Keep an annotator's own answer of a honeypot or consensus item (never the head annotation or the gold)."""
    return conn.execute(insert(AnswerRow).values(
        assignment_id=item.id, image_id=item.image_id, annotator=item.annotator, kind=item.kind.value,
        payload=payload, score=score, created_at=utcnow())).inserted_primary_key[0]


def image_answers(project: Project, image_id: int) -> dict[str, Any]:
    """For the reviewer of a consensus image: each annotator's latest answer (payload, score) and the merges
    (agreement, the head revision each became, when), oldest first. Honeypot answers are left out."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(AnswerRow, BatchRow.name.label("batch"))
                            .join(AssignmentRow, AssignmentRow.id == AnswerRow.assignment_id)
                            .join(BatchRow, BatchRow.id == AssignmentRow.batch_id)
                            .where(AnswerRow.image_id == image_id, AnswerRow.kind == ItemKind.CONSENSUS.value)
                            .order_by(AnswerRow.id)).all()
        merges = conn.execute(select(MergeRow).where(MergeRow.image_id == image_id).order_by(MergeRow.id)).all()
    latest = {r.assignment_id: r for r in rows}
    return {"answers": [{"item": r.assignment_id, "batch": r.batch, "annotator": r.annotator, "annotation": r.payload,
                         "score": r.score, "created_at": _utc(r.created_at)} for r in latest.values()],
            "merges": [{"agreement": m.agreement, "revision": m.revision, "annotators": m.detail.get("annotators"),
                        "agreed": m.detail.get("agreed"), "created_at": _utc(m.created_at)} for m in merges]}


def honeypot_answers(project: Project, annotator: str, *, offset: int = 0,
                     limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of an annotator's honeypot answers, newest first: image, answer, score (for reviewers: which
    gold images they got wrong, and how)."""
    q = select(AnswerRow).where(AnswerRow.annotator == annotator, AnswerRow.kind == ItemKind.GOLD.value)
    with project.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        rows = conn.execute(q.order_by(AnswerRow.id.desc()).offset(offset).limit(limit)).all()
    return total, [{"item": r.assignment_id, "image_id": r.image_id, "annotation": r.payload, "score": r.score,
                    "created_at": _utc(r.created_at)} for r in rows]


def _last_answer(conn: Connection, item_id: int) -> dict[str, Any] | None:
    return conn.execute(select(AnswerRow.payload).where(AnswerRow.assignment_id == item_id)
                        .order_by(AnswerRow.id.desc()).limit(1)).scalar()


def _draw_gold(conn: Connection, project: Project, annotator: str, todo: Assignment) -> Assignment | None:
    """A honeypot before ``todo``, or None (see the module docstring for the draw)."""
    batch = conn.execute(select(BatchRow).where(BatchRow.id == todo.batch_id)).one()
    if batch.honeypot_rate <= 0:
        return None
    done = conn.execute(select(func.count()).select_from(AssignmentRow).where(
        AssignmentRow.annotator == annotator, AssignmentRow.batch_id == batch.id,
        AssignmentRow.state != ItemState.TODO.value)).scalar_one()
    if random.Random(f"{batch.seed}:{annotator}:{done}").random() >= batch.honeypot_rate:
        return None
    seen = set(conn.execute(select(AssignmentRow.image_id).where(AssignmentRow.annotator == annotator)).scalars())
    candidates = [i for i in gold_image_ids(project, not_by=annotator) if i not in seen]  # nobody checks themselves
    if not candidates:
        return None
    random.Random(f"{batch.seed}:{annotator}").shuffle(candidates)
    try:
        with conn.begin_nested():
            new = conn.execute(insert(AssignmentRow).values(
                batch_id=batch.id, image_id=candidates[0], annotator=annotator, kind=ItemKind.GOLD.value,
                state=ItemState.TODO.value, position=todo.position, updated_at=utcnow())).inserted_primary_key[0]
            conn.execute(insert(WorkEventRow).values(assignment_id=new, state=ItemState.TODO.value,
                                                     author=annotator, created_at=utcnow()))
    except IntegrityError:  # drawn meanwhile by a parallel request of the same annotator
        return None
    return _assignment(conn.execute(select(AssignmentRow).where(AssignmentRow.id == new)).one())


def next_item(project: Project, annotator: str) -> WorkItem | None:
    """The annotator's next item (see the module docstring), or None when their queue is empty."""
    mine = (select(AssignmentRow).join(ImageRow, ImageRow.id == AssignmentRow.image_id)
            .where(AssignmentRow.annotator == annotator, ImageRow.deleted_at.is_(None)))
    with project.transaction() as conn:
        row = conn.execute(mine.where(AssignmentRow.state == ItemState.REJECTED.value)
                           .order_by(AssignmentRow.updated_at, AssignmentRow.id).limit(1)).first()
        if row is None:
            row = conn.execute(mine.where(AssignmentRow.state == ItemState.TODO.value,
                                          AssignmentRow.kind == ItemKind.GOLD.value)
                               .order_by(AssignmentRow.id).limit(1)).first()
        if row is None:
            row = conn.execute(mine.where(AssignmentRow.state == ItemState.TODO.value)
                               .order_by(AssignmentRow.batch_id, AssignmentRow.position, AssignmentRow.id)
                               .limit(1)).first()
            if row is None:
                return None
            item = _draw_gold(conn, project, annotator, _assignment(row)) or _assignment(row)
        else:
            item = _assignment(row)
        return _work_item(conn, project, item)


def work_item(project: Project, item_id: int, *, annotator: str) -> WorkItem:
    """One of the annotator's own items as the queue hands it out (to open it again, e.g. after a reload)."""
    item = get_assignment(project, item_id, annotator=annotator)
    with project.engine.connect() as conn:
        return _work_item(conn, project, item)


def annotator_queue(project: Project, annotator: str, *, limit: int = 50) -> dict[str, Any]:
    """What an annotator sees of their own work: their items per state (all and per batch, honeypots left out like
    in the batches' counts, so no count tells a honeypot apart) and their rejected items to fix, oldest rejection
    first (the order the queue hands them out), with the reviewer's reason and tags."""
    mine = (AssignmentRow.annotator == annotator, AssignmentRow.kind != ItemKind.GOLD.value,
            ImageRow.deleted_at.is_(None))
    with project.engine.connect() as conn:
        by_batch: dict[str, dict[str, int]] = {}
        for name, state, n in conn.execute(
                select(BatchRow.name, AssignmentRow.state, func.count())
                .join(BatchRow, BatchRow.id == AssignmentRow.batch_id)
                .join(ImageRow, ImageRow.id == AssignmentRow.image_id).where(*mine)
                .group_by(BatchRow.id, BatchRow.name, AssignmentRow.state).order_by(BatchRow.id)):
            by_batch.setdefault(name, {s.value: 0 for s in ItemState})[state] = n
        rejected = conn.execute(
            select(AssignmentRow.id, AssignmentRow.image_id, AssignmentRow.updated_at, ImageRow.name,
                   BatchRow.name.label("batch"))
            .join(BatchRow, BatchRow.id == AssignmentRow.batch_id)
            .join(ImageRow, ImageRow.id == AssignmentRow.image_id)
            .where(*mine, AssignmentRow.state == ItemState.REJECTED.value)
            .order_by(AssignmentRow.updated_at, AssignmentRow.id).limit(limit)).all()
    reviews = current_reviews(project, [r.image_id for r in rejected])
    counts = {s.value: sum(c[s.value] for c in by_batch.values()) for s in ItemState}
    items = []
    for r in rejected:
        event = reviews.get(r.image_id)
        told = event is not None and event.state is ReviewState.REJECTED
        items.append({"item": r.id, "image_id": r.image_id, "name": r.name, "batch": r.batch,
                      "rejected_at": _utc(r.updated_at), "reason": event.reason if told else None,
                      "tags": list(event.tags) if told else [], "author": event.author if told else None})
    return {"counts": counts, "batches": [{"batch": b, "counts": c} for b, c in by_batch.items()],
            "rejected": items}


def _work_item(conn: Connection, project: Project, item: Assignment) -> WorkItem:
    image = conn.execute(select(ImageRow.name, ImageRow.width, ImageRow.height)
                         .where(ImageRow.id == item.image_id)).one()
    batch = conn.execute(select(BatchRow.name).where(BatchRow.id == item.batch_id)).scalar_one()
    base, payload = None, None
    if item.kind is ItemKind.NORMAL:
        head, ann = project.head(item.image_id)
        base, payload = head, (annotation_to_payload(ann) if ann is not None else None)
    elif item.state is ItemState.REJECTED:
        payload = _last_answer(conn, item.id)
    review = None
    if item.state is ItemState.REJECTED:
        event = current_reviews(project, [item.image_id]).get(item.image_id)
        if event is not None and event.state is ReviewState.REJECTED:
            review = {"reason": event.reason, "tags": list(event.tags), "comment": event.comment,
                      "author": event.author, "created_at": event.created_at}
    return WorkItem(id=item.id, image_id=item.image_id, image_name=image.name, width=image.width,
                    height=image.height, batch=batch, state=item.state.value, base_revision=base,
                    annotation=payload, review=review)


def review_queue(project: Project, *, offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """(total, page) of images sent to review, oldest submission first: image, batch, annotators, when, and for a
    consensus image its agreement."""
    waiting = select(ImageRow.id).where(state_filter(ReviewState.SUBMITTED), ImageRow.deleted_at.is_(None))
    submitted = (select(ReviewEventRow.image_id, func.max(ReviewEventRow.created_at).label("at"))
                 .where(ReviewEventRow.image_id.in_(waiting), ReviewEventRow.state == ReviewState.SUBMITTED.value)
                 .group_by(ReviewEventRow.image_id).subquery())
    with project.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(submitted)).scalar_one()
        page = conn.execute(select(submitted.c.image_id, submitted.c.at, ImageRow.name)
                            .join(ImageRow, ImageRow.id == submitted.c.image_id)
                            .order_by(submitted.c.at, submitted.c.image_id).offset(offset).limit(limit)).all()
        ids = [r.image_id for r in page]
        work: dict[int, list[Any]] = {}
        for a in conn.execute(select(AssignmentRow.image_id, AssignmentRow.annotator, AssignmentRow.kind,
                                     AssignmentRow.id, BatchRow.name)
                              .join(BatchRow, BatchRow.id == AssignmentRow.batch_id)
                              .where(AssignmentRow.image_id.in_(ids), AssignmentRow.kind != ItemKind.GOLD.value,
                                     AssignmentRow.state == ItemState.SUBMITTED.value)
                              .order_by(AssignmentRow.id)):
            work.setdefault(a.image_id, []).append(a)
        merges = dict(conn.execute(select(MergeRow.image_id, MergeRow.agreement)
                                   .where(MergeRow.image_id.in_(ids)).order_by(MergeRow.id)).all())
    return total, [{"image_id": r.image_id, "name": r.name, "submitted_at": _utc(r.at),
                    "items": [a.id for a in work.get(r.image_id, [])],
                    "annotators": [a.annotator for a in work.get(r.image_id, [])],
                    "batch": work[r.image_id][0].name if r.image_id in work else None,
                    "consensus": any(a.kind == ItemKind.CONSENSUS.value for a in work.get(r.image_id, [])),
                    "agreement": merges.get(r.image_id)} for r in page]


def _decide(project: Project, image_ids: Sequence[int], state: ItemState, *, author: str, reason: str | None,
            tags: Sequence[str] | None, comment: dict[str, Any] | None,
            before: Callable[[Connection], None] | None = None) -> int:
    """Record the reviewer's decision on submitted images (``before(conn)`` runs first in the same transaction)."""
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    current = current_reviews(project, ids)
    not_submitted = [i for i in ids if i not in current or current[i].state is not ReviewState.SUBMITTED]
    if not_submitted:
        raise ConflictError(f"image {not_submitted[0]} is not waiting for review (only submitted images can be "
                            f"{state.value})")
    with project.transaction() as conn:
        if before is not None:
            before(conn)
        changed = set_review_state(project, ids, ReviewState(state.value), author=author, reason=reason, tags=tags,
                                   comment=comment, conn=conn)
        items = list(conn.execute(select(AssignmentRow.id).where(
            AssignmentRow.image_id.in_(ids), AssignmentRow.kind != ItemKind.GOLD.value,
            AssignmentRow.state == ItemState.SUBMITTED.value)).scalars())
        set_item_state(conn, items, state, author=author)
    return changed


def approve_images(project: Project, image_ids: Sequence[int], *, author: str) -> int:
    """Approve submitted images (and their submitted assignments); returns how many changed."""
    return _decide(project, image_ids, ItemState.APPROVED, author=author, reason=None, tags=None, comment=None)


def accept_merge(project: Project, image_id: int, *, author: str) -> dict[str, int]:
    """Approve a consensus image waiting for review with its latest merge as its annotation: when the head was
    edited after the merge, the merged annotation becomes the head again (a revision by ``author``) in the same
    transaction. Returns ``{"changed", "revision"}`` (the approved head revision)."""
    with project.engine.connect() as conn:
        merged_at = conn.execute(select(MergeRow.revision).where(MergeRow.image_id == image_id)
                                 .order_by(MergeRow.id.desc()).limit(1)).scalar()
    if merged_at is None:
        raise ConflictError(f"image {image_id} has no consensus merge to accept; approve it instead")
    head, _ = project.head(image_id)
    revision = head
    merged = next(r.annotation for r in project.history(image_id) if r.revision == merged_at)

    def restore(conn: Connection) -> None:
        nonlocal revision
        if head != merged_at:
            revision = project.save_annotation(image_id, merged, base_revision=head, author=author, conn=conn)

    changed = _decide(project, [image_id], ItemState.APPROVED, author=author, reason=None, tags=None, comment=None,
                      before=restore)
    return {"changed": changed, "revision": revision}


def reject_image(
    project: Project, image_id: int, *, author: str, reason: str, tags: Sequence[str] | None = None,
    comment: dict[str, Any] | None = None,
) -> int:
    """Reject a submitted image with a reason, issue tags and an optional comment geometry; its assignments go back
    to their annotators, first in their queues."""
    return _decide(project, [image_id], ItemState.REJECTED, author=author, reason=reason, tags=tags,
                   comment=comment)
