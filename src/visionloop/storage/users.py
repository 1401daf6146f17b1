"""Users, roles and API tokens of a project, kept in the project's own database.

Roles, strongest first: ``admin > reviewer > annotator > viewer``; a role may do what it names and everything a weaker
role may (viewer reads, annotator saves annotations, reviewer reviews, admin manages users, classes and versions).

Passwords are hashed with argon2id (``argon2.PasswordHasher``: salted, memory-hard, its parameters kept in the stored
string and upgraded on the next sign-in when they change). They are never stored, returned or logged in clear. A
sign-in with an unknown user name still runs one argon2 verification, so the answer time does not tell which names
exist.

API tokens are ``vl_`` followed by ``secrets.token_urlsafe(32)`` (256 random bits), shown once when made. Only their
sha256 is stored. A fast hash is right here, unlike for passwords: argon2's cost exists to slow down guessing of
low-entropy secrets that people choose, while 256 random bits cannot be guessed from a stolen hash at any speed; and an
unsalted hash lets the server find a token with one indexed lookup per request instead of an argon2 run per request.
Tokens are named, per user, record when they were made and last used (to the minute), may expire (sign-in tokens) and
are revoked, never deleted, so a listing shows what existed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from visionloop.core.errors import ConflictError, NotFoundError, VisionloopError
from visionloop.storage.models import ApiTokenRow, UserRow, utcnow
from visionloop.storage.project import Project

__all__ = [
    "ADMIN_NAME",
    "ARGON2_SLOTS",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "TOKEN_PREFIX",
    "ApiToken",
    "AuthenticationError",
    "FirstAdmin",
    "NewToken",
    "Role",
    "User",
    "UserInputError",
    "add_user",
    "copy_user",
    "ensure_admin",
    "get_user",
    "hash_token",
    "issue_token",
    "list_tokens",
    "list_users",
    "new_token_secret",
    "remove_user",
    "revoke_token",
    "revoke_token_secret",
    "set_password",
    "set_role",
    "verify_password",
    "verify_token",
]

TOKEN_PREFIX = "vl_"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
ADMIN_NAME = "admin"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most once a minute per token, so reads do not each cost a database write."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_HASHER = PasswordHasher()
ARGON2_SLOTS = 4
"""Password hashes computed at once in a process; each takes the hasher's 64 MiB, so many sign-ins at once wait
instead of taking ``64 MiB x threads`` of memory."""
_SLOTS = threading.BoundedSemaphore(ARGON2_SLOTS)


def _hash_password(password: str) -> str:
    with _SLOTS:
        return _HASHER.hash(password)


def _verify_password_hash(stored: str, password: str) -> None:
    with _SLOTS:
        _HASHER.verify(stored, password)


class Role(StrEnum):
    """What a user may do; compare with :meth:`allows`."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    ANNOTATOR = "annotator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: Role) -> bool:
        """True when this role may do what ``needed`` may."""
        return self.rank >= needed.rank

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError("role", value, choices=[r.value for r in cls]) from None


_RANKS = {Role.VIEWER: 0, Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class AuthenticationError(VisionloopError):
    """Credentials that match no user: a wrong name or password, an unknown, revoked or expired token.

    The message does not say which, so it cannot be used to find out user names or token states.
    """

    def __init__(self, reason: str = "invalid credentials") -> None:
        self.reason = reason
        super().__init__(reason)


class UserInputError(VisionloopError, ValueError):
    """A user name or password that cannot be used; ``field`` names it, the message says what is needed."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    created_at: datetime
    has_password: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role.value, "created_at": self.created_at,
                "has_password": self.has_password}


@dataclass(frozen=True)
class ApiToken:
    """A token's record; the secret itself is never kept."""

    id: int
    user: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.user, "name": self.name, "created_at": self.created_at,
                "last_used_at": self.last_used_at, "expires_at": self.expires_at, "revoked_at": self.revoked_at,
                "active": self.active()}


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``secret`` is the only copy; give it to its user and forget it."""

    token: ApiToken
    secret: str = field(repr=False)


@dataclass(frozen=True)
class FirstAdmin:
    """What :func:`ensure_admin` did: ``created`` an admin, with ``generated_password`` when it chose one."""

    name: str
    created: bool
    generated_password: str | None = field(default=None, repr=False)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without a zone; the store writes UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=Role(row.role), created_at=_utc(row.created_at),  # type: ignore[arg-type]
                has_password=row.password_hash is not None)


def _token(row: Any, user: str) -> ApiToken:
    return ApiToken(id=row.id, user=user, name=row.name, created_at=_utc(row.created_at),  # type: ignore[arg-type]
                    last_used_at=_utc(row.last_used_at), expires_at=_utc(row.expires_at),
                    revoked_at=_utc(row.revoked_at))


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UserInputError("user name", f"{name!r} is not usable: 1 to 128 letters, digits, '.', '_', '@' or '-', "
                             "starting with a letter or digit")
    return name


def _check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise UserInputError("password", f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long, "
                             f"got {len(password)}; choose a longer one")
    return password


def hash_token(secret: str) -> str:
    """sha256 (hex) of an API token, as stored (see the module docstring for why sha256 suffices)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token_secret() -> str:
    """A fresh token: ``vl_`` + 43 url-safe characters (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@functools.cache
def _dummy_hash() -> str:
    return _hash_password(secrets.token_urlsafe(16))


def _user_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(UserRow).where(UserRow.name == name)).first()
    if row is None:
        names = list(conn.execute(select(UserRow.name).order_by(UserRow.name)).scalars())
        raise NotFoundError("user", name, choices=names, hint="add one with: visionloop user add PROJECT NAME --role R")
    return row


def _admins(conn: Connection) -> int:
    return int(conn.execute(select(func.count(UserRow.id)).where(UserRow.role == Role.ADMIN.value)).scalar_one())


# ---- users ----------------------------------------------------------------------------------------------------
def add_user(project: Project, name: str, *, role: Role | str, password: str | None = None) -> User:
    """Add a user; without ``password`` it signs in with API tokens only (a script, a service)."""
    role, name = Role.parse(role), _check_name(name)
    pw_hash = _hash_password(_check_password(password)) if password is not None else None
    try:
        with project.transaction() as c:
            c.execute(insert(UserRow).values(name=name, role=role.value, password_hash=pw_hash, created_at=utcnow()))
            return _user(_user_row(c, name))
    except IntegrityError as e:
        raise ConflictError(f"user {name!r} exists already; choose another name or remove it first") from e


def copy_user(source: Project, target: Project, name: str, *, role: Role | str) -> User:
    """Add user ``name`` of ``source`` to ``target`` with ``role`` and the same password hash (the creator of a new
    project signs in there with the password they already have)."""
    role = Role.parse(role)
    with source.engine.connect() as c:
        pw_hash = _user_row(c, name).password_hash
    try:
        with target.transaction() as c:
            c.execute(insert(UserRow).values(name=name, role=role.value, password_hash=pw_hash, created_at=utcnow()))
            return _user(_user_row(c, name))
    except IntegrityError as e:
        raise ConflictError(f"user {name!r} exists already in project {target.name!r}") from e


def get_user(project: Project, name: str) -> User:
    with project.engine.connect() as c:
        return _user(_user_row(c, name))


def list_users(project: Project) -> list[User]:
    with project.engine.connect() as c:
        return [_user(r) for r in c.execute(select(UserRow).order_by(UserRow.name))]


def remove_user(project: Project, name: str) -> User:
    """Remove a user and their tokens; the revisions they made keep their name. The last admin stays."""
    with project.transaction() as c:
        row = _user_row(c, name)
        if row.role == Role.ADMIN.value and _admins(c) == 1:
            raise ConflictError(f"{name!r} is the project's last admin; make another user admin first")
        c.execute(ApiTokenRow.__table__.delete().where(ApiTokenRow.user_id == row.id))
        c.execute(UserRow.__table__.delete().where(UserRow.id == row.id))
        return _user(row)


def set_role(project: Project, name: str, role: Role | str) -> User:
    role = Role.parse(role)
    with project.transaction() as c:
        row = _user_row(c, name)
        if row.role == Role.ADMIN.value and role is not Role.ADMIN and _admins(c) == 1:
            raise ConflictError(f"{name!r} is the project's last admin; make another user admin first")
        c.execute(update(UserRow).where(UserRow.id == row.id).values(role=role.value))
        return _user(_user_row(c, name))


def set_password(project: Project, name: str, password: str) -> User:
    pw_hash = _hash_password(_check_password(password))
    with project.transaction() as c:
        row = _user_row(c, name)
        c.execute(update(UserRow).where(UserRow.id == row.id).values(password_hash=pw_hash))
        return _user(_user_row(c, name))


def verify_password(project: Project, name: str, password: str) -> User:
    """The user whose name and password these are; AuthenticationError otherwise (same answer for both causes)."""
    with project.engine.connect() as c:
        row = c.execute(select(UserRow).where(UserRow.name == name)).first()
    stored = row.password_hash if row is not None else None
    try:
        _verify_password_hash(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("invalid user name or password") from None
    if row is None or stored is None:
        raise AuthenticationError("invalid user name or password")
    if _HASHER.check_needs_rehash(stored):
        with project.transaction() as c:
            c.execute(update(UserRow).where(UserRow.id == row.id).values(password_hash=_hash_password(password)))
    return _user(row)


def ensure_admin(project: Project, *, password: str | None = None) -> FirstAdmin:
    """On a project without users, add ``admin`` with ``password`` (or a random one, returned once); else nothing."""
    with project.engine.connect() as c:
        if c.execute(select(UserRow.id).limit(1)).first() is not None:
            return FirstAdmin(name=ADMIN_NAME, created=False)
    generated = secrets.token_urlsafe(12) if password is None else None
    try:
        add_user(project, ADMIN_NAME, role=Role.ADMIN, password=password if password is not None else generated)
    except ConflictError:  # another server process made it first
        return FirstAdmin(name=ADMIN_NAME, created=False)
    return FirstAdmin(name=ADMIN_NAME, created=True, generated_password=generated)


# ---- tokens ---------------------------------------------------------------------------------------------------
_TOKENS = select(ApiTokenRow, UserRow.name.label("user_name")).join(UserRow, UserRow.id == ApiTokenRow.user_id)
"""Token rows with their user's name."""


def issue_token(
    project: Project, user: str, *, name: str = "token", expires_at: datetime | None = None, secret: str | None = None,
) -> NewToken:
    """Make an API token for ``user``; the returned secret is the only copy.

    ``secret`` stores a given secret (from :func:`new_token_secret`) instead of a fresh one: a sign-in on a server of
    several projects stores one secret in each project where the credentials hold, so one bearer works for all.
    """
    secret = secret or new_token_secret()
    if not name or len(name) > 128:
        raise UserInputError("token name", "1 to 128 characters")
    with project.transaction() as c:
        row = _user_row(c, user)
        token_id = c.execute(insert(ApiTokenRow).values(
            user_id=row.id, name=name, token_hash=hash_token(secret), created_at=utcnow(), expires_at=expires_at,
        )).inserted_primary_key[0]
        token = c.execute(select(ApiTokenRow).where(ApiTokenRow.id == token_id)).one()
        return NewToken(token=_token(token, row.name), secret=secret)


def list_tokens(project: Project, user: str | None = None) -> list[ApiToken]:
    """Token records (no secrets) of one user, or of all, oldest first."""
    q = _TOKENS
    with project.engine.connect() as c:
        if user is not None:
            q = q.where(UserRow.id == _user_row(c, user).id)
        return [_token(r, r.user_name) for r in c.execute(q.order_by(ApiTokenRow.id))]


def revoke_token(project: Project, token_id: int) -> ApiToken:
    """Revoke a token by id (as :func:`list_tokens` shows it); revoking twice keeps the first time."""
    with project.transaction() as c:
        row = c.execute(_TOKENS.where(ApiTokenRow.id == token_id)).first()
        if row is None:
            raise NotFoundError("token", token_id, hint="list them with: visionloop user tokens PROJECT NAME")
        if row.revoked_at is None:
            c.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(revoked_at=utcnow()))
            row = c.execute(_TOKENS.where(ApiTokenRow.id == token_id)).one()
        return _token(row, row.user_name)


def revoke_token_secret(project: Project, secret: str) -> bool:
    """Revoke the active token whose secret this is (a sign-out); False when there is none in this project."""
    with project.transaction() as c:
        done = c.execute(update(ApiTokenRow).where(ApiTokenRow.token_hash == hash_token(secret),
                                                   ApiTokenRow.revoked_at.is_(None)).values(revoked_at=utcnow()))
        return done.rowcount > 0


def verify_token(project: Project, secret: str, *, now: datetime | None = None) -> tuple[User, ApiToken]:
    """The user and token record of an active token; AuthenticationError for an unknown, revoked or expired one.

    The lookup goes by the token's sha256: timing can at most tell something about the hash of the value sent, which
    does not lead to a valid token; the stored hash is compared once more in constant time.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 256:
        raise AuthenticationError("invalid token")
    digest = hash_token(secret)
    now = now or utcnow()
    with project.engine.connect() as c:
        row = c.execute(select(ApiTokenRow, UserRow.name.label("user_name"), UserRow.role, UserRow.password_hash,
                               UserRow.created_at.label("user_created_at"))
                        .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                        .where(ApiTokenRow.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise AuthenticationError("invalid token")
    token = _token(row, row.user_name)
    if not token.active(now):
        raise AuthenticationError("invalid token: revoked or expired")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        try:
            with project.transaction() as c:
                c.execute(update(ApiTokenRow).where(ApiTokenRow.id == token.id).values(last_used_at=now))
        except OperationalError:  # a busy database: the last use is informative, the request goes on
            pass
    user = User(id=row.user_id, name=row.user_name, role=Role(row.role), created_at=_utc(row.user_created_at),  # type: ignore[arg-type]
                has_password=row.password_hash is not None)
    return user, token
