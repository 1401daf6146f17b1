"""A project: settings file, database and blob store, and the operations on images, classes and annotations.

A project is a directory holding ``visionloop.toml``, ``db.sqlite`` and ``blobs/`` (or, for teams, a database URL and a
blob URL named in the toml file). Writes to the database go through short transactions; annotation saves use an
atomic compare-and-set on the head revision, so a concurrent edit is refused, never lost.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visionloop.core.annotations import (
    Annotation,
    Boxes,
    Instances,
    Label,
    SemanticMask,
    Tags,
    annotation_class_counts,
    annotation_from_payload,
    annotation_to_payload,
    validate_for_image,
)
from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError, StaleRevisionError
from visionloop.core.ontology import ClassDef, Ontology
from visionloop.core.records import ImageRecord
from visionloop.core.settings import Settings
from visionloop.core.task import Task
from visionloop.storage import db
from visionloop.storage.blobs import BlobStore
from visionloop.storage.head_boxes import HeadBoxRow, head_box_rows
from visionloop.storage.models import (
    AnnotationRow,
    ClassRow,
    HeadCountRow,
    ImageRow,
    ProjectRow,
    RevisionRow,
    utcnow,
)

__all__ = [
    "ALLOWED", "CONFIG_FILE", "PROJECT_SETTINGS", "NewImage", "Project", "Revision", "check_project_name", "image_key",
    "merged_subsets", "project_settings", "subsets_of",
]

CONFIG_FILE = "visionloop.toml"
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_project_name(name: str) -> str:
    """A name usable in a URL and as a folder: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or
    digit (so no '/', no '..', nothing hidden); AnnotationValidationError otherwise."""
    if not _PROJECT_NAME.fullmatch(name):
        raise AnnotationValidationError(
            "project name", expected="1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            actual=repr(name))
    return name

ALLOWED: dict[Task, tuple[type, ...]] = {
    Task.CLASSIFICATION: (Label,),
    Task.TAGGING: (Tags,),
    Task.DETECTION: (Boxes,),
    Task.SEGMENTATION: (Instances, SemanticMask),
}


@dataclass(kw_only=True)
class NewImage:
    """An image about to be added; its bytes are already in the blob store under ``sha256``."""

    sha256: str
    width: int
    height: int
    format: str
    name: str
    source_uri: str = ""
    video_id: str | None = None
    frame_index: int | None = None
    timestamp: float | None = None
    phash: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def image_key(image: NewImage) -> str:
    """The identity of an image in a project (see ``ImageRow.key``)."""
    if image.video_id is None:
        return image.sha256
    return f"{image.sha256}@{image.video_id}#{image.frame_index}"


def subsets_of(meta: dict[str, Any]) -> list[str]:
    """The source subsets an image was given under: ``meta["subsets"]``, or its one ``meta["subset"]``."""
    listed = meta.get("subsets")
    if isinstance(listed, list) and listed:
        return [str(x) for x in listed]
    one = meta.get("subset")
    return [str(one)] if one else []


def merged_subsets(meta: dict[str, Any], more: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``meta`` with the subsets of ``more`` (metas the same image came with again) added: ``subset`` stays the
    first one met, ``subsets`` lists all, in the order met, when there are two or more."""
    out = dict(meta)
    names = subsets_of(out)
    for m in more:
        names += [s for s in subsets_of(m) if s not in names]
    if names:
        out["subset"] = names[0]
    if len(names) > 1:
        out["subsets"] = names
    return out


@dataclass(frozen=True)
class Revision:
    revision: int
    revision_id: int
    author: str
    created_at: datetime
    annotation: Annotation


def _image_record(row: Any) -> ImageRecord:
    return ImageRecord(
        id=row.id, sha256=row.sha256, width=row.width, height=row.height, format=row.format, name=row.name,
        source_uri=row.source_uri, ingested_at=row.ingested_at, video_id=row.video_id,
        frame_index=row.frame_index, timestamp=row.timestamp, phash=row.phash, meta=row.meta or {},
    )


PROJECT_SETTINGS = ("max_image_pixels",)
"""Settings a project's ``visionloop.toml`` may set for itself, over the environment's."""


def project_settings(settings: Settings, cfg: dict[str, Any]) -> Settings:
    """``settings`` with the values the project's ``visionloop.toml`` sets (:data:`PROJECT_SETTINGS`), e.g.
    ``max_image_pixels = 200000000`` for a microscopy or aerial project of 16000x12000 images."""
    values = {k: cfg[k] for k in PROJECT_SETTINGS if k in cfg}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise AnnotationValidationError(f"{key} in {CONFIG_FILE}", expected="a whole number of pixels >= 1",
                                            actual=repr(value), hint=f"write e.g. {key} = 200000000")
    return settings.model_copy(update=values) if values else settings


def _write_toml(path: Path, values: dict[str, Any]) -> None:
    path.write_text(tomli_w.dumps(values), encoding="utf-8")


class Project:
    """Open with :meth:`open` or make with :meth:`create`; close with :meth:`close` or use as a context manager."""

    def __init__(self, root: Path, *, db_url: str, blob_url: str, settings: Settings | None = None,
                 blob_options: dict[str, Any] | None = None) -> None:
        self.root = root
        self.settings = settings or Settings()
        self.engine = db.make_engine(db_url)
        db.upgrade(self.engine)
        self.blobs = BlobStore(blob_url, options=blob_options)
        with self.engine.connect() as conn:
            row = conn.execute(select(ProjectRow)).first()
        if row is None:
            raise NotFoundError("project", str(root))
        self.name: str = row.name
        self.task = Task(row.task)

    # ---- lifecycle ----------------------------------------------------------------------------------------
    @staticmethod
    def _urls(root: Path, cfg: dict[str, Any]) -> tuple[str, str]:
        db_url = cfg.get("db_url") or f"sqlite:///{(root / 'db.sqlite').resolve()}"
        blob_url = cfg.get("blob_url") or str((root / "blobs").resolve())
        return db_url, blob_url

    @classmethod
    def create(
        cls, root: str | Path, *, task: Task | str, name: str | None = None, db_url: str | None = None,
        blob_url: str | None = None, settings: Settings | None = None, blob_options: dict[str, Any] | None = None,
        max_image_pixels: int | None = None,
    ) -> Project:
        """``blob_options``: fsspec storage options of a remote blob store (e.g. ``{"endpoint_url": ...}`` for an
        S3-compatible server), saved in ``visionloop.toml``; keep credentials in the environment, not here.
        ``max_image_pixels``: this project's decompression-bomb limit (see :func:`project_settings`)."""
        root = Path(root)
        task = Task(task)
        if (root / CONFIG_FILE).exists():
            raise ConflictError(f"{root} is already a visionloop project; open it instead of creating it")
        root.mkdir(parents=True, exist_ok=True)
        cfg: dict[str, Any] = {"name": name or root.resolve().name, "task": task.value}
        if db_url:
            cfg["db_url"] = db_url
        if blob_url:
            cfg["blob_url"] = blob_url
        if blob_options:
            cfg["blob_options"] = dict(blob_options)
        if max_image_pixels is not None:
            cfg["max_image_pixels"] = max_image_pixels
        settings = project_settings(settings or Settings(), cfg)
        url, blobs = cls._urls(root, cfg)
        engine = db.make_engine(url)
        db.upgrade(engine)
        with engine.begin() as conn:
            if conn.execute(select(ProjectRow)).first() is None:
                conn.execute(insert(ProjectRow).values(id=1, name=cfg["name"], task=task.value))
        engine.dispose()
        _write_toml(root / CONFIG_FILE, cfg)
        for sub in ("runs", "packages"):
            (root / sub).mkdir(exist_ok=True)
        return cls(root, db_url=url, blob_url=blobs, settings=settings, blob_options=blob_options)

    @classmethod
    def open(cls, root: str | Path, *, settings: Settings | None = None) -> Project:
        root = Path(root)
        cfg_path = root / CONFIG_FILE
        if not cfg_path.exists():
            raise NotFoundError("project", str(root), hint="create one with: visionloop init PROJECT --task ...")
        cfg = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        url, blobs = cls._urls(root, cfg)
        return cls(root, db_url=url, blob_url=blobs, settings=project_settings(settings or Settings(), cfg),
                   blob_options=cfg.get("blob_options"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ---- classes ------------------------------------------------------------------------------------------
    def ontology(self, conn: Connection | None = None) -> Ontology:
        def read(c: Connection) -> Ontology:
            rows = c.execute(select(ClassRow).order_by(ClassRow.id)).all()
            return Ontology(tuple(
                ClassDef(id=r.id, name=r.name, colour=r.colour, parent_id=r.parent_id,
                         orientation_sensitive=r.orientation_sensitive, colour_sensitive=r.colour_sensitive,
                         active=r.active, meta=r.meta or {})
                for r in rows
            ))

        if conn is not None:
            return read(conn)
        with self.engine.connect() as c:
            return read(c)

    def add_class(
        self, name: str, *, orientation_sensitive: bool = False, colour_sensitive: bool = False,
        colour: str = "", parent: str | None = None, conn: Connection | None = None,
    ) -> ClassDef:
        with self._conn(conn) as c:
            onto = self.ontology(c)
            if onto.get(name) is not None:
                raise ConflictError(f"class {name!r} exists already; rename or merge instead")
            parent_id = onto.by_name(parent).id if parent else None
            cid = c.execute(insert(ClassRow).values(
                name=name, colour=colour, parent_id=parent_id, orientation_sensitive=orientation_sensitive,
                colour_sensitive=colour_sensitive, active=True, meta={},
            )).inserted_primary_key[0]
            cdef = ClassDef(id=cid, name=name, colour=colour, parent_id=parent_id,
                            orientation_sensitive=orientation_sensitive, colour_sensitive=colour_sensitive)
            c.execute(update(ClassRow).where(ClassRow.id == cid).values(colour=cdef.colour))
            return cdef

    def class_ids(self, names: Sequence[str], *, create: bool = True, conn: Connection | None = None) -> dict[str, int]:
        """Project class id of each name; unknown names are added when ``create`` (else NotFoundError)."""
        with self._conn(conn) as c:
            onto = self.ontology(c)
            out: dict[str, int] = {}
            for name in names:
                found = onto.get(name)
                if found is None:
                    if not create:
                        onto.by_name(name)  # raises with suggestions
                    found = self.add_class(name, conn=c)
                    onto = onto.with_class(found)
                out[name] = found.id
            return out

    def set_class_flags(self, name: str, **flags: Any) -> ClassDef:
        allowed = {"orientation_sensitive", "colour_sensitive", "colour"}
        unknown = set(flags) - allowed
        if unknown:
            raise AnnotationValidationError("class flags", expected=sorted(allowed), actual=sorted(unknown))
        with self.transaction() as c:
            cid = self.ontology(c).by_name(name).id
            c.execute(update(ClassRow).where(ClassRow.id == cid).values(**{k: v for k, v in flags.items()}))
            return self.ontology(c).by_id(cid)

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.begin() as c:
                yield c

    # ---- images -------------------------------------------------------------------------------------------
    def add_images(self, images: Sequence[NewImage], *, conn: Connection | None = None) -> list[tuple[int, bool]]:
        """Insert images whose blobs are stored; returns (image id, created) per input.

        Idempotent by identity (:func:`image_key`): the sha256 of a still image, sha256 + video + frame for a frame.
        An image given twice (in one call or across calls) is stored once, with the first name and meta it came
        with; every source subset it was given under is kept, in the order met, in ``meta["subsets"]`` (see
        :func:`merged_subsets`), so a byte-identical image listed in two subsets of a source is never silently one.
        """
        with self._conn(conn) as c:
            keys = [image_key(im) for im in images]
            existing = dict(c.execute(select(ImageRow.key, ImageRow.id).where(ImageRow.key.in_(keys))).all())
            restored = set(c.execute(select(ImageRow.key).where(ImageRow.key.in_(list(existing)),
                                                                ImageRow.deleted_at.is_not(None))).scalars())
            if restored:  # deleted while a version held them: imported again, they are back with their annotations
                c.execute(update(ImageRow).where(ImageRow.key.in_(list(restored))).values(deleted_at=None))
            given: dict[str, list[dict[str, Any]]] = {}
            for k, im in zip(keys, images, strict=True):
                given.setdefault(k, []).append(im.meta)
            fresh: dict[str, NewImage] = {}
            for k, im in zip(keys, images, strict=True):
                if k not in existing and k not in fresh:
                    fresh[k] = im
            ids: dict[str, int] = {}
            if fresh:
                now = utcnow()
                c.execute(insert(ImageRow), [
                    {"key": k, "sha256": im.sha256, "width": im.width, "height": im.height, "format": im.format,
                     "name": im.name, "source_uri": im.source_uri, "ingested_at": now, "video_id": im.video_id,
                     "frame_index": im.frame_index, "timestamp": im.timestamp, "phash": im.phash,
                     "meta": merged_subsets(given[k][0], given[k][1:])}
                    for k, im in fresh.items()
                ])
                ids = dict(c.execute(select(ImageRow.key, ImageRow.id).where(ImageRow.key.in_(list(fresh)))).all())
            again = {existing[k]: given[k] for k in existing if any(m.get("subset") for m in given[k])}
            if again:
                for r in c.execute(select(ImageRow.id, ImageRow.meta).where(ImageRow.id.in_(list(again)))).all():
                    meta = merged_subsets(r.meta or {}, again[r.id])
                    if meta != (r.meta or {}):
                        c.execute(update(ImageRow).where(ImageRow.id == r.id).values(meta=meta))
            out, seen = [], set()
            for k in keys:
                out.append((existing.get(k) or ids[k], (k in ids or k in restored) and k not in seen))
                seen.add(k)
            return out

    def image(self, image_id: int) -> ImageRecord:
        with self.engine.connect() as c:
            row = c.execute(select(ImageRow).where(ImageRow.id == image_id, ImageRow.deleted_at.is_(None))).first()
        if row is None:
            raise NotFoundError("image", image_id)
        return _image_record(row)

    def images(self, *, offset: int = 0, limit: int | None = None, ids: Sequence[int] | None = None) -> list[ImageRecord]:
        q = select(ImageRow).where(ImageRow.deleted_at.is_(None)).order_by(ImageRow.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        if ids is not None:
            q = q.where(ImageRow.id.in_(list(ids)))
        with self.engine.connect() as c:
            return [_image_record(r) for r in c.execute(q).all()]

    def count_images(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count(ImageRow.id)).where(ImageRow.deleted_at.is_(None))).scalar_one())

    def image_bytes(self, image_id: int) -> bytes:
        return self.blobs.read(self.image(image_id).sha256)

    def set_phashes(self, values: dict[int, str]) -> None:
        with self.transaction() as c:
            for image_id, ph in values.items():
                c.execute(update(ImageRow).where(ImageRow.id == image_id).values(phash=ph))

    # ---- annotations --------------------------------------------------------------------------------------
    def _check(
        self, ann: Annotation, onto: Ontology, size: tuple[int, int] | None = None, *, clip_outside: bool = False,
    ) -> Annotation:
        """``ann`` checked for this project (task, active class ids) and, given the image's ``size`` (width, height),
        against its image by :func:`~visionloop.core.annotations.validate_for_image`; returns it fitted."""
        allowed = ALLOWED[self.task]
        if not isinstance(ann, allowed):
            raise AnnotationValidationError(
                f"annotation for a {self.task.value} project",
                expected=" or ".join(t.__name__ for t in allowed), actual=type(ann).__name__,
            )
        active = {c.id for c in onto.active}
        unknown = sorted(set(annotation_class_counts(ann)) - active)
        if isinstance(ann, SemanticMask):
            unknown = [c for c in unknown if c != 0]
        if unknown:
            raise AnnotationValidationError(
                "class ids", expected=f"ids of active classes {sorted(active)}", actual=unknown,
                hint="add the classes first (visionloop classes add) or map them to existing ones",
            )
        if size is not None:
            ann, _ = validate_for_image(ann, size[0], size[1], clip_outside=clip_outside)
        return ann

    @staticmethod
    def _sizes(conn: Connection, image_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(width, height) of each image; :class:`NotFoundError` for an id that is not an image of the project."""
        sizes = {r.id: (r.width, r.height) for r in conn.execute(
            select(ImageRow.id, ImageRow.width, ImageRow.height)
            .where(ImageRow.id.in_(list(image_ids)), ImageRow.deleted_at.is_(None)))}
        missing = [i for i in image_ids if i not in sizes]
        if missing:
            raise NotFoundError("image", missing[0])
        return sizes

    def save_annotation(
        self, image_id: int, annotation: Annotation, *, base_revision: int | None, author: str,
        conn: Connection | None = None, _onto: Ontology | None = None,
    ) -> int:
        """Append a revision; returns the new head revision number.

        ``base_revision`` is the head the edit started from (None for an image never annotated). When the head
        moved meanwhile, :class:`StaleRevisionError` names both revisions and nothing is written. Saving a payload
        equal to the head's is a no-op that returns the head.

        The annotation is validated against its image first (class ids, mask sizes, boxes and outlines inside
        the image; tiny overshoots clipped): :class:`AnnotationValidationError` says what to fix.
        """
        with self._conn(conn) as c:
            annotation = self._check(annotation, _onto or self.ontology(c), self._sizes(c, [image_id])[image_id])
            payload = annotation_to_payload(annotation)
            row = c.execute(select(AnnotationRow.id, AnnotationRow.head, AnnotationRow.head_revision_id)
                            .where(AnnotationRow.image_id == image_id)).first()
            head = row.head if row else None
            if head != base_revision:
                raise StaleRevisionError(image_id, base_revision=base_revision, head_revision=head)
            if row is not None:
                current = c.execute(select(RevisionRow.payload).where(RevisionRow.id == row.head_revision_id))
                if current.scalar_one() == payload:
                    return head
                moved = c.execute(update(AnnotationRow)
                                  .where(AnnotationRow.id == row.id, AnnotationRow.head == base_revision)
                                  .values(head=base_revision + 1, updated_at=utcnow()))
                if moved.rowcount != 1:
                    now_head = c.execute(select(AnnotationRow.head).where(AnnotationRow.id == row.id)).scalar()
                    raise StaleRevisionError(image_id, base_revision=base_revision, head_revision=now_head)
                ann_id, new = row.id, base_revision + 1
            else:
                try:
                    with c.begin_nested():
                        ann_id = c.execute(insert(AnnotationRow).values(
                            id=image_id, image_id=image_id, head=1, updated_at=utcnow())).inserted_primary_key[0]
                except IntegrityError as e:
                    raise StaleRevisionError(image_id, base_revision=None, head_revision=1) from e
                new = 1
            rev_id = c.execute(insert(RevisionRow).values(
                annotation_id=ann_id, revision=new, author=author, created_at=utcnow(), payload=payload,
            )).inserted_primary_key[0]
            c.execute(update(AnnotationRow).where(AnnotationRow.id == ann_id).values(head_revision_id=rev_id))
            c.execute(HeadCountRow.__table__.delete().where(HeadCountRow.annotation_id == ann_id))
            counts = annotation_class_counts(annotation)
            if counts:
                c.execute(insert(HeadCountRow), [
                    {"annotation_id": ann_id, "class_id": k, "count": v} for k, v in counts.items()
                ])
            c.execute(HeadBoxRow.__table__.delete().where(HeadBoxRow.annotation_id == ann_id))
            if boxes := head_box_rows(ann_id, payload):
                c.execute(insert(HeadBoxRow), boxes)
            return new

    def save_new_annotations(
        self, items: Sequence[tuple[int, Annotation]], *, author: str, conn: Connection, onto: Ontology | None = None,
    ) -> None:
        """First revision for many images that have no annotation yet, in bulk (the import fast path).

        Same checks as :meth:`save_annotation`; an image annotated meanwhile makes the insert fail (unique image id)
        and the transaction roll back, so nothing is overwritten.
        """
        if not items:
            return
        onto = onto or self.ontology(conn)
        sizes = self._sizes(conn, [image_id for image_id, _ in items])
        items = [(image_id, self._check(ann, onto, sizes[image_id])) for image_id, ann in items]
        now = utcnow()
        conn.execute(insert(AnnotationRow), [
            {"id": image_id, "image_id": image_id, "head": 1, "updated_at": now} for image_id, _ in items
        ])
        payloads = [(image_id, annotation_to_payload(ann)) for image_id, ann in items]
        rows = conn.execute(insert(RevisionRow).returning(RevisionRow.id, RevisionRow.annotation_id), [
            {"annotation_id": image_id, "revision": 1, "author": author, "created_at": now,
             "payload": payload} for image_id, payload in payloads
        ]).all()
        conn.execute(
            update(AnnotationRow).where(AnnotationRow.id == bindparam("aid")).values(head_revision_id=bindparam("rid")),
            [{"aid": r.annotation_id, "rid": r.id} for r in rows],
        )
        counts = [{"annotation_id": image_id, "class_id": k, "count": v}
                  for image_id, ann in items for k, v in annotation_class_counts(ann).items()]
        if counts:
            conn.execute(insert(HeadCountRow), counts)
        if boxes := [row for image_id, payload in payloads for row in head_box_rows(image_id, payload)]:
            conn.execute(insert(HeadBoxRow), boxes)

    def head(self, image_id: int) -> tuple[int | None, Annotation | None]:
        """(head revision number, annotation) of an image; (None, None) when never annotated."""
        with self.engine.connect() as c:
            row = c.execute(
                select(AnnotationRow.head, RevisionRow.payload)
                .join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id)
                .where(AnnotationRow.image_id == image_id)
            ).first()
        if row is None:
            return None, None
        return row.head, annotation_from_payload(row.payload)

    def heads(self, image_ids: Sequence[int] | None = None) -> dict[int, tuple[int, Annotation]]:
        """image id -> (head revision id, annotation) for annotated images (all, or those given)."""
        q = (select(AnnotationRow.image_id, AnnotationRow.head_revision_id, RevisionRow.payload)
             .join(RevisionRow, RevisionRow.id == AnnotationRow.head_revision_id))
        if image_ids is not None:
            q = q.where(AnnotationRow.image_id.in_(list(image_ids)))
        with self.engine.connect() as c:
            return {r.image_id: (r.head_revision_id, annotation_from_payload(r.payload)) for r in c.execute(q)}

    def history(self, image_id: int) -> list[Revision]:
        with self.engine.connect() as c:
            rows = c.execute(
                select(RevisionRow).join(AnnotationRow, AnnotationRow.id == RevisionRow.annotation_id)
                .where(AnnotationRow.image_id == image_id).order_by(RevisionRow.revision)
            ).all()
        return [Revision(r.revision, r.id, r.author, r.created_at, annotation_from_payload(r.payload)) for r in rows]

    def revision_annotations(self, revision_ids: Sequence[int]) -> dict[int, Annotation]:
        with self.engine.connect() as c:
            rows = c.execute(select(RevisionRow.id, RevisionRow.payload).where(RevisionRow.id.in_(list(revision_ids))))
            return {r.id: annotation_from_payload(r.payload) for r in rows}

    # ---- stats --------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """``images``, ``annotated_images``, ``annotations`` (instances in head revisions), ``classes`` name -> count."""
        with self.engine.connect() as c:
            deleted = select(ImageRow.id).where(ImageRow.deleted_at.is_not(None))  # kept for versions only
            images = c.execute(select(func.count(ImageRow.id)).where(ImageRow.deleted_at.is_(None))).scalar_one()
            annotated = c.execute(select(func.count(AnnotationRow.id))
                                  .where(AnnotationRow.image_id.not_in(deleted))).scalar_one()
            counts = dict(c.execute(
                select(HeadCountRow.class_id, func.sum(HeadCountRow.count))
                .where(HeadCountRow.annotation_id.not_in(deleted)).group_by(HeadCountRow.class_id)
            ).all())
            onto = self.ontology(c)
        classes = {cd.name: int(counts.get(cd.id, 0)) for cd in onto.active}
        return {
            "project": self.name, "task": self.task.value, "images": int(images),
            "annotated_images": int(annotated), "annotations": int(sum(counts.values())), "classes": classes,
        }
