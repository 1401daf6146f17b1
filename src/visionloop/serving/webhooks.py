"""The webhook delivery worker of the platform server, and the signature its deliveries carry.

Events are written by the store in the transaction of what they report (:mod:`visionloop.storage.events`), each with
a pending delivery per webhook that wants it. :class:`WebhookWorker` is one background thread of the platform server
(started and stopped by the app's lifespan) that sends them: it claims due deliveries of every served project, posts
at most ``Settings.webhook_concurrency`` at once with ``Settings.webhook_timeout_s``, and records the outcome; a 2xx
answer marks a delivery delivered, anything else (another status, a redirect, a timeout, a refused connection) is
retried with backoff until ``Settings.webhook_max_attempts`` (then ``failed``). Pending deliveries live in the
database, so a restart loses none; requests never wait for a receiver.

A delivery is ``POST url`` with the JSON body ``{"id", "kind", "created_at", "project", "payload"}`` (``id``: the
event's, the same in every attempt, so a receiver drops repeats) and the headers

``X-Visionloop-Event``
    the event kind (``review.done``, ``version.created``, ``model.trained``, ..., ``webhook.ping`` for a test);
``X-Visionloop-Delivery``
    the delivery's id;
``X-Visionloop-Timestamp``
    Unix seconds when this attempt was sent;
``X-Visionloop-Signature``
    ``sha256=`` + the hex HMAC-SHA256, keyed with the webhook's secret, of ``<timestamp>.<body>`` (the timestamp
    header, a dot, the raw body bytes).

With ``Settings.webhook_private_hosts`` off, a receiver's host must resolve to public addresses only (a webhook
cannot reach the network the server runs in), and the delivery connects to the address checked, with the host name
in the ``Host`` header and the TLS server name, so a second lookup cannot point it elsewhere. The worker also removes
events and finished deliveries older than ``Settings.event_keep_days``, once an hour.

A receiver recomputes the signature over the raw body, compares it in constant time, and refuses a timestamp too far
from its clock (a replayed old delivery): :func:`verify_signature` does it, and the README shows the same in a few
lines of plain Python.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx

from visionloop import __version__
from visionloop.core.settings import Settings
from visionloop.storage.events import (
    DueDelivery,
    RetryPolicy,
    claim_deliveries,
    mark_delivered,
    mark_failed,
    prune_events,
)
from visionloop.storage.models import utcnow
from visionloop.storage.project import Project

__all__ = [
    "EVENT_HEADER",
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookWorker",
    "public_address",
    "resolve_host",
    "retry_policy",
    "sign_delivery",
    "verify_signature",
]

EVENT_HEADER = "X-Visionloop-Event"
DELIVERY_HEADER = "X-Visionloop-Delivery"
TIMESTAMP_HEADER = "X-Visionloop-Timestamp"
SIGNATURE_HEADER = "X-Visionloop-Signature"
ANSWER_BYTES = 300
"""Bytes of a receiver's answer read (and kept as the error of a failed attempt); the rest is never read."""
LEASE_MARGIN_S = 30.0
"""A claim lasts the timeout plus this: a worker that stops mid-send leaves the delivery to be taken again."""
PRUNE_EVERY_S = 3600.0
"""How often the worker removes events and deliveries older than ``Settings.event_keep_days``."""

Resolver = Callable[[str, int], Sequence[str]]
"""A host name and port to the addresses it resolves to (:func:`resolve_host`; a test gives its own)."""

log = logging.getLogger(__name__)


def sign_delivery(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with secret>``: the ``X-Visionloop-Signature``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(secret: str, body: bytes, *, timestamp: str, signature: str, tolerance_s: float = 300.0,
                     now: float | None = None) -> bool:
    """What a receiver checks: the signature matches the raw ``body`` and the timestamp header, and the timestamp is
    within ``tolerance_s`` seconds of ``now`` (Unix seconds; default the clock), so an old delivery replayed fails."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign_delivery(secret, timestamp, body), signature)


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (an address given as the host is its own), in the resolver's order."""
    return list(dict.fromkeys(str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def public_address(host: str, port: int, resolve: Resolver = resolve_host) -> str:
    """The address a delivery to ``host`` connects to when private hosts are refused: the first it resolves to, once
    every one of them is public. ValueError names the one that is not (loopback, private, link-local, reserved)."""
    addresses = resolve(host, port)
    if not addresses:
        raise ValueError(f"{host} resolves to no address")
    for a in addresses:
        if not ipaddress.ip_address(a.split("%", 1)[0]).is_global:
            raise ValueError(f"{host} resolves to {a}, which is not a public address, and webhooks to private hosts "
                             "are off (VISIONLOOP_WEBHOOK_PRIVATE_HOSTS=false); use a public receiver, or turn "
                             "them on if this receiver is meant to be inside")
    return addresses[0]


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.webhook_max_attempts, base_s=settings.webhook_backoff_s,
                       cap_s=max(settings.webhook_backoff_max_s, settings.webhook_backoff_s))


class WebhookWorker:
    """Sends the due deliveries of the projects ``projects()`` returns, on a background thread.

    :meth:`run_once` does one round (claim, send at most ``webhook_concurrency`` at once, record) and returns how
    many deliveries it attempted; the thread repeats it, waiting ``webhook_poll_s`` after a round with nothing to do
    or until :meth:`wake`. ``clock`` (the time deliveries are due, signed and retried at) and ``rng`` (the backoff's
    jitter) may be given, so a test drives the retries without waiting for them; ``resolve`` too (how host names are
    looked up when private hosts are refused).
    """

    def __init__(self, projects: Callable[[], Sequence[Project]], *, settings: Settings,
                 clock: Callable[[], datetime] = utcnow, rng: random.Random | None = None,
                 transport: httpx.BaseTransport | None = None, resolve: Resolver = resolve_host) -> None:
        self._projects = projects
        self._clock = clock
        self._rng = rng or random.Random()
        self._resolve = resolve
        self._private_hosts = settings.webhook_private_hosts
        self._keep = timedelta(days=settings.event_keep_days)
        self._pruned_at: datetime | None = None
        self._policy = retry_policy(settings)
        self._concurrency = max(1, settings.webhook_concurrency)
        self._timeout_s = settings.webhook_timeout_s
        self._poll_s = settings.webhook_poll_s
        self._client = httpx.Client(timeout=httpx.Timeout(settings.webhook_timeout_s), follow_redirects=False,
                                    transport=transport, headers={"User-Agent": f"visionloop/{__version__}"},
                                    limits=httpx.Limits(max_connections=self._concurrency))
        self._pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="webhook")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="webhook-worker", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Look for due deliveries now (a test ping was queued)."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the round in progress (bounded by the timeout) and stop; what is pending stays in the database."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)
        self._client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once() > 0
            except Exception:  # one bad round (a database gone away) must not end the worker
                log.exception("webhook worker round failed")
                busy = False
            if not busy:
                self._wake.wait(self._poll_s)
                self._wake.clear()

    def run_once(self, *, ids: Sequence[int] | None = None) -> int:
        """One round over every project: claim up to ``webhook_concurrency`` due deliveries in all (only those of
        ``ids`` when given), send them at once, record each outcome. Returns how many were attempted."""
        now = self._clock()
        if self._pruned_at is None or (now - self._pruned_at).total_seconds() >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.prune(now)
        claimed: list[tuple[Project, DueDelivery]] = []
        for project in self._projects():
            free = self._concurrency - len(claimed)
            if free <= 0 or self._stop.is_set():
                break
            try:
                due = claim_deliveries(project, limit=free, lease_s=self._timeout_s + LEASE_MARGIN_S, now=now,
                                       ids=ids)
            except Exception:
                log.exception("claiming the webhook deliveries of project %s failed", project.name)
                continue
            claimed.extend((project, d) for d in due)
        for future in [self._pool.submit(self._deliver, p, d) for p, d in claimed]:
            future.result()
        return len(claimed)

    def prune(self, now: datetime) -> None:
        """Remove every served project's events and finished deliveries older than ``event_keep_days``."""
        for project in self._projects():
            try:
                deliveries, events = prune_events(project, before=now - self._keep)
            except Exception:
                log.exception("removing the old events of project %s failed", project.name)
                continue
            if deliveries or events:
                log.info("project %s: removed %d old events and %d finished deliveries", project.name, events,
                         deliveries)

    def _deliver(self, project: Project, delivery: DueDelivery) -> None:
        status, error = self._post(project, delivery)
        now = self._clock()
        if status is not None and 200 <= status < 300:
            mark_delivered(project, delivery.id, status=status, now=now)
        else:
            mark_failed(project, delivery.id, status=status, error=error or f"HTTP {status}", policy=self._policy,
                        now=now, rng=self._rng)

    def _post(self, project: Project, delivery: DueDelivery) -> tuple[int | None, str | None]:
        """(status, error): the receiver's status and the start of its answer, or (None, what went wrong)."""
        body = delivery.body(project.name)
        timestamp = str(int(self._clock().timestamp()))
        headers = {"Content-Type": "application/json", EVENT_HEADER: delivery.kind, DELIVERY_HEADER: str(delivery.id),
                   TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign_delivery(delivery.secret, timestamp, body)}
        url, extensions = httpx.URL(delivery.url), {}
        if not self._private_hosts:
            try:
                address = public_address(url.host, url.port or (443 if url.scheme == "https" else 80), self._resolve)
            except (OSError, ValueError) as exc:  # a host that does not resolve: tried again later, like a refusal
                return None, str(exc)[:ANSWER_BYTES]
            headers["Host"] = url.netloc.decode("ascii")
            extensions["sni_hostname"] = url.host
            url = url.copy_with(host=address)
        try:
            with self._client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer:
                start = b""
                for chunk in answer.iter_raw():
                    start += chunk
                    if len(start) >= ANSWER_BYTES:
                        break
                text = start[:ANSWER_BYTES].decode("utf-8", "replace").strip()
                return answer.status_code, f"HTTP {answer.status_code}" + (f": {text}" if text else "")
        except httpx.TimeoutException:
            return None, f"no answer within {self._timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 (any failure is a failed attempt, never a delivery stuck claimed)
            return None, f"{type(exc).__name__}: {exc}"[:ANSWER_BYTES]
