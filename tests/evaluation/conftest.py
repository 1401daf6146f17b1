from __future__ import annotations

import pytest

from tests.synthetic import make_project


@pytest.fixture
def synthetic_project(tmp_path):
    """``synthetic_project(task, **kw) -> Project`` with version v1; closed at teardown."""
    made = []

    def make(task: str = "classification", **kw):
        p = make_project(tmp_path / f"{task}-{len(made)}", task=task, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
