"""Who is asking, and may they: authentication and roles for every route of the project API.

Credentials
    ``Authorization: Bearer <token>`` on every request; for ``GET`` and ``HEAD`` only, the ``vl_session`` cookie that
    signing in sets (HttpOnly, SameSite=Strict) counts as the same bearer, so ``<img>`` and ``<a>`` of the web pages
    load images, thumbnails and downloads. Every other method still needs the header, so a form or script of another
    site cannot write with the browser's cookie. A token comes from ``visionloop user token PROJECT NAME``
    (scripts) or from signing in: ``POST /api/v1/auth/token`` with the form fields ``username`` and ``password`` (the
    OAuth2 password flow, so the web UI and the ``Authorize`` button of ``/docs`` use it) answers a token that expires
    after :data:`SIGN_IN_LIFETIME`; ``DELETE /api/v1/auth/token`` signs out (revokes it). Only ``GET /health``, the
    sign-in itself and the API docs (``/docs``, ``/redoc``, ``/openapi.json``: no project data) answer without one.

Several projects on one server
    Users live in each project's own database, so a project moves or is copied with its team, and an admin of one
    project is nobody in another. A request is therefore authenticated against the project its URL names: the token
    must be one of that project's tokens, and the role is the user's role there. Signing in checks the name and password
    in every served project and stores the one new token (as its sha256) in each project where they hold: the client
    keeps a single bearer, valid exactly in those projects. ``GET /api/v1/projects``, the only project route without a
    project in its URL, lists the projects where the bearer is valid, and answers 401 when there is none; an unknown
    project name is a 404 that lists only those projects, so names are not given away to strangers.

Answers
    Missing, unknown, revoked or expired credentials: 401 with ``WWW-Authenticate: Bearer``. A valid user whose role
    is too weak: 403 naming the role needed and the user's. Repeated failed sign-ins from one address: 429 with
    ``Retry-After`` (see ``sign_in_limits``). Roles: viewer reads, annotator saves annotations, reviewer
    reviews, admin manages users, classes and versions (see :class:`visionloop.storage.users.Role`).

Routers declare what they need with ``dependencies=[VIEWER]`` or a typed parameter
(``user: AnnotatorDep``); ``tests/serving/test_auth.py`` walks every route of the app, so a route added without one of
these fails it. Token comparisons are constant-time (see :func:`visionloop.storage.users.verify_token`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import APIKeyCookie, HTTPBearer, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param

from visionloop.core.errors import NotFoundError
from visionloop.serving.projects_api.deps import RegistryDep
from visionloop.storage.project import Project
from visionloop.storage.users import AuthenticationError, Role, verify_token

__all__ = [
    "AUTH_RESPONSES",
    "PUBLIC_PATHS",
    "SIGN_IN_LIFETIME",
    "SESSION_COOKIE",
    "SIGN_IN_PATH",
    "VIEWER",
    "AdminDep",
    "AdminSomewhereDep",
    "AnnotatorDep",
    "BearerDep",
    "CurrentUser",
    "CurrentUserDep",
    "ReviewerDep",
    "SignedInDep",
    "ViewerDep",
    "admin_somewhere",
    "current_user",
    "require_role",
    "session_cookie_kwargs",
    "signed_in",
    "unauthorized",
]

SIGN_IN_PATH = "/api/v1/auth/token"
SIGN_IN_LIFETIME = timedelta(hours=12)
"""How long a sign-in token lasts (a working day); tokens made with ``visionloop user token`` do not expire."""
PUBLIC_PATHS = frozenset({"/health", SIGN_IN_PATH, "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/",
                          "/static"})
"""Paths that answer without credentials (``DELETE`` on the sign-in path, the sign-out, still needs a token). The web
app's page ``/`` and its files under ``/static/...`` (``visionloop.web``) hold no data."""

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The request body is not valid JSON (or form data)."},
    401: {"description": "Missing, unknown, revoked or expired credentials (`WWW-Authenticate: Bearer`)."},
    403: {"description": "Signed in, but the user's role in this project is too weak; the answer names the role."},
}

_oauth2 = OAuth2PasswordBearer(tokenUrl=SIGN_IN_PATH, auto_error=False,
                               description="Sign in with a user name and password of the project.")
_bearer = HTTPBearer(auto_error=False, description="An API token: `visionloop user token PROJECT NAME`.")
SESSION_COOKIE = "vl_session"
"""The cookie signing in sets (the same token as the answer's bearer); accepted for GET and HEAD only."""
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="Set by signing in; GET and HEAD only (images, thumbnails, downloads).")
_COOKIE_METHODS = frozenset({"GET", "HEAD"})


def session_cookie_kwargs(request: Request) -> dict[str, Any]:
    """``Response.set_cookie``/``delete_cookie`` options of the session cookie: HttpOnly, SameSite=Strict, the whole
    site, Secure when the request came over https."""
    return {"key": SESSION_COOKIE, "path": "/", "httponly": True, "samesite": "strict",
            "secure": request.url.scheme == "https"}


@dataclass(frozen=True)
class CurrentUser:
    """The authenticated user of a request, in the project of its URL."""

    name: str
    role: Role
    project: str
    token_id: int


def unauthorized(detail: str) -> HTTPException:
    """A 401 answer that asks for a bearer token."""
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(
    request: Request, _o: Annotated[str | None, Depends(_oauth2)], _b: Annotated[Any, Depends(_bearer)],
    _c: Annotated[str | None, Depends(_cookie)],
) -> str:
    """The bearer token of the request (the header, or the session cookie on GET and HEAD); 401 when there is none
    (the three schemes only document it in OpenAPI)."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() == "bearer" and token:
        return token
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and request.method in _COOKIE_METHODS:
        return cookie
    cookie_note = (f" (the {SESSION_COOKIE} cookie counts for GET and HEAD only; {request.method} needs the header)"
                   if cookie else "")
    raise unauthorized(f"missing credentials: send 'Authorization: Bearer <token>'{cookie_note} (sign in at POST "
                       f"{SIGN_IN_PATH} with username and password, or make a token with: visionloop user token "
                       "PROJECT NAME)")


BearerDep = Annotated[str, Depends(bearer_token)]


def _valid_in(project: Project, token: str) -> CurrentUser | None:
    try:
        user, record = verify_token(project, token)
    except AuthenticationError:
        return None
    return CurrentUser(name=user.name, role=user.role, project=project.name, token_id=record.id)


def signed_in(registry: RegistryDep, token: BearerDep) -> list[tuple[Project, CurrentUser]]:
    """Every served project where the bearer token is valid, with its user there; 401 when there is none."""
    found = [(p, u) for p in registry.all() if (u := _valid_in(p, token)) is not None]
    if not found:
        raise unauthorized("invalid credentials: the token is unknown, revoked or expired in every project here")
    return found


signed_in.required_role = Role.VIEWER  # type: ignore[attr-defined]
SignedInDep = Annotated[list[tuple[Project, CurrentUser]], Depends(signed_in)]


def admin_somewhere(access: SignedInDep) -> list[tuple[Project, CurrentUser]]:
    """The served projects where the bearer's user is admin (for what no one project owns: creating a project);
    403 when there is none."""
    admins = [(p, u) for p, u in access if u.role is Role.ADMIN]
    if not admins:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"this needs the admin role in at least one project of this server; {access[0][1].name} "
                            f"is {', '.join(f'{u.role.value} in {p.name!r}' for p, u in access)}")
    return admins


admin_somewhere.required_role = Role.ADMIN  # type: ignore[attr-defined]
AdminSomewhereDep = Annotated[list[tuple[Project, CurrentUser]], Depends(admin_somewhere)]


def current_user(
    registry: RegistryDep, token: BearerDep,
    project: Annotated[str, Path(description="Project name, as GET /projects lists it.")],
) -> CurrentUser:
    """The user the bearer token belongs to in the project of the URL; 401 when it is not valid there."""
    try:
        opened = registry.get(project)
    except NotFoundError:
        known = [p.name for p in registry.all() if _valid_in(p, token) is not None]
        if not known:
            raise unauthorized("invalid credentials: the token is unknown, revoked or expired") from None
        raise NotFoundError("project", project, choices=known) from None
    user = _valid_in(opened, token)
    if user is None:
        raise unauthorized(f"invalid credentials for project {project!r}: the token is unknown there, revoked or "
                            "expired (users and tokens belong to one project)")
    return user


CurrentUserDep = Annotated[CurrentUser, Depends(current_user)]


@functools.cache
def require_role(role: Role) -> Callable[[CurrentUser], CurrentUser]:
    """A dependency giving the current user when their role is ``role`` or stronger; 403 otherwise.

    The same callable per role (FastAPI runs it once per request); it carries ``required_role`` for the route walk.
    """

    def check(user: CurrentUserDep) -> CurrentUser:
        if not user.role.allows(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this needs the {role.value} role or a stronger one; {user.name} is "
                                f"{user.role.value} in project {user.project!r} (an admin changes it with: "
                                f"visionloop user role PROJECT {user.name} {role.value})")
        return user

    check.required_role = role  # type: ignore[attr-defined]
    check.__name__ = f"require_{role.value}"
    return check


ViewerDep = Annotated[CurrentUser, Depends(require_role(Role.VIEWER))]
AnnotatorDep = Annotated[CurrentUser, Depends(require_role(Role.ANNOTATOR))]
ReviewerDep = Annotated[CurrentUser, Depends(require_role(Role.REVIEWER))]
AdminDep = Annotated[CurrentUser, Depends(require_role(Role.ADMIN))]
VIEWER = Depends(require_role(Role.VIEWER))
"""For ``APIRouter(..., dependencies=[VIEWER])``: every route of the router needs a signed-in user of the project."""
