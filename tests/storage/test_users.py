"""Users, roles and API tokens in the project database; the 0002 migration on a database made at 0001."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import inspect, select, text

from tests.storage.old_projects import database, old_project
from visionloop.core.errors import ConflictError, NotFoundError
from visionloop.storage import Project
from visionloop.storage import users as U
from visionloop.storage.models import ApiTokenRow, UserRow, utcnow


def test_roles_are_ordered() -> None:
    assert [r.value for r in sorted(U.Role, key=lambda r: r.rank)] == ["viewer", "annotator", "reviewer", "admin"]
    assert U.Role.ADMIN.allows(U.Role.VIEWER) and U.Role.REVIEWER.allows(U.Role.ANNOTATOR)
    assert not U.Role.ANNOTATOR.allows(U.Role.REVIEWER) and not U.Role.VIEWER.allows(U.Role.ANNOTATOR)
    with pytest.raises(NotFoundError, match="known: admin, reviewer, annotator, viewer"):
        U.Role.parse("boss")


def test_password_is_stored_as_argon2_hash_only(project_factory) -> None:
    project: Project = project_factory()
    user = U.add_user(project, "alice", role="annotator", password="correct horse")
    assert user.role is U.Role.ANNOTATOR and user.has_password
    with project.engine.connect() as c:
        stored = c.execute(select(UserRow.password_hash).where(UserRow.name == "alice")).scalar_one()
        dump = "\n".join(c.connection.driver_connection.iterdump())
    assert stored.startswith("$argon2id$") and "correct horse" not in dump
    assert U.verify_password(project, "alice", "correct horse").name == "alice"
    for name, password in (("alice", "wrong horse"), ("bob", "correct horse"), ("alice", "")):
        with pytest.raises(U.AuthenticationError, match="invalid user name or password"):
            U.verify_password(project, name, password)
    U.set_password(project, "alice", "another horse")
    with pytest.raises(U.AuthenticationError):
        U.verify_password(project, "alice", "correct horse")
    assert U.verify_password(project, "alice", "another horse").id == user.id


def test_bad_names_passwords_and_duplicates_are_refused(project_factory) -> None:
    project: Project = project_factory()
    with pytest.raises(U.UserInputError, match="8 to 1024 characters"):
        U.add_user(project, "alice", role="viewer", password="short")
    for bad in ("", " alice", "a/b", "x" * 129, "-lead"):
        with pytest.raises(U.UserInputError, match="user name"):
            U.add_user(project, bad, role="viewer")
    U.add_user(project, "alice", role="viewer")
    with pytest.raises(ConflictError, match="exists already"):
        U.add_user(project, "alice", role="admin")
    assert [u.name for u in U.list_users(project)] == ["alice"]
    with pytest.raises(NotFoundError, match="known: alice"):
        U.get_user(project, "alic")


def test_token_only_users_cannot_sign_in_with_a_password(project_factory) -> None:
    project: Project = project_factory()
    assert U.add_user(project, "ci-bot", role="annotator").has_password is False
    with pytest.raises(U.AuthenticationError):
        U.verify_password(project, "ci-bot", "anything-at-all")


def test_tokens_are_hashed_named_tracked_and_revocable(project_factory) -> None:
    project: Project = project_factory()
    U.add_user(project, "alice", role="annotator")
    made = U.issue_token(project, "alice", name="laptop")
    assert made.secret.startswith("vl_") and len(made.secret) == 3 + 43
    assert made.secret not in repr(made)
    with project.engine.connect() as c:
        stored = c.execute(select(ApiTokenRow.token_hash)).scalar_one()
    assert stored == hashlib.sha256(made.secret.encode()).hexdigest()

    user, token = U.verify_token(project, made.secret)
    assert (user.name, user.role, token.name, token.id) == ("alice", U.Role.ANNOTATOR, "laptop", made.token.id)
    [listed] = U.list_tokens(project, "alice")
    assert listed.last_used_at is not None and listed.active()

    other = U.issue_token(project, "alice", name="ci")
    assert other.secret != made.secret
    revoked = U.revoke_token(project, made.token.id)
    assert revoked.revoked_at is not None and not revoked.active()
    assert U.revoke_token(project, made.token.id).revoked_at == revoked.revoked_at
    with pytest.raises(U.AuthenticationError, match="revoked"):
        U.verify_token(project, made.secret)
    assert U.verify_token(project, other.secret)[0].name == "alice"
    assert [(t.name, t.active()) for t in U.list_tokens(project, "alice")] == [("laptop", False), ("ci", True)]
    for bad in ("", "vl_", made.secret[:-1] + "A", "Bearer " + other.secret, other.secret[3:], "vl_" + "x" * 300):
        with pytest.raises(U.AuthenticationError):
            U.verify_token(project, bad)
    with pytest.raises(NotFoundError, match="visionloop user tokens"):
        U.revoke_token(project, 999)


def test_expired_token_and_sign_out(project_factory) -> None:
    project: Project = project_factory()
    U.add_user(project, "alice", role="viewer")
    made = U.issue_token(project, "alice", name="sign-in", expires_at=utcnow() + timedelta(hours=1))
    assert U.verify_token(project, made.secret)[0].name == "alice"
    with pytest.raises(U.AuthenticationError, match="expired"):
        U.verify_token(project, made.secret, now=utcnow() + timedelta(hours=2))
    assert U.revoke_token_secret(project, made.secret) is True
    assert U.revoke_token_secret(project, made.secret) is False
    with pytest.raises(U.AuthenticationError):
        U.verify_token(project, made.secret)


def test_one_secret_can_be_stored_in_several_projects(project_factory) -> None:
    a, b = project_factory(name="a"), project_factory(name="b")
    for p in (a, b):
        U.add_user(p, "alice", role="viewer")
    secret = U.new_token_secret()
    U.issue_token(a, "alice", name="web", secret=secret)
    assert U.verify_token(a, secret)[0].name == "alice"
    with pytest.raises(U.AuthenticationError):
        U.verify_token(b, secret)
    U.issue_token(b, "alice", name="web", secret=secret)
    assert U.verify_token(b, secret)[0].name == "alice"


def test_last_admin_stays_and_removal_drops_tokens(project_factory) -> None:
    project: Project = project_factory()
    U.add_user(project, "root", role="admin")
    with pytest.raises(ConflictError, match="last admin"):
        U.remove_user(project, "root")
    with pytest.raises(ConflictError, match="last admin"):
        U.set_role(project, "root", "viewer")
    U.add_user(project, "alice", role="annotator")
    made = U.issue_token(project, "alice")
    assert U.set_role(project, "alice", "admin").role is U.Role.ADMIN
    assert U.set_role(project, "root", "reviewer").role is U.Role.REVIEWER
    with pytest.raises(ConflictError, match="last admin"):  # alice is now the only admin
        U.remove_user(project, "alice")
    U.set_role(project, "root", "admin")
    assert U.remove_user(project, "alice").name == "alice"
    with pytest.raises(U.AuthenticationError):
        U.verify_token(project, made.secret)
    with project.engine.connect() as c:
        assert c.execute(select(ApiTokenRow)).all() == []


def test_ensure_admin_creates_once(project_factory) -> None:
    project: Project = project_factory()
    first = U.ensure_admin(project)
    assert first.created and first.generated_password and len(first.generated_password) >= 16
    assert first.generated_password not in repr(first)
    assert U.verify_password(project, "admin", first.generated_password).role is U.Role.ADMIN
    again = U.ensure_admin(project)
    assert not again.created and again.generated_password is None
    other: Project = project_factory(name="q")
    chosen = U.ensure_admin(other, password="from-the-environment")
    assert chosen.created and chosen.generated_password is None
    assert U.verify_password(other, "admin", "from-the-environment").name == "admin"


def test_migration_upgrades_a_0001_database(tmp_path: Path) -> None:
    """A project made before users existed opens (upgrading to head) and keeps its data."""
    root = tmp_path / "old"
    with old_project(root, "0001"):
        pass
    with database(root) as engine:
        assert not inspect(engine).has_table("users")

    with Project.open(root) as project:
        names = inspect(project.engine).get_table_names()
        assert {"users", "api_tokens"} <= set(names)
        with project.engine.connect() as c:
            assert c.execute(text("select version_num from alembic_version")).scalar_one() != "0001"
        assert project.name == "old"
        U.add_user(project, "alice", role="viewer")
        assert U.verify_token(project, U.issue_token(project, "alice").secret)[0].name == "alice"


def test_password_hashing_is_bounded_in_memory(project_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ARGON2_SLOTS argon2 runs (64 MiB each) at once, however many sign-ins arrive together."""
    project: Project = project_factory()
    U.add_user(project, "alice", role="viewer", password="correct horse")
    active, peak, lock = [0], [0], threading.Lock()

    class Counting(PasswordHasher):
        def verify(self, hash: str, password: str) -> bool:  # noqa: A002
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            try:
                return super().verify(hash, password)
            finally:
                with lock:
                    active[0] -= 1

    monkeypatch.setattr(U, "_HASHER", Counting())
    with ThreadPoolExecutor(max_workers=12) as pool:
        users = list(pool.map(lambda _: U.verify_password(project, "alice", "correct horse").name, range(12)))
    assert users == ["alice"] * 12
    assert 1 <= peak[0] <= U.ARGON2_SLOTS


@pytest.mark.postgres
def test_users_and_tokens_on_postgres(tmp_path: Path) -> None:
    """The 0001 -> head upgrade and the user and token operations on PostgreSQL (CI sets the URL)."""
    url = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: set VISIONLOOP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@127.0.0.1/db")
    with database(url) as engine, engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    with old_project(url, "0001", name="pg"):
        pass
    with database(url) as engine:
        assert not inspect(engine).has_table("users")
    root = tmp_path / "pg"
    root.mkdir()
    (root / "visionloop.toml").write_text(f'name = "pg"\ntask = "detection"\ndb_url = "{url}"\n', encoding="utf-8")
    with Project.open(root) as project:
        first = U.ensure_admin(project)
        assert U.verify_password(project, "admin", first.generated_password or "").role is U.Role.ADMIN
        U.add_user(project, "alice", role="annotator")
        with pytest.raises(ConflictError):
            U.add_user(project, "alice", role="viewer")
        made = U.issue_token(project, "alice", name="ci", expires_at=utcnow() + timedelta(hours=1))
        assert U.verify_token(project, made.secret)[0].name == "alice"
        U.revoke_token(project, made.token.id)
        with pytest.raises(U.AuthenticationError):
            U.verify_token(project, made.secret)
        U.set_role(project, "alice", "admin")
        U.remove_user(project, "admin")
        assert [(u.name, u.role) for u in U.list_users(project)] == [("alice", U.Role.ADMIN)]
