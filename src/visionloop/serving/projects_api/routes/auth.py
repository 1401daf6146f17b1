"""Signing in and out: ``POST /api/v1/auth/token`` (OAuth2 password flow) and ``DELETE /api/v1/auth/token``.

Signing in answers the bearer and also sets it as the ``vl_session`` cookie (HttpOnly, SameSite=Strict, Secure over
https) for the browser's GET requests (images in ``<img>``, downloads in ``<a>``); signing out revokes the token and
clears the cookie.

See :mod:`visionloop.serving.projects_api.auth` for how one sign-in covers several projects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import (
    SIGN_IN_LIFETIME,
    BearerDep,
    SignedInDep,
    session_cookie_kwargs,
    unauthorized,
)
from visionloop.serving.projects_api.deps import RegistryDep
from visionloop.serving.projects_api.sign_in_limits import SignInLimits, sign_in_limits
from visionloop.storage.models import utcnow
from visionloop.storage.users import (
    AuthenticationError,
    issue_token,
    new_token_secret,
    revoke_token_secret,
    verify_password,
)

__all__ = ["ProjectRolePublic", "SignInPublic", "router"]

router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES)


class ProjectRolePublic(BaseModel):
    project: str
    user: str
    role: str = Field(description="admin, reviewer, annotator or viewer")


class SignInPublic(BaseModel):
    access_token: str = Field(description="Send as 'Authorization: Bearer <token>'; shown once.")
    token_type: str = "bearer"
    expires_at: datetime
    projects: list[ProjectRolePublic] = Field(description="Where the token is valid, with the user's role there.")


@router.post("/token", response_model=SignInPublic,
             responses={401: {"description": "The user name and password hold in no project of this server."},
                        429: {"description": "Too many failed sign-ins from this address (`Retry-After` says when "
                                             "to try again)."}},
             summary="Sign in: a bearer token for every project where this user name and password hold")
def sign_in(
    request: Request, response: Response, registry: RegistryDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()], limits: Annotated[SignInLimits, Depends(sign_in_limits)],
) -> SignInPublic:
    """Also sets the ``vl_session`` cookie to the same token (accepted for GET and HEAD requests only)."""
    client = request.client.host if request.client else ""
    limits.check(client, form.username)
    held = []
    for project in registry.all():
        try:
            held.append((project, verify_password(project, form.username, form.password)))
        except AuthenticationError:
            continue
    if not held:
        limits.failed(client, form.username)
        raise unauthorized("invalid user name or password")
    secret, expires_at = new_token_secret(), utcnow() + SIGN_IN_LIFETIME
    for project, user in held:
        issue_token(project, user.name, name="sign-in", expires_at=expires_at, secret=secret)
    response.set_cookie(value=secret, max_age=int(SIGN_IN_LIFETIME.total_seconds()), **session_cookie_kwargs(request))
    return SignInPublic(access_token=secret, expires_at=expires_at, projects=[
        ProjectRolePublic(project=p.name, user=u.name, role=u.role.value) for p, u in held])


@router.delete("/token", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Sign out: revoke the bearer token in every project where it is valid; clear the cookie")
def sign_out(request: Request, access: SignedInDep, token: BearerDep) -> Response:
    for project, _ in access:
        revoke_token_secret(project, token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(**session_cookie_kwargs(request))
    return response
