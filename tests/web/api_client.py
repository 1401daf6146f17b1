"""An HTTP client of the platform's API signed in as the admin of the test project, for what a test sets up or
checks beside the page (start a training run, read a run's history)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.web.conftest import ADMIN_PASSWORD


@contextmanager
def admin_client(url: str) -> Iterator[httpx.Client]:
    """``httpx.Client`` on ``url/api/v1`` with the admin's bearer token."""
    with httpx.Client(base_url=f"{url}/api/v1", timeout=60) as client:
        answer = client.post("/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        client.headers["Authorization"] = f"Bearer {answer.raise_for_status().json()['access_token']}"
        yield client
