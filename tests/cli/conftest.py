"""Fixtures of the command tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionloop.storage import Project


@pytest.fixture
def proj(tmp_path: Path) -> str:
    """The path of a new, empty detection project."""
    path = tmp_path / "p"
    Project.create(path, task="detection").close()
    return str(path)
