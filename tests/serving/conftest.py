"""Credentials for project API tests: token-only users of a role, with their bearer headers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from visionloop.core.errors import NotFoundError
from visionloop.storage import Project
from visionloop.storage.users import Role, add_user, get_user, issue_token, new_token_secret

Headers = dict[str, str]


def bearer_headers(projects: Project | Sequence[Project], role: Role | str = Role.ADMIN, *,
                   user: str | None = None) -> Headers:
    """``{"Authorization": "Bearer vl_..."}`` for a fresh token of ``user`` (default ``<role>-user``, made as a
    token-only user of ``role`` when missing), valid in each of ``projects``."""
    role = Role(role)
    user = user or f"{role.value}-user"
    secret = new_token_secret()
    for project in [projects] if isinstance(projects, Project) else projects:
        try:
            assert get_user(project, user).role is role, f"{user} exists with another role"
        except NotFoundError:
            add_user(project, user, role=role)
        issue_token(project, user, name="test", secret=secret)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def bearer() -> Callable[..., Headers]:
    """``bearer(project_or_projects, role="admin", user=None) -> headers`` (see :func:`bearer_headers`)."""
    return bearer_headers
