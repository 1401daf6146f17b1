"""Tables of the review workflow (migration 0005): batches of work, their assignments and state log, annotators'
independent answers (honeypot and consensus items), gold annotations and consensus merges.

The logic lives in :mod:`visionloop.storage.work` (batches, queue, submit, review), :mod:`visionloop.storage.gold`
(gold annotations) and :mod:`visionloop.storage.consensus_store` (merging k answers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.storage.models import Base, utcnow

__all__ = ["AnswerRow", "AssignmentRow", "BatchRow", "GoldRow", "MergeRow", "WorkEventRow"]


class BatchRow(Base):
    """A batch of work: which images, for whom, how (``normal``: one annotator per image; ``consensus``: ``k``)."""

    __tablename__ = "work_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    mode: Mapped[str] = mapped_column(String(16))
    k: Mapped[int] = mapped_column(Integer, default=1)
    honeypot_rate: Mapped[float] = mapped_column(Float, default=0.0)
    agreement_threshold: Mapped[float] = mapped_column(Float, default=0.8)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AssignmentRow(Base):
    """One image for one annotator in one batch; ``kind`` is ``normal``, ``consensus`` or ``gold`` (a honeypot,
    never shown as such). ``state`` is the current state; every change is also a :class:`WorkEventRow`."""

    __tablename__ = "work_assignments"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("work_batches.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("batch_id", "image_id", "annotator"),
                      Index("ix_work_assignments_queue", "annotator", "state", "position"))


class WorkEventRow(Base):
    """One state change of an assignment, with who made it and when; never updated."""

    __tablename__ = "work_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("work_assignments.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_work_events_assignment", "assignment_id", "id"),)


class AnswerRow(Base):
    """An annotator's own answer on a gold or consensus item, kept apart from the head annotation and the gold;
    ``score`` holds its agreement with the gold (honeypot) or with the merged result (consensus)."""

    __tablename__ = "work_answers"
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("work_assignments.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_work_answers_assignment", "assignment_id", "id"),)


class GoldRow(Base):
    """A gold annotation of an image (the honeypot's truth); the latest row of an image is current, a row without
    payload unmarks it. Never updated."""

    __tablename__ = "gold_annotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_gold_annotations_image", "image_id", "id"),)


class MergeRow(Base):
    """The merge of a consensus image's k answers: its agreement score and the head revision it became."""

    __tablename__ = "work_merges"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("work_batches.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    agreement: Mapped[float] = mapped_column(Float)
    revision: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
