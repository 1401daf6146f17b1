"""Bearer API tokens for the inference server: ``Authorization: Bearer <token>``.

No tokens configured: every route is open. Tokens configured: every route but ``/health`` needs one; a missing
header is 401 (with ``WWW-Authenticate: Bearer``), a wrong token 403.

Control routes (reload, rollback, canary) take admin tokens only (``--admin-token``, ``VISIONLOOP_ADMIN_TOKENS``),
never a prediction token (403); without admin tokens they are off (403 that says how to turn them on). Admin tokens
are accepted by the prediction routes too.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Iterable

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["ADMIN_TOKENS_ENV", "TOKENS_ENV", "TokenAuth", "parse_tokens"]

TOKENS_ENV = "VISIONLOOP_API_TOKENS"
ADMIN_TOKENS_ENV = "VISIONLOOP_ADMIN_TOKENS"


def parse_tokens(values: Iterable[str] | str | None = None, *, env: dict[str, str] | None = None,
                 var: str = TOKENS_ENV) -> list[str]:
    """Tokens from explicit values (each may be comma-separated) plus the variable ``var`` of ``env``
    (``VISIONLOOP_API_TOKENS``; ``ADMIN_TOKENS_ENV`` for admin tokens).

    ``env`` defaults to ``os.environ``; pass ``{}`` to ignore the environment.
    """
    env = os.environ if env is None else env
    raw = [values] if isinstance(values, str) else list(values or [])
    raw.append(env.get(var, ""))
    return [t.strip() for v in raw for t in v.split(",") if t.strip()]


class TokenAuth:
    """A FastAPI dependency that checks the bearer token (constant-time comparison).

    ``off_detail``: without tokens the routes are refused with 403 and this detail instead of being open (control
    routes).
    """

    def __init__(self, tokens: Iterable[str], *, off_detail: str | None = None) -> None:
        self.tokens = [t.encode() for t in tokens]
        self.off_detail = off_detail
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

        off_detail = self.off_detail

        async def closed() -> None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, off_detail)

        if tokens:
            return check
        return open_access if off_detail is None else closed
