"""Waiting for something another thread or process does, bounded: a test fails with what it waited for, never hangs."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(what: str, check: Callable[[], bool], *, timeout: float = 120.0) -> None:
    """Poll ``check`` every 20 ms until it is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)
