"""Projects as an older visionloop left them: a database stopped at a migration, to test what the next ones do."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, insert

from visionloop.storage.db import MIGRATIONS, make_engine
from visionloop.storage.models import ProjectRow


def _sqlite(root: Path) -> str:
    return f"sqlite:///{root / 'db.sqlite'}"


@contextmanager
def database(url_or_root: str | Path) -> Iterator[Engine]:
    """An engine on a project folder's database (or a URL), disposed afterwards."""
    engine = make_engine(_sqlite(url_or_root) if isinstance(url_or_root, Path) else url_or_root)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def migrating(url_or_root: str | Path, revision: str, *, down: bool = False) -> Iterator[Connection]:
    """Upgrade (or ``down``grade) the database to ``revision`` in one transaction, which the ``with`` block may add
    rows to before it commits."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with database(url_or_root) as engine, engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
        yield conn


@contextmanager
def old_project(url_or_root: str | Path, revision: str, *, name: str = "old") -> Iterator[Connection]:
    """A detection project whose database stops at ``revision`` (a folder ``root`` is created with its
    ``visionloop.toml``), holding its project row; the ``with`` block may add rows of that age."""
    if isinstance(url_or_root, Path):
        url_or_root.mkdir(parents=True)
        (url_or_root / "visionloop.toml").write_text(f'name = "{name}"\ntask = "detection"\n', encoding="utf-8")
    with migrating(url_or_root, revision) as conn:
        conn.execute(insert(ProjectRow).values(id=1, name=name, task="detection"))
        yield conn
