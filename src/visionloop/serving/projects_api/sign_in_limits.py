"""Failed sign-ins are limited, so passwords cannot be guessed at the server's speed.

Each failure is counted for its (client address, user name) pair and for the client address alone, over a sliding
window. Past :data:`MAX_PER_USER` failures for a pair, or :data:`MAX_PER_CLIENT` for an address, further sign-ins from
there answer 429 with ``Retry-After`` until the oldest failure leaves the window; the correct password does not help
meanwhile. As the per-user count is per address too, a stranger elsewhere cannot lock a user out. Behind a reverse
proxy, run uvicorn with ``--proxy-headers`` so the address is the client's. The counts live in memory, per server
process (a restart forgets them), and at most :data:`MAX_KEYS` keys are kept, the stalest dropped first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import HTTPException, Request, status

__all__ = ["MAX_KEYS", "MAX_PER_CLIENT", "MAX_PER_USER", "WINDOW_S", "SignInLimits", "sign_in_limits"]

WINDOW_S = 600.0
MAX_PER_USER = 10
MAX_PER_CLIENT = 100
MAX_KEYS = 10_000


class SignInLimits:
    """Sliding-window counts of failed sign-ins; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, *, window_s: float = WINDOW_S, per_user: int = MAX_PER_USER, per_client: int = MAX_PER_CLIENT,
                 max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.per_user, self.per_client, self.max_keys = window_s, per_user, per_client, max_keys
        self._clock = clock
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _keys(self, client: str, user: str) -> list[tuple[tuple[str, str], int]]:
        return [((client, user.casefold()), self.per_user), ((client, ""), self.per_client)]

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, client: str, user: str) -> None:
        """Raise 429 (with ``Retry-After`` in seconds) when this client or this client and user failed too often."""
        now = self._clock()
        with self._lock:
            for key, limit in self._keys(client, user):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(1, math.ceil(times[-limit] + self.window_s - now))
                    raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                                        f"too many failed sign-ins from here; try again in {wait} s",
                                        headers={"Retry-After": str(wait)})

    def failed(self, client: str, user: str) -> None:
        now = self._clock()
        with self._lock:
            for key, _ in self._keys(client, user):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)


def sign_in_limits(request: Request) -> SignInLimits:
    """The app's limits, made on first use (kept on ``app.state``, so each app counts its own)."""
    state = request.app.state
    limits = getattr(state, "sign_in_limits", None)
    if limits is None:
        with _MAKE_LOCK:
            limits = getattr(state, "sign_in_limits", None)
            if limits is None:
                limits = state.sign_in_limits = SignInLimits()
    return limits


_MAKE_LOCK = threading.Lock()
