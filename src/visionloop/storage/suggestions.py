"""Suggestions: what a model predicted for a project image, kept for the editor to offer (pre-annotation).

One row per image and model: ``source`` says what the model is (``package``: a model package of the project, by
name; ``run``: a training run, by id, predicted through its exported package), ``model`` names it, ``version`` is the
model's hash (the package's ``model_sha256``), so a package exported again under the same name is predicted again.
``payload`` is the prediction in the one JSON form (:meth:`visionloop.inference.Prediction.to_json`, what
``GET .../images/{id}/predictions`` answers), made with a low score floor; ``thresholds`` holds the model's own score
threshold (``score``) and per-class ones (``per_class``, by class id), which the readers apply. Saving a suggestion of
the same image and model replaces the old one; rows go with their image (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import NotFoundError
from visionloop.storage.models import Base, ImageRow, utcnow
from visionloop.storage.project import Project

__all__ = [
    "ModelRef",
    "ModelSource",
    "NewSuggestion",
    "Suggestion",
    "SuggestionRow",
    "count_suggestions",
    "delete_suggestions",
    "get_suggestion",
    "list_suggestions",
    "save_suggestions",
    "suggested_image_ids",
]


class ModelSource(StrEnum):
    PACKAGE = "package"
    RUN = "run"


class SuggestionRow(Base):
    """A model's prediction of one image, offered to annotators (migration 0006)."""

    __tablename__ = "suggestions"
    __table_args__ = (Index("ix_suggestions_model_image", "source", "model", "image_id", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[str] = mapped_column(String(128))
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class ModelRef:
    """Which model suggested: ``source`` (package or run), its ``model`` name and ``version`` (hash)."""

    source: ModelSource
    model: str
    version: str

    def to_json(self) -> dict[str, str]:
        return {"source": self.source.value, "model": self.model, "version": self.version}


@dataclass(frozen=True)
class NewSuggestion:
    image_id: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    ref: ModelRef
    thresholds: dict[str, Any]
    payload: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"image_id": self.image_id, **self.ref.to_json(), "thresholds": self.thresholds,
                "prediction": self.payload, "created_at": self.created_at}


def _suggestion(row: Any) -> Suggestion:
    created = row.created_at.replace(tzinfo=UTC) if row.created_at.tzinfo is None else row.created_at
    return Suggestion(image_id=row.image_id, ref=ModelRef(ModelSource(row.source), row.model, row.version),
                      thresholds=dict(row.thresholds or {}), payload=dict(row.payload), created_at=created)


def _of(ref: ModelRef | tuple[ModelSource | str, str]) -> Any:
    source, model = (ref.source, ref.model) if isinstance(ref, ModelRef) else ref
    return (SuggestionRow.source == ModelSource(source).value) & (SuggestionRow.model == model)


def save_suggestions(project: Project, ref: ModelRef, items: Sequence[NewSuggestion], *,
                     thresholds: dict[str, Any] | None = None) -> int:
    """Store ``items`` as the suggestions of model ``ref`` (one transaction), replacing what that model suggested for
    the same images before. Images deleted meanwhile are skipped. Returns how many were stored."""
    ids = list(dict.fromkeys(int(s.image_id) for s in items))
    if not ids:
        return 0
    with project.transaction() as conn:
        alive = set(conn.execute(select(ImageRow.id).where(ImageRow.id.in_(ids), ImageRow.deleted_at.is_(None)))
                    .scalars())
        conn.execute(delete(SuggestionRow).where(_of(ref), SuggestionRow.image_id.in_(ids)))
        now = utcnow()
        rows = {s.image_id: s for s in items if s.image_id in alive}  # the last of an image wins
        if rows:
            conn.execute(insert(SuggestionRow), [
                {"image_id": i, "source": ref.source.value, "model": ref.model, "version": ref.version,
                 "thresholds": thresholds or {}, "payload": s.payload, "created_at": now} for i, s in rows.items()])
        return len(rows)


def get_suggestion(project: Project, image_id: int, ref: ModelRef | tuple[ModelSource | str, str], *,
                   version: str | None = None) -> Suggestion:
    """The suggestion of model ``ref`` for an image (of that ``version`` when given); NotFoundError if none."""
    q = select(SuggestionRow).where(_of(ref), SuggestionRow.image_id == int(image_id))
    if version is not None:
        q = q.where(SuggestionRow.version == version)
    with project.engine.connect() as conn:
        row = conn.execute(q).first()
    if row is None:
        model = ref.model if isinstance(ref, ModelRef) else ref[1]
        raise NotFoundError("suggestion", f"image {image_id}, model {model}",
                            hint="pre-annotate the project first (POST .../preannotate or visionloop preannotate)")
    return _suggestion(row)


def list_suggestions(project: Project, ref: ModelRef | tuple[ModelSource | str, str], *,
                     image_ids: Iterable[int] | None = None, limit: int = 1000, offset: int = 0) -> list[Suggestion]:
    """Suggestions of a model, by image id (only ``image_ids`` when given)."""
    q = select(SuggestionRow).where(_of(ref)).order_by(SuggestionRow.image_id).limit(limit).offset(offset)
    if image_ids is not None:
        q = q.where(SuggestionRow.image_id.in_([int(i) for i in image_ids]))
    with project.engine.connect() as conn:
        return [_suggestion(r) for r in conn.execute(q)]


def suggested_image_ids(project: Project, ref: ModelRef) -> set[int]:
    """Images this model (this very version) has suggested for already: what a resumed run skips."""
    q = select(SuggestionRow.image_id).where(_of(ref), SuggestionRow.version == ref.version)
    with project.engine.connect() as conn:
        return set(conn.execute(q).scalars())


def count_suggestions(project: Project, ref: ModelRef | tuple[ModelSource | str, str]) -> int:
    with project.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SuggestionRow).where(_of(ref))).scalar_one())


def delete_suggestions(project: Project, ref: ModelRef | tuple[ModelSource | str, str]) -> int:
    """Forget every suggestion of a model; returns how many went."""
    with project.transaction() as conn:
        return int(conn.execute(delete(SuggestionRow).where(_of(ref))).rowcount or 0)
