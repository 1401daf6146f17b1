"""The tables the code declares are the tables the migrations make: a column added to a row class without a
migration (or the other way round) fails here, not in a user's project."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import visionloop.storage as storage
from visionloop.storage.models import Base
from visionloop.storage.project import Project


def test_migrations_make_exactly_the_declared_tables(tmp_path: Path) -> None:
    for m in pkgutil.iter_modules(storage.__path__):
        if m.name != "migrations":
            importlib.import_module(f"visionloop.storage.{m.name}")
    assert {"events", "webhooks", "webhook_deliveries", "production_samples", "loop_cycles",
            "drift_reports"} <= set(Base.metadata.tables)
    p = Project.create(tmp_path / "p", task="detection")
    with p.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
