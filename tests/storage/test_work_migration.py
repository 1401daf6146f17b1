"""Migration 0005 (work assignment and review) on a project made at 0004, and back down."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from tests.storage.old_projects import database, migrating, old_project
from visionloop.storage import Project
from visionloop.storage.models import utcnow

TABLES = ("work_batches", "work_assignments", "work_events", "work_answers", "gold_annotations", "work_merges")


def test_migration_0005_upgrades_a_0004_project_and_back(tmp_path: Path) -> None:
    root = tmp_path / "old"
    with old_project(root, "0004") as conn:
        conn.execute(text("INSERT INTO images (id, key, sha256, width, height, format, name, source_uri, ingested_at, "
                          "meta) VALUES (1, :s, :s, 8, 8, 'jpeg', 'a.jpg', '', :t, '{}')"),
                     {"s": "a" * 64, "t": utcnow()})
        conn.execute(text("INSERT INTO review_events (image_id, state, reason, author, created_at) "
                          "VALUES (1, 'rejected', 'box too loose', 'rita', :t)"), {"t": utcnow()})
    with database(root) as engine:
        assert not inspect(engine).has_table("work_batches")
    with Project.open(root) as project:
        insp = inspect(project.engine)
        assert all(insp.has_table(t) for t in TABLES)
        assert {"tags", "comment"} <= {c["name"] for c in insp.get_columns("review_events")}
        assert "ix_work_assignments_queue" in {i["name"] for i in insp.get_indexes("work_assignments")}
        with project.engine.connect() as conn:  # the old rejection is kept, without tags
            assert conn.execute(text("SELECT reason, tags FROM review_events")).one() == ("box too loose", None)
    with migrating(root, "0004", down=True) as conn:
        insp = inspect(conn)
        assert not any(insp.has_table(t) for t in TABLES)
        assert "tags" not in {c["name"] for c in insp.get_columns("review_events")}
