"""Acting on many images at once: deleting them from the project, choosing the split they go to.

Deleting keeps every dataset version as it was (versions never change): an image that a version holds keeps its row,
annotation history and blob, marked ``deleted_at`` so no project listing, stats or new version shows it (importing
the same file again brings it back, with its annotations); an image no version holds is removed with its annotation
history and review log, and its blob (and the tile pyramid of a large image) too when no other image uses it.

A preferred split is the image's ``meta["split_hint"]``: :func:`visionloop.storage.versions.create_version` puts a
group of images (near-duplicates, one video, one ``meta["group"]``) in the split all of them are hinted to (the most
common hint if they disagree), so a split chosen in the browser holds in the next version made with random splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, select, update

from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage.models import ImageRow, VersionItemRow, utcnow
from visionloop.storage.project import Project
from visionloop.storage.splits import SPLITS
from visionloop.storage.tiles import TileStore

__all__ = ["MAX_BULK", "DeleteReport", "delete_images", "set_preferred_split"]

MAX_BULK = 10_000
"""Most images one bulk call acts on (a page of the browser's selection; larger sets go in several calls)."""


@dataclass(frozen=True)
class DeleteReport:
    deleted: int
    """Images no longer in the project."""
    kept_for_versions: int
    """Of those, how many a dataset version holds (row, history and blob kept for the version)."""
    blobs_removed: int


def _checked_ids(conn: Connection, image_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    if len(ids) > MAX_BULK:
        raise AnnotationValidationError("image ids", expected=f"at most {MAX_BULK} per request", actual=len(ids),
                                        hint="send the selection in several requests")
    found = set(conn.execute(select(ImageRow.id).where(ImageRow.id.in_(ids), ImageRow.deleted_at.is_(None)))
                .scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError("image", missing[0])
    return ids


def delete_images(project: Project, image_ids: Sequence[int]) -> DeleteReport:
    """Delete images from the project (one transaction); see the module docstring for what is kept."""
    with project.transaction() as conn:
        ids = _checked_ids(conn, image_ids)
        held = set(conn.execute(select(VersionItemRow.image_id).where(VersionItemRow.image_id.in_(ids))
                                .distinct()).scalars())
        kept = [i for i in ids if i in held]
        gone = [i for i in ids if i not in held]
        if kept:
            conn.execute(update(ImageRow).where(ImageRow.id.in_(kept)).values(deleted_at=utcnow()))
        shas: set[str] = set()
        if gone:
            shas = set(conn.execute(select(ImageRow.sha256).where(ImageRow.id.in_(gone))).scalars())
            conn.execute(delete(ImageRow).where(ImageRow.id.in_(gone)))  # annotations, revisions, reviews cascade
            shas -= set(conn.execute(select(ImageRow.sha256).where(ImageRow.sha256.in_(shas))).scalars())
    removed = sum(project.blobs.delete(sha) for sha in sorted(shas))
    tiles = TileStore.of(project)
    for sha in shas:  # a large image's pyramid goes with its blob
        tiles.remove(sha)
    return DeleteReport(deleted=len(ids), kept_for_versions=len(kept), blobs_removed=removed)


def set_preferred_split(project: Project, image_ids: Sequence[int], split: str | None) -> int:
    """Set (``train``, ``val``, ``test``) or clear (None) the split the next versions put the images in; returns
    how many images changed."""
    if split is not None and split not in SPLITS:
        raise NotFoundError("split", split, choices=[*SPLITS, "null (no preference)"])
    with project.transaction() as conn:
        ids = _checked_ids(conn, image_ids)
        changes = []
        for r in conn.execute(select(ImageRow.id, ImageRow.meta).where(ImageRow.id.in_(ids))):
            meta = dict(r.meta or {})
            if meta.get("split_hint") == split:
                continue
            if split is None:
                meta.pop("split_hint", None)
            else:
                meta["split_hint"] = split
            changes.append({"iid": r.id, "meta": meta})
        if changes:
            conn.execute(update(ImageRow).where(ImageRow.id == bindparam("iid"))
                         .values(meta=bindparam("meta")), changes)
        return len(changes)
