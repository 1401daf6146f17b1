"""`visionloop user ...`: add, list, role, passwd, token, tokens, remove; and the first admin of a served project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.cli.user_cmds import announce_first_admins
from visionloop.core.settings import Settings
from visionloop.storage import Project
from visionloop.storage import users as U

runner = CliRunner()


def run(*args: str, ok: bool = True, stdin: str | None = None):
    result = runner.invoke(app, list(args), input=stdin)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_add_list_role_passwd_remove(proj: str) -> None:
    added = json.loads(run("user", "add", proj, "alice", "--role", "annotator", "--json").stdout)
    assert added["name"] == "alice" and added["role"] == "annotator" and added["has_password"] is True
    generated = added["password"]
    with Project.open(proj) as p:
        assert U.verify_password(p, "alice", generated).name == "alice"

    run("user", "add", proj, "carol", "--role", "viewer", "--password-stdin", stdin="carols password\n")
    run("user", "add", proj, "bot", "--role", "annotator", "--no-password")
    listed = json.loads(run("user", "list", proj, "--json").stdout)
    assert [(u["name"], u["role"], u["has_password"]) for u in listed] == [
        ("alice", "annotator", True), ("bot", "annotator", False), ("carol", "viewer", True)]
    assert "password" not in json.dumps(listed).replace("has_password", "")

    assert json.loads(run("user", "role", proj, "carol", "reviewer", "--json").stdout)["role"] == "reviewer"
    run("user", "passwd", proj, "carol", "--password-stdin", stdin="a new password\n")
    with Project.open(proj) as p:
        assert U.verify_password(p, "carol", "a new password").role is U.Role.REVIEWER
        with pytest.raises(U.AuthenticationError):
            U.verify_password(p, "carol", "carols password")

    assert json.loads(run("user", "remove", proj, "carol", "--json").stdout) == {"removed": "carol"}
    assert [u["name"] for u in json.loads(run("user", "list", proj, "--json").stdout)] == ["alice", "bot"]


def test_errors_are_one_line(proj: str) -> None:
    run("user", "add", proj, "alice", "--role", "viewer", "--no-password")
    for args, fragment in (
        (("user", "add", proj, "alice", "--role", "viewer", "--no-password"), "exists already"),
        (("user", "add", proj, "bob", "--role", "boss", "--no-password"), "role 'boss' not found"),
        (("user", "remove", proj, "nobody"), "user 'nobody' not found; known: alice"),
        (("user", "tokens", proj, "nobody"), "not found"),
        (("user", "token", proj, "--revoke", "42"), "token 42 not found"),
    ):
        result = run(*args, ok=False)
        assert result.exit_code == 1 and fragment in result.output, (args, result.output)
        assert "Traceback" not in result.output
    short = run("user", "add", proj, "bob", "--role", "viewer", "--password-stdin", stdin="short\n", ok=False)
    assert short.exit_code == 1 and "8 to 1024 characters" in short.output
    both = run("user", "token", proj, "alice", "--revoke", "1", ok=False)
    assert both.exit_code == 2 and "not both" in both.output


def test_token_is_printed_once_listed_without_secret_and_revoked(proj: str) -> None:
    run("user", "add", proj, "alice", "--role", "annotator", "--no-password")
    made = json.loads(run("user", "token", proj, "alice", "--name", "laptop", "--json").stdout)
    secret = made["token"]
    assert secret.startswith("vl_") and made["name"] == "laptop" and made["user"] == "alice"
    plain = run("user", "token", proj, "alice")
    plain_secret = plain.stdout.strip().splitlines()[0]
    assert plain_secret.startswith("vl_") and plain_secret != secret

    listed = run("user", "tokens", proj, "alice", "--json").stdout
    assert secret not in listed and plain_secret not in listed
    rows = json.loads(listed)
    assert [(t["name"], t["active"]) for t in rows] == [("laptop", True), ("cli", True)]
    with Project.open(proj) as p:
        assert U.verify_token(p, secret)[0].name == "alice"

    revoked = json.loads(run("user", "token", proj, "--revoke", str(made["id"]), "--json").stdout)
    assert revoked["active"] is False and revoked["revoked_at"]
    with Project.open(proj) as p, pytest.raises(U.AuthenticationError):
        U.verify_token(p, secret)
    assert [t["active"] for t in json.loads(run("user", "tokens", proj, "--json").stdout)] == [False, True]


def test_first_start_creates_one_admin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        Project.create(tmp_path / name, task="detection").close()
    announce_first_admins([tmp_path], settings=Settings(), url="http://127.0.0.1:8000")
    out = capsys.readouterr().out
    passwords = [line.split("password ")[1].split()[0] for line in out.splitlines() if "created user 'admin'" in line]
    assert len(passwords) == 2 and passwords[0] != passwords[1]
    assert "POST http://127.0.0.1:8000/api/v1/auth/token" in out and "Authorization: Bearer" in out
    for name, password in zip(("a", "b"), passwords, strict=True):
        with Project.open(tmp_path / name) as p:
            assert U.verify_password(p, "admin", password).role is U.Role.ADMIN

    announce_first_admins([tmp_path / "a"], settings=Settings(), url="http://h:1")
    again = capsys.readouterr().out
    assert "created user" not in again and "sign in" in again


def test_first_admin_password_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    Project.create(tmp_path / "a", task="detection").close()
    monkeypatch.setenv("VISIONLOOP_ADMIN_PASSWORD", "chosen by the operator")
    announce_first_admins([tmp_path / "a"], settings=Settings(), url="http://h:1")
    out = capsys.readouterr().out
    assert "VISIONLOOP_ADMIN_PASSWORD" in out and "chosen by the operator" not in out
    with Project.open(tmp_path / "a") as p:
        assert U.verify_password(p, "admin", "chosen by the operator").name == "admin"
