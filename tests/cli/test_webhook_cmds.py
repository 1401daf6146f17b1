"""`visionloop webhook ...`: add (secret printed once), list, test against a real receiver on 127.0.0.1, deliveries,
retry, remove; bad input is one line."""

from __future__ import annotations

import json
import socket

from typer.testing import CliRunner

from tests.serving.webhook_receiver import receiving
from visionloop.cli.main import app
from visionloop.serving.webhooks import verify_signature

runner = CliRunner()


def run(*args: str, code: int = 0, stdin: str | None = None):
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, result.output
    return result


def test_add_test_list_remove(proj: str) -> None:
    with receiving([200]) as rx:
        added = json.loads(run("webhook", "add", proj, rx.url, "--kind", "review.done", "--kind", "model.trained",
                               "--json").stdout)
        assert added["kinds"] == ["review.done", "model.trained"] and len(added["secret"]) >= 32
        sent = json.loads(run("webhook", "test", proj, str(added["id"]), "--json").stdout)
        (got,) = rx.received
    assert (sent["state"], sent["attempts"], sent["last_status"]) == ("delivered", 1, 200)
    assert got.json["kind"] == "webhook.ping"
    assert verify_signature(added["secret"], got.body, timestamp=got.headers["X-Visionloop-Timestamp"],
                            signature=got.headers["X-Visionloop-Signature"])
    listed = json.loads(run("webhook", "list", proj, "--json").stdout)
    assert [w["id"] for w in listed] == [added["id"]] and "secret" not in listed[0]
    assert "shown once" in run("webhook", "add", proj, "https://example.com/in", "--off").stdout
    run("webhook", "remove", proj, str(added["id"]))
    assert [w["active"] for w in json.loads(run("webhook", "list", proj, "--json").stdout)] == [False]


def test_a_failed_test_exits_1_and_the_delivery_can_be_retried(proj: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    added = json.loads(run("webhook", "add", proj, f"http://127.0.0.1:{port}/in", "--secret-stdin", "--json",
                           stdin="a-secret-of-sixteen+\n").stdout)
    assert added["secret"] == "a-secret-of-sixteen+"
    sent = json.loads(run("webhook", "test", proj, str(added["id"]), "--json", code=1).stdout)
    assert sent["state"] == "pending" and sent["attempts"] == 1 and "ConnectError" in sent["last_error"]
    listed = json.loads(run("webhook", "deliveries", proj, str(added["id"]), "--state", "pending", "--json").stdout)
    assert listed["total"] == 1 and listed["items"][0]["id"] == sent["id"]
    out = run("webhook", "retry", proj, str(sent["id"]), code=1).output
    assert "only a failed delivery" in out


def test_bad_input_is_one_line(proj: str) -> None:
    out = run("webhook", "add", proj, "ftp://example.com/in", code=1).output
    assert "http:// or https://" in out and "Traceback" not in out
    assert "event kind 'nope' not found" in run("webhook", "add", proj, "https://e.com/", "--kind", "nope",
                                                 code=1).output
    assert "webhook 5 not found" in run("webhook", "test", proj, "5", code=1).output
