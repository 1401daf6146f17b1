"""A large project made by SQL bulk inserts (no image files), for the image list's filters at 100,000 images."""

from __future__ import annotations

import json

from sqlalchemy import insert

from visionloop.storage import Project
from visionloop.storage.models import VersionRow, utcnow

SPLIT_OF = ("train",) * 7 + ("val", "test", "test")
"""Split of image ``i`` in version v1: ``SPLIT_OF[i % 10]``."""
REVIEW_EVERY = 7
"""Every 7th image has review rows: submitted, then approved when it is also a multiple of 14."""


def fill_listing_project(project: Project, *, images: int) -> dict[str, int]:
    """``images`` image rows; the odd ones annotated (one box of class ``a`` or ``b`` alternately, by ``alice`` or
    ``bob``); a version ``v1`` of the images whose id is not a multiple of 100 (split by :data:`SPLIT_OF`);
    review rows per :data:`REVIEW_EVERY`. Returns the class ids by name."""
    classes = project.class_ids(["a", "b"])
    now = utcnow().isoformat(sep=" ")
    ids = range(1, images + 1)
    annotated = [i for i in ids if i % 2]
    with project.transaction() as conn:
        vid = conn.execute(insert(VersionRow).values(
            name="v1", task=project.task.value, hash="", ontology=[], params={}, summary={})).inserted_primary_key[0]
        raw = conn.connection.driver_connection
        raw.executemany(
            "INSERT INTO images (id, key, sha256, width, height, format, name, source_uri, ingested_at, meta) "
            "VALUES (?, ?, ?, 640, 480, 'jpeg', ?, '', ?, '{}')",
            ((i, f"{i:064x}", f"{i:064x}", f"img{i:06d}.jpg", now) for i in ids))
        raw.executemany("INSERT INTO annotations (id, image_id, head, head_revision_id, updated_at) "
                        "VALUES (?, ?, 1, ?, ?)", ((i, i, i, now) for i in annotated))
        raw.executemany(
            "INSERT INTO revisions (id, annotation_id, revision, author, created_at, payload) "
            "VALUES (?, ?, 1, ?, ?, ?)",
            ((i, i, "alice" if i % 4 == 1 else "bob", now, json.dumps(
                {"type": "boxes", "xyxy": [[1, 1, 9, 9]], "class_id": [classes["a" if i % 4 == 1 else "b"]]}))
             for i in annotated))
        raw.executemany("INSERT INTO head_counts (annotation_id, class_id, count) VALUES (?, ?, 1)",
                        ((i, classes["a" if i % 4 == 1 else "b"]) for i in annotated))
        raw.executemany("INSERT INTO version_items (version_id, image_id, revision_id, split) VALUES (?, ?, ?, ?)",
                        ((vid, i, i if i % 2 else None, SPLIT_OF[i % 10]) for i in ids if i % 100))
        raw.executemany("INSERT INTO review_events (image_id, state, reason, author, created_at) VALUES (?, ?, NULL, "
                        "'rita', ?)", ((i, "submitted", now) for i in ids if i % REVIEW_EVERY == 0))
        raw.executemany("INSERT INTO review_events (image_id, state, reason, author, created_at) VALUES (?, ?, NULL, "
                        "'rita', ?)", ((i, "approved", now) for i in ids if i % (2 * REVIEW_EVERY) == 0))
    with project.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    return classes
