"""Webhook commands: add, list, remove, test, deliveries, retry (the platform server's worker sends deliveries)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.output import emit, handle_errors

__all__ = ["register", "webhook_app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
ProjectArg = Annotated[Path, typer.Argument(help="project directory")]
WebhookArg = Annotated[int, typer.Argument(help="webhook id (visionloop webhook list)")]

webhook_app = typer.Typer(help="Webhooks: signed HTTP posts of the project's events (review done, version created, "
                          "model trained, ...) to other systems, sent and retried by the platform server.")


def _open(path: Path):  # noqa: ANN202
    from visionloop.storage import Project

    return Project.open(path)


@webhook_app.command("add")
@handle_errors
def webhook_add(
    project: ProjectArg, url: Annotated[str, typer.Argument(help="http:// or https:// URL that receives the events")],
    kind: Annotated[list[str] | None, typer.Option("--kind", help="an event kind to receive (repeat; default: every "
                                                   "kind): review.done, version.created, model.trained, ...")] = None,
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="read the signing secret from stdin "
                                               "(default: a random one, printed once)")] = False,
    off: Annotated[bool, typer.Option("--off", help="add it turned off")] = False,
    author: Annotated[str, typer.Option(help="who adds it")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Add a webhook; its signing secret is printed this once."""
    from visionloop.storage.events import create_webhook

    secret = sys.stdin.readline().rstrip("\r\n") if secret_stdin else None
    with _open(project) as p:
        made = create_webhook(p, url, author=author, kinds=kind or [], secret=secret, active=not off)
    emit(made.to_json(), as_json=as_json, title="webhook added")
    if not as_json:
        typer.echo("the secret is shown once: the receiver checks each delivery's X-Visionloop-Signature with it")


@webhook_app.command("list")
@handle_errors
def webhook_list(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Webhooks of the project (without their secrets)."""
    from visionloop.storage.events import list_webhooks

    with _open(project) as p:
        emit([w.to_json() for w in list_webhooks(p)], as_json=as_json, title="webhooks")


@webhook_app.command("remove")
@handle_errors
def webhook_remove(project: ProjectArg, webhook: WebhookArg, as_json: JsonOpt = False) -> None:
    """Remove a webhook and its deliveries (the events stay)."""
    from visionloop.storage.events import delete_webhook

    with _open(project) as p:
        delete_webhook(p, webhook)
    emit({"removed": webhook}, as_json=as_json, title="webhook removed")


@webhook_app.command("test")
@handle_errors
def webhook_test(project: ProjectArg, webhook: WebhookArg, as_json: JsonOpt = False) -> None:
    """Send a test event (webhook.ping) now and print how it went; exit status 1 unless the receiver answered 2xx."""
    from visionloop.core.settings import Settings
    from visionloop.serving.webhooks import WebhookWorker
    from visionloop.storage.events import DeliveryState, get_delivery, queue_ping

    with _open(project) as p:
        delivery = queue_ping(p, webhook, author="cli")
        worker = WebhookWorker(lambda: [p], settings=Settings())
        try:
            worker.run_once(ids=[delivery.id])
        finally:
            worker.stop()
        delivery = get_delivery(p, delivery.id)
    emit(delivery.to_json(), as_json=as_json, title="test delivery")
    if delivery.state is not DeliveryState.DELIVERED:
        raise typer.Exit(1)


@webhook_app.command("deliveries")
@handle_errors
def webhook_deliveries(
    project: ProjectArg, webhook: WebhookArg,
    state: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="how many, newest first")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """A webhook's deliveries: state, attempts, last answer or error."""
    from visionloop.storage.events import list_deliveries

    with _open(project) as p:
        total, items = list_deliveries(p, webhook, state=state, limit=limit)
    emit([d.to_json() for d in items] if not as_json else {"total": total, "items": [d.to_json() for d in items]},
         as_json=as_json, title=f"deliveries ({total})")


@webhook_app.command("retry")
@handle_errors
def webhook_retry(project: ProjectArg, delivery: Annotated[int, typer.Argument(help="id of a failed delivery")],
                  as_json: JsonOpt = False) -> None:
    """Queue one more attempt of a failed delivery; the platform server sends it."""
    from visionloop.storage.events import retry_delivery

    with _open(project) as p:
        emit(retry_delivery(p, delivery).to_json(), as_json=as_json, title="delivery queued")


def register(app: typer.Typer) -> None:
    app.add_typer(webhook_app, name="webhook")
