"""Recorded ontology operations: rename, merge and split classes.

Each operation is one database transaction that

1. records a row in ``ontology_ops`` (kind, parameters, author, and what it rewrote),
2. changes the class list (rename a class, retire merged classes, add split targets), and
3. rewrites the affected annotations by appending a NEW revision to each (author ``ontology:<kind>#<op id>``)
   through :meth:`Project.save_annotation`, so old revisions stay and a concurrent edit is refused, not lost.

A failure anywhere (unknown class, bad assignment, a concurrent edit) rolls the whole operation back.

Class ids never change meaning: a rename keeps the id; a merge retires the source ids (``active=False``, reserved
forever) and rewrites their instances to the target's id; a split adds classes and moves the instances you assign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from visionloop.core.annotations import (
    Annotation,
    Boxes,
    Instances,
    Label,
    SemanticMask,
    Tags,
    annotation_from_payload,
)
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.core.ontology import Ontology, remap_annotation
from visionloop.storage.models import AnnotationRow, ClassRow, HeadCountRow, OntologyOpRow, RevisionRow
from visionloop.storage.project import Project

__all__ = [
    "OntologyOp",
    "SplitReport",
    "list_ontology_ops",
    "merge_classes",
    "rename_class",
    "split_class",
]

_RESULT_KEY = "result"


@dataclass(frozen=True)
class OntologyOp:
    """One recorded operation as stored in ``ontology_ops``.

    ``params`` are the inputs (class names and ids); ``rewritten`` maps image id -> new head revision number of
    every annotation the operation rewrote (empty for a rename: payloads hold ids, and the id did not change).
    """

    id: int
    kind: str
    """``"rename"``, ``"merge"`` or ``"split"``."""
    params: dict[str, Any]
    author: str
    created_at: datetime
    rewritten: dict[int, int] = field(default_factory=dict)

    @property
    def revision_author(self) -> str:
        """The author written on the revisions this operation appended."""
        return f"ontology:{self.kind}#{self.id}"


@dataclass(frozen=True)
class SplitReport:
    """What :func:`split_class` did: the operation, instances moved to each new class, instances left behind."""

    op: OntologyOp
    reassigned: dict[str, int]
    """New class name -> number of instances moved to it."""
    remaining: int
    """Instances still on the source class (in head revisions, over the whole project)."""

    @property
    def reassigned_total(self) -> int:
        return sum(self.reassigned.values())


# ---- helpers ------------------------------------------------------------------------------------------------


def _op_from_row(row: Any) -> OntologyOp:
    params = dict(row.params or {})
    result = params.pop(_RESULT_KEY, {}) or {}
    rewritten = {int(k): int(v) for k, v in (result.get("rewritten") or {}).items()}
    return OntologyOp(id=row.id, kind=row.kind, params=params, author=row.author, created_at=row.created_at,
                      rewritten=rewritten)


def _start_op(conn: Connection, kind: str, params: dict[str, Any], author: str) -> int:
    """Insert the op row first: on SQLite this takes the write lock before anything is read."""
    return int(conn.execute(insert(OntologyOpRow).values(kind=kind, params=params, author=author))
               .inserted_primary_key[0])


def _finish_op(conn: Connection, op_id: int, params: dict[str, Any], result: dict[str, Any]) -> OntologyOp:
    conn.execute(update(OntologyOpRow).where(OntologyOpRow.id == op_id)
                 .values(params={**params, _RESULT_KEY: result}))
    row = conn.execute(select(OntologyOpRow).where(OntologyOpRow.id == op_id)).one()
    return _op_from_row(row)


def _heads_with_classes(conn: Connection, class_ids: Sequence[int]) -> list[tuple[int, int, dict[str, Any]]]:
    """(image id, head revision number, head payload) of every head that has an instance of ``class_ids``."""
    ann_ids = select(HeadCountRow.annotation_id).where(HeadCountRow.class_id.in_(list(class_ids))).distinct()
    rows = conn.execute(
        select(AnnotationRow.image_id, AnnotationRow.head, RevisionRow.payload)
        .join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
        .where(AnnotationRow.id.in_(ann_ids))
        .order_by(AnnotationRow.image_id)
    ).all()
    return [(r.image_id, r.head, r.payload) for r in rows]


def _heads_of(conn: Connection, image_ids: Sequence[int]) -> dict[int, tuple[int, dict[str, Any]]]:
    rows = conn.execute(
        select(AnnotationRow.image_id, AnnotationRow.head, RevisionRow.payload)
        .join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
        .where(AnnotationRow.image_id.in_(list(image_ids)))
    ).all()
    return {r.image_id: (r.head, r.payload) for r in rows}


def _instances_of(conn: Connection, class_id: int) -> int:
    total = conn.execute(select(func.sum(HeadCountRow.count)).where(HeadCountRow.class_id == class_id)).scalar()
    return int(total or 0)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise AnnotationValidationError(
            "class name", expected="a non-empty name without surrounding spaces", actual=repr(name)
        )
    return name


# ---- public operations --------------------------------------------------------------------------------------


def rename_class(project: Project, old: str, new: str, *, author: str) -> OntologyOp:
    """Rename the active class ``old`` to ``new``; its id (and so every annotation) stays as it is.

    Raises NotFoundError when ``old`` is not an active class and ConflictError when ``new`` is taken by another
    active class (merge the two instead).
    """
    _check_name(new)
    with project.transaction() as conn:
        onto = project.ontology(conn)
        cdef = onto.by_name(old)
        if new == old:
            raise ConflictError(f"class {old!r} is already called {new!r}; nothing to rename")
        if onto.get(new) is not None:
            raise ConflictError(
                f"cannot rename {old!r} to {new!r}: class {new!r} exists; merge them instead "
                f"(visionloop classes merge PROJECT {old} {new} --into {new})"
            )
        params = {"old": old, "new": new, "class_id": cdef.id}
        op_id = _start_op(conn, "rename", params, author)
        conn.execute(update(ClassRow).where(ClassRow.id == cdef.id).values(name=new))
        return _finish_op(conn, op_id, params, {"rewritten": {}})


def merge_classes(project: Project, sources: Sequence[str], target: str, *, author: str) -> OntologyOp:
    """Merge the classes ``sources`` into ``target`` and rewrite their instances to the target's id.

    ``target`` may be one of ``sources`` (it keeps its id), another existing active class, or a new name (a class
    is created; it is orientation/colour sensitive when any source was). Every source other than the target is
    retired (``active=False``; its id stays reserved) and children of a retired class get the target as parent.
    Each affected annotation gets a new revision by ``ontology:merge#<op id>``; old revisions stay.
    """
    sources = list(dict.fromkeys(sources))
    if not sources:
        raise AnnotationValidationError("merge sources", expected="at least one class name", actual=sources)
    _check_name(target)
    with project.transaction() as conn:
        onto = project.ontology(conn)
        src = [onto.by_name(s) for s in sources]
        params: dict[str, Any] = {"sources": sources, "source_ids": [c.id for c in src], "target": target}
        op_id = _start_op(conn, "merge", params, author)
        existing = onto.get(target)
        if existing is None:
            tgt = project.add_class(
                target,
                orientation_sensitive=any(c.orientation_sensitive for c in src),
                colour_sensitive=any(c.colour_sensitive for c in src),
                conn=conn,
            )
        else:
            tgt = existing
        retired = [c.id for c in src if c.id != tgt.id]
        if not retired:
            raise ConflictError(f"merging {sources} into {target!r} changes nothing; name at least one other class")
        params.update(target_id=tgt.id, created_target=existing is None, retired_ids=retired)
        conn.execute(update(ClassRow).where(ClassRow.id.in_(retired)).values(active=False))
        conn.execute(update(ClassRow).where(ClassRow.parent_id.in_(retired)).values(parent_id=tgt.id))
        new_onto = project.ontology(conn)
        mapping = dict.fromkeys(retired, tgt.id)
        rewritten: dict[int, int] = {}
        rev_author = f"ontology:merge#{op_id}"
        for image_id, head, payload in _heads_with_classes(conn, retired):
            ann = remap_annotation(annotation_from_payload(payload), mapping)
            rewritten[image_id] = project.save_annotation(
                image_id, ann, base_revision=head, author=rev_author, conn=conn, _onto=new_onto
            )
        return _finish_op(conn, op_id, params, {"rewritten": {str(k): v for k, v in rewritten.items()}})


def _reassign(ann: Annotation, index: int, source_id: int, new_id: int, image_id: int) -> Annotation:
    """``ann`` with object ``index`` moved from ``source_id`` to ``new_id``."""

    def bad(expected: Any, actual: Any) -> AnnotationValidationError:
        return AnnotationValidationError(f"split assignment for image {image_id}, object {index}",
                                         expected=expected, actual=actual)

    if isinstance(ann, Label):
        if index != 0:
            raise bad("object index 0 for a Label", index)
        if ann.class_id != source_id:
            raise bad(f"an image labelled with the source class (id {source_id})", f"class id {ann.class_id}")
        return Label(new_id)
    if isinstance(ann, Tags):
        if index != 0:
            raise bad("object index 0 for Tags", index)
        if source_id not in ann.class_ids:
            raise bad(f"an image tagged with the source class (id {source_id})", sorted(ann.class_ids))
        return Tags((ann.class_ids - {source_id}) | {new_id})
    if isinstance(ann, SemanticMask):
        if index != 0:
            raise bad("object index 0 for a SemanticMask (the whole class region moves)", index)
        if source_id not in ann.class_ids():
            raise bad(f"a mask with pixels of the source class (id {source_id})", ann.class_ids())
        return remap_annotation(ann, {source_id: new_id})
    boxes = ann.boxes if isinstance(ann, Instances) else ann
    if not isinstance(boxes, Boxes):
        raise bad("Label, Tags, Boxes, Instances or SemanticMask", type(ann).__name__)
    if not 0 <= index < len(boxes):
        raise bad(f"an object index in 0..{len(boxes) - 1}", index)
    if int(boxes.class_id[index]) != source_id:
        raise bad(f"an object of the source class (id {source_id})", f"class id {int(boxes.class_id[index])}")
    ids = boxes.class_id.copy()
    ids[index] = new_id
    new_boxes = Boxes(boxes.xyxy, ids, boxes.score, boxes.track_id, boxes.attributes)
    if isinstance(ann, Instances):
        return Instances(new_boxes, list(ann.segmentations))
    return new_boxes


def split_class(
    project: Project,
    source: str,
    into: Sequence[str],
    *,
    assign: Mapping[tuple[int, int], str] | None = None,
    author: str,
) -> SplitReport:
    """Split class ``source`` into the classes ``into`` and move the instances named in ``assign``.

    ``into``: the new class names (created when missing; an existing active class other than ``source`` is used as
    is). ``assign`` maps ``(image id, object index)`` to one of ``into``: the object index is the box/instance
    index for Boxes and Instances, and 0 for Label, Tags and SemanticMask (the whole class region of a semantic mask
    moves). Every assigned object must currently be of class ``source``. Instances not assigned stay on
    ``source``, which remains active, so a split can be done in several passes. The new classes inherit the
    source's orientation/colour flags and get it as parent.
    """
    into = list(dict.fromkeys(into))
    if not into:
        raise AnnotationValidationError("split targets", expected="at least one new class name", actual=into)
    for name in into:
        _check_name(name)
    if source in into:
        raise AnnotationValidationError("split targets", expected=f"names other than the source {source!r}",
                                        actual=into)
    assign = dict(assign or {})
    unknown = sorted({v for v in assign.values() if v not in into})
    if unknown:
        raise AnnotationValidationError("split assignment classes", expected=f"one of {into}", actual=unknown)
    with project.transaction() as conn:
        onto = project.ontology(conn)
        src = onto.by_name(source)
        params: dict[str, Any] = {
            "source": source, "source_id": src.id, "into": into,
            "assign": [[int(i), int(k), v] for (i, k), v in sorted(assign.items())],
        }
        op_id = _start_op(conn, "split", params, author)
        targets: dict[str, int] = {}
        for name in into:
            cdef = onto.get(name)
            if cdef is None:
                cdef = project.add_class(
                    name, orientation_sensitive=src.orientation_sensitive, colour_sensitive=src.colour_sensitive,
                    colour="", parent=source, conn=conn,
                )
            targets[name] = cdef.id
        params["into_ids"] = targets
        new_onto: Ontology = project.ontology(conn)
        by_image: dict[int, list[tuple[int, str]]] = {}
        for (image_id, index), name in assign.items():
            by_image.setdefault(int(image_id), []).append((int(index), name))
        heads = _heads_of(conn, list(by_image))
        missing = sorted(set(by_image) - set(heads))
        if missing:
            raise NotFoundError(
                "annotated image", missing[0],
                choices=[f"{len(missing)} assigned image(s) have no annotation; annotate them or drop them from assign"],
            )
        moved = dict.fromkeys(into, 0)
        rewritten: dict[int, int] = {}
        rev_author = f"ontology:split#{op_id}"
        for image_id in sorted(by_image):
            head, payload = heads[image_id]
            ann = annotation_from_payload(payload)
            for index, name in sorted(by_image[image_id]):
                ann = _reassign(ann, index, src.id, targets[name], image_id)
                moved[name] += 1
            rewritten[image_id] = project.save_annotation(
                image_id, ann, base_revision=head, author=rev_author, conn=conn, _onto=new_onto
            )
        op = _finish_op(conn, op_id, params, {
            "rewritten": {str(k): v for k, v in rewritten.items()}, "reassigned": moved,
        })
        return SplitReport(op=op, reassigned=moved, remaining=_instances_of(conn, src.id))


def list_ontology_ops(project: Project) -> list[OntologyOp]:
    """Every recorded operation, oldest first."""
    with project.engine.connect() as conn:
        rows = conn.execute(select(OntologyOpRow).order_by(OntologyOpRow.id)).all()
    return [_op_from_row(r) for r in rows]
