"""SQLAlchemy 2 tables of a project. Schema changes go through Alembic migrations (``storage/migrations``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ProjectRow(Base):
    """One row: the project's name and task (the store holds exactly one project)."""

    __tablename__ = "project"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImageRow(Base):
    __tablename__ = "images"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(320), unique=True)
    """Identity: the sha256 for a still image; ``<sha256>@<video_id>#<frame_index>`` for a video frame, so identical
    frames of a static scene stay distinct frames while sharing one blob."""
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(1024), index=True)
    source_uri: Mapped[str] = mapped_column(Text, default="")
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    video_id: Mapped[str | None] = mapped_column(String(256), index=True)
    frame_index: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[float | None] = mapped_column(Float)
    phash: Mapped[str | None] = mapped_column(String(32))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    """Set when the image was deleted from the project while a dataset version holds it: the row stays so the
    version stays readable, every project listing leaves it out (see ``storage.image_admin``)."""


class ClassRow(Base):
    __tablename__ = "classes"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    colour: Mapped[str] = mapped_column(String(16), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("classes.id"))
    orientation_sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    colour_sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OntologyOpRow(Base):
    """A recorded rename, merge or split, with what it rewrote."""

    __tablename__ = "ontology_ops"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnnotationRow(Base):
    """The chain of revisions of one image's annotation; ``head`` is the current truth. ``id`` equals the image id."""

    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    head: Mapped[int] = mapped_column(Integer)
    head_revision_id: Mapped[int | None] = mapped_column(Integer, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RevisionRow(Base):
    """One saved state of an annotation; never updated or deleted."""

    __tablename__ = "revisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("annotation_id", "revision"),)


class HeadCountRow(Base):
    """Instances per class in each head revision, kept in step on every save so stats stay fast at 100k boxes."""

    __tablename__ = "head_counts"
    annotation_id: Mapped[int] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), primary_key=True
    )
    class_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_head_counts_class", "class_id"),)


class VersionRow(Base):
    """An immutable dataset version: its items, ontology snapshot and content hash."""

    __tablename__ = "versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    task: Mapped[str] = mapped_column(String(32))
    hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ontology: Mapped[list[Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class VersionItemRow(Base):
    __tablename__ = "version_items"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))
    split: Mapped[str] = mapped_column(String(8))
    __table_args__ = (Index("ix_version_items_split", "version_id", "split", "image_id"),)


class ImportRow(Base):
    """One import run: its source and per-file report, so a re-run can say what it completed."""

    __tablename__ = "imports"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UserRow(Base):
    """A person or script that may use the project: a role and, for people, an argon2 password hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    """argon2id hash in PHC string form (parameters and salt included); None: the user signs in with tokens only."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiTokenRow(Base):
    """A named API token of one user; only the sha256 of the secret is kept (see ``storage.users``)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Sign-in tokens expire; tokens made for scripts do not (None)."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReviewEventRow(Base):
    """One change of an image's review state, with who made it and when; never updated: the latest row (highest id)
    of an image is its current state (see ``storage.review``)."""

    __tablename__ = "review_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tags: Mapped[list[Any] | None] = mapped_column(JSON)
    """Issue tags of a rejection (``storage.review.REJECT_TAGS``); migration 0005."""
    comment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """Where the reviewer drew the comment on the image: ``{"point": [x, y]}`` or ``{"box": [x1, y1, x2, y2]}``."""
    __table_args__ = (Index("ix_review_events_image", "image_id", "id"), Index("ix_review_events_state", "state"))
