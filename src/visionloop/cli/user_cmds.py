"""User commands: add, list, remove, role, passwd, token, tokens; and the first admin of a server's projects."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.output import emit, handle_errors
from visionloop.core.settings import Settings

__all__ = ["announce_first_admins", "register", "user_app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
ProjectArg = Annotated[Path, typer.Argument(help="project directory")]
NameArg = Annotated[str, typer.Argument(help="user name")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="read the password from the first line of stdin "
                                             "(default: a random one, printed once)")]

user_app = typer.Typer(help="Users of a project (roles: admin > reviewer > annotator > viewer) and their API tokens.")


def _open(path: Path):  # noqa: ANN202
    from visionloop.storage import Project

    return Project.open(path)


def _read_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated): the first line of stdin, or a random password to print once."""
    if not from_stdin:
        return secrets.token_urlsafe(12), True
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise typer.BadParameter("--password-stdin: stdin gave no password (pipe it in: echo \"$PW\" | ...)")
    return line, False


@user_app.command("add")
@handle_errors
def user_add(
    project: ProjectArg, name: NameArg,
    role: Annotated[str, typer.Option(help="admin, reviewer, annotator or viewer")],
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="tokens only (a script or service)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with a role; people get a password, scripts (--no-password) sign in with tokens."""
    from visionloop.storage.users import add_user

    password, generated = (None, False) if no_password else _read_password(password_stdin)
    with _open(project) as p:
        user = add_user(p, name, role=role, password=password)
    data = user.to_json()
    if generated:
        data["password"] = password
    emit(data, as_json=as_json, title="user added")
    if generated and not as_json:
        typer.echo("the password is shown once; change it with: visionloop user passwd PROJECT NAME --password-stdin")


@user_app.command("list")
@handle_errors
def user_list(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Users with their roles."""
    from visionloop.storage.users import list_users

    with _open(project) as p:
        emit([u.to_json() for u in list_users(p)], as_json=as_json, title="users")


@user_app.command("remove")
@handle_errors
def user_remove(project: ProjectArg, name: NameArg, as_json: JsonOpt = False) -> None:
    """Remove a user and their tokens (their revisions keep their name; the last admin stays)."""
    from visionloop.storage.users import remove_user

    with _open(project) as p:
        emit({"removed": remove_user(p, name).name}, as_json=as_json)


@user_app.command("role")
@handle_errors
def user_role(
    project: ProjectArg, name: NameArg,
    role: Annotated[str, typer.Argument(help="admin, reviewer, annotator or viewer")], as_json: JsonOpt = False,
) -> None:
    """Change a user's role."""
    from visionloop.storage.users import set_role

    with _open(project) as p:
        emit(set_role(p, name, role).to_json(), as_json=as_json, title="user")


@user_app.command("passwd")
@handle_errors
def user_passwd(project: ProjectArg, name: NameArg, password_stdin: PasswordStdin = False,
                as_json: JsonOpt = False) -> None:
    """Set a user's password (existing tokens stay valid; revoke them with `user token --revoke`)."""
    from visionloop.storage.users import set_password

    password, generated = _read_password(password_stdin)
    with _open(project) as p:
        data = set_password(p, name, password).to_json()
    if generated:
        data["password"] = password
    emit(data, as_json=as_json, title="password set")


@user_app.command("token")
@handle_errors
def user_token(
    project: ProjectArg,
    name: Annotated[str | None, typer.Argument(help="user to make a token for")] = None,
    token_name: Annotated[str, typer.Option("--name", help="what the token is for, e.g. laptop, ci")] = "cli",
    revoke: Annotated[int | None, typer.Option("--revoke", help="revoke the token with this id instead")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make an API token for a user (printed once: send it as 'Authorization: Bearer <token>'), or --revoke ID."""
    from visionloop.storage.users import issue_token, revoke_token

    if (name is None) == (revoke is None):
        raise typer.BadParameter("give a user NAME to make a token, or --revoke ID to revoke one (not both)")
    with _open(project) as p:
        if revoke is not None:
            emit(revoke_token(p, revoke).to_json(), as_json=as_json, title="token revoked")
            return
        made = issue_token(p, name, name=token_name)  # type: ignore[arg-type]
    if as_json:
        emit({**made.token.to_json(), "token": made.secret}, as_json=True)
        return
    typer.echo(made.secret)
    typer.echo(f"token {made.token.id} ({made.token.name}) of {made.token.user}: shown once, keep it secret; "
               f"revoke it with: visionloop user token {project} --revoke {made.token.id}", err=True)


@user_app.command("tokens")
@handle_errors
def user_tokens(
    project: ProjectArg, name: Annotated[str | None, typer.Argument(help="user (default: every user)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """API tokens (id, name, made, last used, expiry, revoked); never their secrets."""
    from visionloop.storage.users import list_tokens

    with _open(project) as p:
        emit([t.to_json() for t in list_tokens(p, name)], as_json=as_json, title="tokens")


def announce_first_admins(paths: Sequence[Path], *, settings: Settings, url: str) -> None:
    """Give each served project without users an ``admin`` and print how to sign in (before a server starts).

    The password is ``settings.admin_password`` (``VISIONLOOP_ADMIN_PASSWORD``) or a random one printed once.
    """
    from visionloop.serving.projects_api.project_registry import find_project_dirs
    from visionloop.storage import Project
    from visionloop.storage.users import ensure_admin

    chosen = settings.admin_password.get_secret_value() if settings.admin_password else None
    for root in find_project_dirs(list(paths)):
        with Project.open(root, settings=settings) as p:
            first = ensure_admin(p, password=chosen)
        if not first.created:
            continue
        source = ("the password from VISIONLOOP_ADMIN_PASSWORD" if first.generated_password is None
                  else f"password {first.generated_password}  (shown once)")
        typer.echo(f"project {p.name}: created user '{first.name}' with {source}; "
                   f"change it with: visionloop user passwd {root} {first.name} --password-stdin")
    typer.echo(
        f"sign in: POST {url}/api/v1/auth/token with form fields username and password gives a bearer token (the "
        f"'Authorize' button of {url}/docs does it); scripts use a token from "
        "`visionloop user token PROJECT NAME`; send 'Authorization: Bearer <token>'. A lost password: "
        "`visionloop user passwd PROJECT NAME`"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
