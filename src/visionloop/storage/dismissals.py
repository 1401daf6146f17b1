"""Findings people looked at and set aside: a group of images that are not duplicates, an image that is unusual
but fine (an outlier kept). The duplicate and outlier lists are computed afresh from the embeddings each time; a
dismissal keeps a finding out of them until it is undone.

A dismissal names its ``kind`` and the image ids it covers (a duplicate group: every id of the group, sorted; an
outlier: one id), with who dismissed it, when and why (migration 0008). The same finding dismissed twice is stored
once. A duplicate group that gains an image is a new finding (its ids differ) and shows again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text, UniqueConstraint, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage.models import Base, utcnow
from visionloop.storage.project import Project

__all__ = ["MAX_IDS", "MAX_NOTE", "Dismissal", "DismissalKind", "DismissalRow", "dismiss", "dismissed_keys",
           "finding_key", "list_dismissals", "undo_dismissal"]

MAX_IDS = 1000
MAX_NOTE = 2000


class DismissalKind(StrEnum):
    DUPLICATES = "duplicates"
    OUTLIER = "outlier"

    @classmethod
    def parse(cls, value: str | DismissalKind) -> DismissalKind:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError("dismissal kind", value, choices=[k.value for k in cls]) from None


class DismissalRow(Base):
    """One finding set aside (migration 0008)."""

    __tablename__ = "dismissals"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    """sha256 of the sorted image ids: the finding, whatever order the ids came in."""
    image_ids: Mapped[list[int]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("kind", "key", name="uq_dismissals_kind_key"),)


@dataclass(frozen=True)
class Dismissal:
    id: int
    kind: DismissalKind
    image_ids: list[int]
    note: str | None
    author: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "image_ids": self.image_ids, "note": self.note,
                "author": self.author, "created_at": self.created_at.isoformat()}


def _ids(kind: DismissalKind, image_ids: Sequence[int]) -> list[int]:
    ids = sorted({int(i) for i in image_ids})
    wanted = (1, 1) if kind is DismissalKind.OUTLIER else (2, MAX_IDS)
    if not wanted[0] <= len(ids) <= wanted[1]:
        raise AnnotationValidationError(f"{kind.value} dismissal image ids",
                                        expected=f"{wanted[0]} to {wanted[1]} distinct ids", actual=len(ids))
    return ids


def finding_key(image_ids: Sequence[int]) -> str:
    """The key of a finding: the same for the same set of ids."""
    return hashlib.sha256(",".join(str(i) for i in sorted({int(i) for i in image_ids})).encode()).hexdigest()


def _row(r: Any) -> Dismissal:
    at = r.created_at if r.created_at.tzinfo is not None else r.created_at.replace(tzinfo=UTC)
    return Dismissal(id=r.id, kind=DismissalKind(r.kind), image_ids=list(r.image_ids), note=r.note, author=r.author,
                     created_at=at)


def dismiss(project: Project, kind: DismissalKind | str, image_ids: Sequence[int], *, author: str,
            note: str | None = None) -> Dismissal:
    """Set a finding aside (the stored one when it was already). NotFoundError names an id not in the project."""
    kind = DismissalKind.parse(kind)
    ids = _ids(kind, image_ids)
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise AnnotationValidationError("dismissal note", expected=f"at most {MAX_NOTE} characters", actual=len(note))
    known = {im.id for im in project.images(ids=ids)}
    missing = [i for i in ids if i not in known]
    if missing:
        raise NotFoundError("image", missing[0])
    key = finding_key(ids)
    where = (DismissalRow.kind == kind.value, DismissalRow.key == key)
    with project.transaction() as conn:
        row = conn.execute(select(DismissalRow).where(*where)).first()
        if row is None:
            conn.execute(insert(DismissalRow).values(kind=kind.value, key=key, image_ids=ids, note=note,
                                                     author=author, created_at=utcnow()))
            row = conn.execute(select(DismissalRow).where(*where)).first()
    return _row(row)


def list_dismissals(project: Project, kind: DismissalKind | str | None = None) -> list[Dismissal]:
    """Newest first."""
    query = select(DismissalRow).order_by(DismissalRow.id.desc())
    if kind is not None:
        query = query.where(DismissalRow.kind == DismissalKind.parse(kind).value)
    with project.engine.connect() as conn:
        return [_row(r) for r in conn.execute(query).all()]


def dismissed_keys(project: Project, kind: DismissalKind | str) -> set[str]:
    """The keys (:func:`finding_key`) of a kind's dismissed findings."""
    with project.engine.connect() as conn:
        return set(conn.execute(select(DismissalRow.key).where(
            DismissalRow.kind == DismissalKind.parse(kind).value)).scalars())


def undo_dismissal(project: Project, dismissal_id: int) -> None:
    """Show the finding again."""
    with project.transaction() as conn:
        if conn.execute(delete(DismissalRow).where(DismissalRow.id == dismissal_id)).rowcount != 1:
            raise NotFoundError("dismissal", dismissal_id)
