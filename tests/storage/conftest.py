"""Fixtures of the store's tests: a database URL for each backend a test should pass on."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (the project's SQLite file), and a fresh PostgreSQL database on ``VISIONLOOP_TEST_POSTGRES_URL``'s server
    when it is set (skipped otherwise; ``.ci/run`` sets it)."""
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL server: set VISIONLOOP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@127.0.0.1/db")
    with fresh_postgres_database(base, prefix="vl_store") as url:
        yield url
