"""Bearer API tokens for the inference server: ``Authorization: Bearer <token>``.

No tokens configured: every route is open. Tokens configured: every route but ``/health`` needs one; a missing
header is 401 (with ``WWW-Authenticate: Bearer``), a wrong token 403.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["TOKENS_ENV", "TokenAuth", "parse_tokens"]

TOKENS_ENV = "VISIONLOOP_API_TOKENS"


def parse_tokens(values: Iterable[str] | str | None = None, *, env: dict[str, str] | None = None) -> list[str]:
    """Tokens from explicit values (each may be comma-separated) plus ``VISIONLOOP_API_TOKENS`` from ``env``.

    ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment.
    """
    env = os.environ if env is None else env
    raw = [values] if isinstance(values, str) else list(values or [])
    raw.append(env.get(TOKENS_ENV, ""))
    return [t.strip() for v in raw for t in v.split(",") if t.strip()]


class TokenAuth:
    """A FastAPI dependency that checks the bearer token (constant-time comparison)."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = [t.encode() for t in tokens]
        self.scheme = HTTPBearer(auto_error=False, description="API token: `Authorization: Bearer <token>`")

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def dependency(self) -> Callable[..., Awaitable[None]]:
        """The route dependency; it declares the bearer scheme in the OpenAPI schema when tokens are configured."""
        tokens = self.tokens

        async def check(creds: HTTPAuthorizationCredentials | None = Depends(self.scheme)) -> None:  # noqa: B008
            if creds is None:
                raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                                    "missing API token: send 'Authorization: Bearer <token>'",
                                    headers={"WWW-Authenticate": "Bearer"})
            given = creds.credentials.encode()
            if not any(hmac.compare_digest(given, t) for t in tokens):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid API token")

        async def open_access() -> None:
            return None

        return check if tokens else open_access
