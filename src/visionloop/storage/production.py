"""Images that came back from production: what a model server sent, with its prediction (migration 0010).

A model server attached to a project sends chosen predictions back (see :mod:`visionloop.active.samplers`). Each
sample becomes a project image (stored once by content, like any import) with the prediction as its pre-annotation,
and one row here saying where it came from: the model and package version that predicted it, the samplers that chose
it and their score, and whether it belongs to the *random slice*, the unbiased sample that alone may enter a frozen
test set. ``request_id`` is the sender's key for the sample: a sample sent twice (a retry after a lost answer) is
stored once.

:func:`add_production_sample` stores a sample (image, row, suggestion and ``prediction.flagged`` event in one
transaction); :func:`list_production_samples` and :func:`count_production_samples` filter by sampler, model, review
and random slice; :func:`get_production_sample` reads one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    delete,
    func,
    insert,
    not_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import NotFoundError
from visionloop.storage.events import EventKind, emit_event
from visionloop.storage.models import Base, ImageRow, utcnow
from visionloop.storage.project import NewImage, Project
from visionloop.storage.review import ReviewState, state_filter
from visionloop.storage.suggestions import ModelRef, SuggestionRow

__all__ = [
    "NewProductionSample",
    "ProductionSample",
    "ProductionSampleRow",
    "add_production_sample",
    "count_production_samples",
    "flagged_payload",
    "get_production_sample",
    "list_production_samples",
]

_ATTEMPTS = 5
"""Tries of a sample's transaction that lost a race (a concurrent sample of the same new image or request)."""


class ProductionSampleRow(Base):
    """One prediction a model server sent back."""

    __tablename__ = "production_samples"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    server: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    package_version: Mapped[str | None] = mapped_column(String(64))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    samplers: Mapped[list[Any]] = mapped_column(JSON)
    """The samplers that chose it, ``{"name", "score", "why"}`` each (``random`` for the random slice)."""
    score: Mapped[float | None] = mapped_column(Float)
    random_slice: Mapped[bool] = mapped_column(Boolean, default=False)
    prediction: Mapped[dict[str, Any]] = mapped_column(JSON)
    predicted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_production_samples_received", "received_at"),
                      Index("ix_production_samples_image", "image_id"))


@dataclass(frozen=True, kw_only=True)
class NewProductionSample:
    """What a model server sends with a chosen image (see the module docstring)."""

    request_id: str
    model: str
    prediction: dict[str, Any]
    predicted_at: datetime
    package_version: str | None = None
    model_sha256: str | None = None
    samplers: list[dict[str, Any]] = field(default_factory=list)
    """``{"name", "score", "why"}`` per sampler that chose it."""
    score: float | None = None
    random_slice: bool = False
    server: str | None = None


@dataclass(frozen=True)
class ProductionSample:
    id: int
    request_id: str
    image_id: int
    server: str | None
    model: str
    package_version: str | None
    model_sha256: str | None
    samplers: list[dict[str, Any]]
    score: float | None
    random_slice: bool
    prediction: dict[str, Any]
    predicted_at: datetime
    received_at: datetime

    @property
    def sampler_names(self) -> list[str]:
        return [str(s.get("name")) for s in self.samplers]

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _sample(row: Any) -> ProductionSample:
    return ProductionSample(
        id=row.id, request_id=row.request_id, image_id=row.image_id, server=row.server, model=row.model,
        package_version=row.package_version, model_sha256=row.model_sha256, samplers=list(row.samplers or []),
        score=row.score, random_slice=bool(row.random_slice), prediction=dict(row.prediction),
        predicted_at=_utc(row.predicted_at), received_at=_utc(row.received_at))


def _by_request(conn: Connection, request_id: str) -> ProductionSample | None:
    row = conn.execute(select(ProductionSampleRow).where(ProductionSampleRow.request_id == request_id)).first()
    return _sample(row) if row is not None else None


def flagged_payload(project: str, sample: ProductionSample) -> dict[str, Any]:
    """The ``prediction.flagged`` event's payload: which image, from which model, chosen by which samplers."""
    return {"project": project, "sample_id": sample.id, "request_id": sample.request_id,
            "image_id": sample.image_id, "model": sample.model, "package_version": sample.package_version,
            "samplers": sample.sampler_names, "score": sample.score, "random_slice": sample.random_slice}


def add_production_sample(
    project: Project, sample: NewProductionSample, *, image: NewImage, suggestion: ModelRef | None = None,
    thresholds: dict[str, Any] | None = None,
) -> tuple[ProductionSample, bool]:
    """Store a sample whose image bytes are already in the blob store: the image (reused when the project has it),
    the row, the prediction as the suggestion of model ``suggestion`` (replacing that model's earlier one for the
    image; ``thresholds`` as in :mod:`visionloop.storage.suggestions`) and a ``prediction.flagged`` event, in one
    transaction. Idempotent on ``request_id``: a sample sent again answers the stored one. Returns (sample, created).
    A transaction that lost a race with a concurrent one (the same request, image or suggestion) is tried again.
    """
    for attempt in range(_ATTEMPTS):
        with project.engine.connect() as conn:
            found = _by_request(conn, sample.request_id)
        if found is not None:
            return found, False
        try:
            return _insert(project, sample, image=image, suggestion=suggestion, thresholds=thresholds), True
        except IntegrityError:  # a concurrent request stored this request_id, this image or its suggestion first
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _insert(project: Project, sample: NewProductionSample, *, image: NewImage, suggestion: ModelRef | None,
            thresholds: dict[str, Any] | None) -> ProductionSample:
    with project.transaction() as conn:
        [(image_id, _)] = project.add_images([image], conn=conn)
        sample_id = conn.execute(insert(ProductionSampleRow).values(  # first: a repeated request_id fails here
            request_id=sample.request_id, image_id=image_id, server=sample.server, model=sample.model,
            package_version=sample.package_version, model_sha256=sample.model_sha256,
            samplers=sample.samplers, score=sample.score, random_slice=sample.random_slice,
            prediction=sample.prediction, predicted_at=sample.predicted_at, received_at=utcnow(),
        )).inserted_primary_key[0]
        if suggestion is not None:
            _replace_suggestion(conn, image_id, suggestion, sample.prediction, thresholds or {})
        stored = cast(ProductionSample, _by_id(conn, int(sample_id)))
        emit_event(conn, EventKind.PREDICTION_FLAGGED, flagged_payload(project.name, stored))
    return stored


def _replace_suggestion(conn: Connection, image_id: int, ref: ModelRef, payload: dict[str, Any],
                        thresholds: dict[str, Any]) -> None:
    """The image's suggestion of ``ref`` becomes ``payload`` (a row inserted meanwhile by a concurrent sample of
    the same image is updated instead)."""
    key = ((SuggestionRow.source == ref.source.value) & (SuggestionRow.model == ref.model)
           & (SuggestionRow.image_id == image_id))
    values = {"version": ref.version, "thresholds": thresholds, "payload": payload, "created_at": utcnow()}
    try:
        with conn.begin_nested():
            conn.execute(delete(SuggestionRow).where(key))
            conn.execute(insert(SuggestionRow).values(image_id=image_id, source=ref.source.value, model=ref.model,
                                                      **values))
    except IntegrityError:
        conn.execute(update(SuggestionRow).where(key).values(**values))


def _by_id(conn: Connection, sample_id: int) -> ProductionSample | None:
    row = conn.execute(select(ProductionSampleRow).where(ProductionSampleRow.id == sample_id)).first()
    return _sample(row) if row is not None else None


def get_production_sample(project: Project, sample_id: int) -> ProductionSample:
    """One sample by id; NotFoundError if there is none."""
    with project.engine.connect() as conn:
        found = _by_id(conn, int(sample_id))
    if found is None:
        raise NotFoundError("production sample", sample_id, hint="list them with GET .../production")
    return found


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(*, sampler: str | None, model: str | None, reviewed: bool | None,
             random_slice: bool | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        ProductionSampleRow.image_id.in_(select(ImageRow.id).where(ImageRow.deleted_at.is_(None)))]
    if sampler is not None:  # the JSON list holds {"name": ...} objects, written by json.dumps
        where.append(sql_cast(ProductionSampleRow.samplers, Text).like(f'%"name": {_like(json.dumps(sampler))}%',
                                                                   escape="\\"))
    if model is not None:
        where.append(ProductionSampleRow.model == model)
    if random_slice is not None:
        where.append(ProductionSampleRow.random_slice.is_(random_slice))
    if reviewed is not None:
        approved = ProductionSampleRow.image_id.in_(select(ImageRow.id).where(state_filter(ReviewState.APPROVED)))
        where.append(approved if reviewed else not_(approved))
    return where


def list_production_samples(
    project: Project, *, sampler: str | None = None, model: str | None = None, reviewed: bool | None = None,
    random_slice: bool | None = None, offset: int = 0, limit: int = 50, newest_first: bool = False,
) -> list[ProductionSample]:
    """Samples of images still in the project, oldest received first (``newest_first`` reverses), filtered by a
    sampler that chose them, the model, whether their image is approved (``reviewed``) and the random slice."""
    order = ProductionSampleRow.id.desc() if newest_first else ProductionSampleRow.id
    q = (select(ProductionSampleRow).where(*_filters(sampler=sampler, model=model, reviewed=reviewed,
                                                     random_slice=random_slice))
         .order_by(order).offset(offset).limit(limit))
    with project.engine.connect() as conn:
        return [_sample(r) for r in conn.execute(q)]


def count_production_samples(
    project: Project, *, sampler: str | None = None, model: str | None = None, reviewed: bool | None = None,
    random_slice: bool | None = None,
) -> int:
    """How many samples :func:`list_production_samples` lists with the same filters."""
    q = select(func.count()).select_from(ProductionSampleRow).where(
        *_filters(sampler=sampler, model=model, reviewed=reviewed, random_slice=random_slice))
    with project.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())
