"""Review states as an append-only log, and migration 0003 on a project made at 0002."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from tests.storage.old_projects import database, migrating, old_project
from visionloop.core.errors import AnnotationValidationError, NotFoundError
from visionloop.storage import NewImage, Project
from visionloop.storage.image_admin import delete_images
from visionloop.storage.models import ImageRow, ReviewEventRow, utcnow
from visionloop.storage.review import ReviewState, current_reviews, review_history, set_review_state, state_filter


def add(project: Project, n: int) -> list[int]:
    return [project.add_images([NewImage(sha256=project.blobs.put(bytes([i]) * 8), width=8, height=8,
                                         format="jpeg", name=f"{i}.jpg")])[0][0] for i in range(n)]


def in_state(project: Project, state: str) -> list[int]:
    with project.engine.connect() as c:
        return list(c.execute(select(ImageRow.id).where(state_filter(state)).order_by(ImageRow.id)).scalars())


def test_states_are_appended_never_edited(project_factory) -> None:
    p: Project = project_factory("detection")
    ids = add(p, 4)
    assert set_review_state(p, ids[:3], "submitted", author="ann") == 3
    assert set_review_state(p, ids[:3], ReviewState.SUBMITTED, author="ann") == 0  # same state: nothing new
    assert set_review_state(p, [ids[0]], "approved", author="rita") == 1
    assert set_review_state(p, [ids[1]], "rejected", author="rita", reason="  wrong class  ") == 1
    assert set_review_state(p, [ids[1]], "rejected", author="rita", reason="still wrong") == 1  # a new decision
    assert [(e.state, e.author, e.reason) for e in review_history(p, ids[1])] == [
        (ReviewState.SUBMITTED, "ann", None), (ReviewState.REJECTED, "rita", "wrong class"),
        (ReviewState.REJECTED, "rita", "still wrong")]
    current = current_reviews(p, ids)
    assert {i: e.state.value for i, e in current.items()} == {ids[0]: "approved", ids[1]: "rejected",
                                                             ids[2]: "submitted"}
    assert current[ids[0]].created_at.tzinfo is not None
    assert in_state(p, "todo") == [ids[3]] and in_state(p, "approved") == [ids[0]]
    assert in_state(p, "submitted") == [ids[2]] and in_state(p, "in_progress") == []
    set_review_state(p, [ids[0]], "todo", author="rita")  # sent back: todo again, by a row
    assert in_state(p, "todo") == [ids[0], ids[3]]
    with p.engine.connect() as c:
        assert len(c.execute(select(ReviewEventRow.id)).all()) == 7  # every change kept


def test_bad_input_writes_nothing(project_factory) -> None:
    p: Project = project_factory("detection")
    ids = add(p, 2)
    with pytest.raises(AnnotationValidationError, match="reason"):
        set_review_state(p, ids, "rejected", author="rita", reason="   ")
    with pytest.raises(NotFoundError, match="review state"):
        set_review_state(p, ids, "done", author="rita")
    with pytest.raises(NotFoundError, match="image"):
        set_review_state(p, [ids[0], 999], "approved", author="rita")
    delete_images(p, [ids[1]])  # not in a version: removed, its log with it
    with pytest.raises(NotFoundError):
        set_review_state(p, [ids[1]], "approved", author="rita")
    assert review_history(p, ids[0]) == []


def test_migration_0003_upgrades_a_0002_project_with_images(tmp_path: Path) -> None:
    root = tmp_path / "old"
    with old_project(root, "0002") as conn:
        conn.execute(text("INSERT INTO images (id, key, sha256, width, height, format, name, source_uri, ingested_at, "
                          "meta) VALUES (1, :s, :s, 8, 8, 'jpeg', 'a.jpg', '', :t, '{}')"),
                     {"s": "a" * 64, "t": utcnow()})
    with database(root) as engine:
        assert "deleted_at" not in {c["name"] for c in inspect(engine).get_columns("images")}
    with Project.open(root) as project:
        names = {c["name"] for c in inspect(project.engine).get_columns("images")}
        assert "deleted_at" in names and inspect(project.engine).has_table("review_events")
        indexes = {i["name"] for t in ("images", "revisions", "annotations", "version_items", "review_events")
                   for i in inspect(project.engine).get_indexes(t)}
        assert {"ix_images_deleted_at", "ix_revisions_author", "ix_annotations_head_revision_id",
                "ix_version_items_split", "ix_review_events_image", "ix_review_events_state"} <= indexes
        assert [im.name for im in project.images()] == ["a.jpg"]
        set_review_state(project, [1], "submitted", author="ann")
        assert in_state(project, "submitted") == [1]
    with migrating(root, "0002", down=True) as conn:  # and back down
        assert not inspect(conn).has_table("review_events")
