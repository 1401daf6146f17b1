"""Production feedback: the model server sends the predictions its samplers choose back to a project for review.

A request only runs the samplers (:mod:`visionloop.active.samplers`, pure and quick) on its prediction and hands a
chosen image to one sender thread through a queue bounded in entries and bytes
(:class:`~visionloop.serving.model_server.prediction_log.BoundedHandoff`); it never waits for the network. The sender
POSTs the image and a JSON ``sample`` to ``URL/production`` (``URL``: the project API base,
``http://host:8000/api/v1/projects/NAME``) with a bearer token of an annotator-level user.

What cannot be sent (the project server is down, slow past ``timeout_s``, or answers 401/403/404/408/429/5xx) goes
to the spool, one file per sample under ``spool_dir``, bounded in bytes and files: when full, the oldest samples are
dropped and counted. The spool is retried oldest first with exponential backoff (``retry_min_s`` doubling up to
``retry_max_s``); while it holds samples, new ones join it, so they are sent in order. It survives a restart. Each
sample carries a ``request_id`` (uuid4) made when it was chosen: a retry after a lost answer is stored once by the
project. A sample the project refuses as invalid (400, 413, 415, 422) is counted in ``failed`` and dropped.

When the server serves exactly two models and a ``disagreement`` sampler is configured, the sender thread predicts
the image with the other model too and compares (the request has already been answered).

Counters (``/metrics``): ``sent``, ``spooled`` (written to the spool), ``dropped`` (the hand-off queue or the spool
was full), ``failed`` (refused by the project, or unreadable in the spool), and the spool's files and bytes now.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from visionloop.active.samplers import FeedbackSampler, SamplingConfig, Selection, Thresholds, load_sampling_config
from visionloop.core.errors import VisionloopError
from visionloop.core.package import Package
from visionloop.serving.model_server.prediction_log import BoundedHandoff
from visionloop.serving.model_server.served import ServedModel

__all__ = [
    "DEFAULT_SAMPLING", "DEFAULT_SPOOL_MAX_BYTES", "DEFAULT_SPOOL_MAX_FILES", "FeedbackSender", "FeedbackSettings", "Spool",
    "TOKEN_ENV", "feedback_url",
]

TOKEN_ENV = "VISIONLOOP_FEEDBACK_TOKEN"
DEFAULT_SPOOL_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_SPOOL_MAX_FILES = 10_000
_REFUSED = frozenset({400, 413, 415, 422})
"""Answers that mean the sample itself is wrong: sending it again would never help."""
DEFAULT_SAMPLING = load_sampling_config({"samplers": [
    {"kind": "random", "rate": 0.01, "per_hour": 60},
    {"kind": "low_confidence", "max_score": 0.5, "per_hour": 60},
]})
"""Without a sampling config: a 1% random slice and predictions whose least sure item scores under 0.5, each at most
60 an hour."""
_SUFFIX = ".sample"
_SPOOL_BATCH = 16
_log = logging.getLogger(__name__)


def feedback_url(url: str) -> str:
    """The project API base a server sends to, checked: ``http(s)://host[:port]/api/v1/projects/NAME``."""
    parsed = httpx.URL(url.rstrip("/"))
    if parsed.scheme not in {"http", "https"} or not parsed.host or "/projects/" not in parsed.path:
        raise VisionloopError(f"--feedback {url!r} is not a project API address; give the project's base, e.g. "
                              "http://host:8000/api/v1/projects/NAME")
    return str(parsed)


@dataclass(frozen=True, kw_only=True)
class FeedbackSettings:
    """Where and how to send (see the module docstring); sizes in bytes, times in seconds."""

    url: str
    sampling: SamplingConfig
    spool_dir: Path
    token: str | None = None
    server: str = field(default_factory=socket.gethostname)
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    spool_max_files: int = DEFAULT_SPOOL_MAX_FILES
    max_pending: int = 64
    max_pending_bytes: int = 64 * 1024 * 1024
    timeout_s: float = 10.0
    retry_min_s: float = 1.0
    retry_max_s: float = 300.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", feedback_url(self.url))
        object.__setattr__(self, "spool_dir", Path(self.spool_dir))
        if self.spool_max_bytes < 1 or self.spool_max_files < 1:
            raise VisionloopError("the feedback spool needs room: spool_max_bytes and spool_max_files >= 1")
        if not 0 < self.retry_min_s <= self.retry_max_s:
            raise VisionloopError(f"retry_min_s ({self.retry_min_s}) must be > 0 and <= retry_max_s "
                                  f"({self.retry_max_s})")


class Spool:
    """Samples waiting to be sent, one file each (``<time ns>-<request_id>.sample``: the JSON sample, a newline,
    the image bytes), oldest first; at most ``max_files`` files and ``max_bytes`` bytes. Used by one thread."""

    def __init__(self, directory: Path, *, max_bytes: int, max_files: int) -> None:
        self.directory, self.max_bytes, self.max_files = Path(directory), max_bytes, max_files
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in self.directory.glob("*.tmp"):  # a write cut short by a crash
            tmp.unlink(missing_ok=True)
        self._files = {p: p.stat().st_size for p in sorted(self.directory.glob(f"*{_SUFFIX}"))}
        self.bytes = sum(self._files.values())
        self._last = 0

    def __len__(self) -> int:
        return len(self._files)

    def add(self, sample: dict[str, Any], data: bytes) -> tuple[bool, int]:
        """Write a sample; returns whether it was written (not when it alone is larger than the spool) and how many
        of the oldest were dropped to make room."""
        record = json.dumps(sample).encode() + b"\n" + data
        if len(record) > self.max_bytes:
            return False, 0
        dropped = 0
        while self._files and (len(self._files) >= self.max_files or self.bytes + len(record) > self.max_bytes):
            self.remove(next(iter(self._files)))
            dropped += 1
        self._last = max(time.time_ns(), self._last + 1)
        path = self.directory / f"{self._last:020d}-{sample['request_id']}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(record)
        os.replace(tmp, path)
        self._files[path] = len(record)
        self.bytes += len(record)
        return True, dropped

    def oldest(self) -> Path | None:
        return next(iter(self._files), None)

    @staticmethod
    def read(path: Path) -> tuple[dict[str, Any], bytes]:
        raw = path.read_bytes()
        head, _, data = raw.partition(b"\n")
        return json.loads(head), data

    def remove(self, path: Path) -> None:
        self.bytes -= self._files.pop(path, 0)
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Chosen:
    model: str
    data: bytes
    prediction: dict[str, Any]
    selection: Selection | None
    other: str | None
    sample: dict[str, Any]


def _maker(served: ServedModel, prediction: dict[str, Any]) -> Package:
    """The package that made ``prediction``: the served one, or its canary's challenger when the prediction names the
    challenger's version."""
    canary = getattr(served, "canary", None)
    version = prediction.get("package_version")
    if canary is not None and version is not None and version == getattr(canary.challenger, "version", None):
        return canary.challenger.package
    return served.package


class _SendError(Exception):
    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class FeedbackSender:
    """Choose predictions with the samplers and send them to the project, in the background (see the module).

    ``models``: the server's served models by name (the live mapping, so a reloaded model's new package is used; or
    :meth:`attach` it once the server has it).
    ``clock`` (monotonic seconds) drives the samplers' caps and the retries' backoff; ``transport`` replaces the
    network (tests). :meth:`close` stops the sender; what was not sent stays in the spool.
    """

    def __init__(self, settings: FeedbackSettings, *, models: Mapping[str, ServedModel] | None = None,
                 clock: Callable[[], float] = time.monotonic, transport: httpx.BaseTransport | None = None) -> None:
        self.settings, self.clock = settings, clock
        self.models: Mapping[str, ServedModel] = models if models is not None else {}
        self.sampler = FeedbackSampler(settings.sampling, clock=clock)
        self.spool = Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes,
                           max_files=settings.spool_max_files)
        self._lock = threading.Lock()
        self.sent = self.spooled = self.dropped = self.failed = self.compare_skipped = 0
        self._retry_at: float | None = None
        self._delay = settings.retry_min_s
        self.last_error: str | None = None
        headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
        self._client = httpx.Client(timeout=settings.timeout_s, headers=headers, transport=transport)
        self._thresholds: dict[tuple[str, str | None], Thresholds] = {}
        self._worker: BoundedHandoff[_Chosen] = BoundedHandoff(
            self._handle, name="visionloop-feedback", max_pending=settings.max_pending,
            max_pending_bytes=settings.max_pending_bytes, idle=self._retry_spool)

    def attach(self, models: Mapping[str, ServedModel]) -> None:
        """Read the served models from ``models`` (the server's live mapping) from now on."""
        self.models = models

    # -- request side: quick, never blocks -------------------------------------------------------------------------
    def offer(self, model: str, *, data: bytes, prediction: dict[str, Any]) -> bool:
        """Run the samplers on a prediction of ``model`` (its JSON, as answered); True when it was queued for
        sending (or for the comparison with the other model)."""
        served = self.models.get(model)
        if served is None:
            return False
        package = _maker(served, prediction)
        selection = self.sampler.choose(prediction, thresholds=self._thresholds_of(package), compare=False)
        other = self._other(model)
        if selection is None and other is None:
            return False
        chosen = _Chosen(model, data, prediction, selection, other, self._sample(model, package, prediction))
        if self._worker.submit(chosen, len(data)):
            return True
        with self._lock:
            if selection is not None:
                self.dropped += 1
            else:
                self.compare_skipped += 1
        return False

    def _thresholds_of(self, package: Package) -> Thresholds:
        m = package.manifest
        key = (m.name, m.model_sha256)
        found = self._thresholds.get(key)
        if found is None:
            found = Thresholds.from_manifest(m.thresholds, task=str(m.task))
            if len(self._thresholds) > 64:
                self._thresholds.clear()
            self._thresholds[key] = found
        return found

    def _other(self, model: str) -> str | None:
        """The model to compare with: the other one when two are served and a sampler compares."""
        if not self.sampler.wants_other or len(self.models) != 2:
            return None
        return next((n for n in self.models if n != model), None)

    def _sample(self, model: str, package: Package, prediction: dict[str, Any]) -> dict[str, Any]:
        m = package.manifest
        version = prediction.get("package_version") or (m.model_sha256 or "")[:12] or None
        th = self._thresholds_of(package)
        return {"request_id": str(uuid.uuid4()), "model": model, "package_version": version,
                "model_sha256": m.model_sha256, "predicted_at": datetime.now(UTC).isoformat(),
                "server": self.settings.server[:128],
                "thresholds": {"score": th.default, "per_class": {str(k): v for k, v in th.per_class.items()}},
                "prediction": {k: v for k, v in prediction.items()
                               if k not in {"model", "package_version", "run_id"}}}

    # -- sender thread ---------------------------------------------------------------------------------------------
    def _handle(self, chosen: _Chosen) -> None:
        selection = chosen.selection
        if chosen.other is not None:
            compared = self._compare(chosen)
            if compared is not None:
                hits = (selection.hits if selection else ()) + compared.hits
                selection = Selection(hits, bool(selection and selection.random_slice))
        if selection is None:
            return
        sample = {**chosen.sample, "samplers": [h.to_json() for h in selection.hits], "score": selection.score,
                  "random_slice": selection.random_slice}
        if len(self.spool) or self._retry_at is not None:
            self._to_spool(sample, chosen.data)  # keep the order; the spool is retried when its time comes
            return
        try:
            self._post(sample, chosen.data)
        except _SendError as e:
            if e.retry:
                self._backoff(str(e))
                self._to_spool(sample, chosen.data)
            else:
                self._refused(sample, str(e))

    def _compare(self, chosen: _Chosen) -> Selection | None:
        other = self.models.get(chosen.other or "")
        if other is None:
            return None
        (res,) = other.runner.predict_chunk([chosen.data])
        if isinstance(res, Exception):
            return None
        return self.sampler.choose(chosen.prediction, other=res.to_json(), other_model=other.name, compare=True,
                                   thresholds=self._thresholds_of(self.models[chosen.model].package)
                                   if chosen.model in self.models else None)

    def _post(self, sample: dict[str, Any], data: bytes) -> None:
        try:
            r = self._client.post(f"{self.settings.url}/production", data={"sample": json.dumps(sample)},
                                  files={"file": (f"{sample['request_id']}.img", data, "application/octet-stream")})
        except httpx.HTTPError as e:
            raise _SendError(f"cannot reach {self.settings.url}: {type(e).__name__}: {e}", retry=True) from e
        if r.status_code in (200, 201):
            with self._lock:
                self.sent += 1
            return
        raise _SendError(f"{self.settings.url}/production answered {r.status_code}: {r.text[:300]}",
                         retry=r.status_code not in _REFUSED)

    def _to_spool(self, sample: dict[str, Any], data: bytes) -> None:
        written, dropped = self.spool.add(sample, data)
        with self._lock:
            self.spooled += int(written)
            self.dropped += dropped + int(not written)

    def _refused(self, sample: dict[str, Any], error: str) -> None:
        _log.warning("feedback: sample %s refused, dropped: %s", sample.get("request_id"), error)
        with self._lock:
            self.failed += 1

    def _backoff(self, error: str) -> None:
        if self.last_error != error:
            _log.warning("feedback: %s; keeping samples in %s and retrying", error, self.settings.spool_dir)
        self.last_error = error
        self._retry_at = self.clock() + self._delay
        self._delay = min(self._delay * 2, self.settings.retry_max_s)

    def _retry_spool(self) -> float | None:
        """Send the spool oldest first when its retry is due, at most ``_SPOOL_BATCH`` at a time (new samples and a
        close are heard in between); seconds until the next try (None: nothing waits)."""
        for _ in range(_SPOOL_BATCH):
            path = self.spool.oldest()
            if path is None:
                break
            now = self.clock()
            if self._retry_at is not None and now < self._retry_at:
                return self._retry_at - now
            try:
                sample, data = Spool.read(path)
            except (OSError, ValueError) as e:
                self.spool.remove(path)
                self._refused({"request_id": path.name}, f"unreadable spool file: {e}")
                continue
            try:
                self._post(sample, data)
            except _SendError as e:
                if e.retry:
                    self._backoff(str(e))
                    continue
                self._refused(sample, str(e))
            self.spool.remove(path)
            self._retry_at, self._delay, self.last_error = None, self.settings.retry_min_s, None
        else:
            return 0.0 if len(self.spool) else None
        self._retry_at = None
        return None

    # -- control ---------------------------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Chosen samples handed over and not yet sent or spooled."""
        return self._worker.pending

    def flush(self) -> None:
        """Wait until every handed-over sample is sent, spooled or dropped (the spool may still hold some)."""
        self._worker.flush()

    def close(self) -> None:
        """Stop the sender thread once the hand-off queue is empty; the spool keeps what was not sent."""
        self._worker.close()
        self._client.close()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"sent": self.sent, "spooled": self.spooled, "dropped": self.dropped, "failed": self.failed,
                    "compare_skipped": self.compare_skipped, "spool_files": len(self.spool),
                    "spool_bytes": self.spool.bytes, "pending": self.pending}

    def collector(self) -> Collector:
        """A Prometheus collector of the counters (register it on the server's metrics registry)."""
        return _FeedbackCollector(self)


class _FeedbackCollector(Collector):
    def __init__(self, sender: FeedbackSender) -> None:
        self.sender = sender

    def collect(self) -> Iterator[Metric]:
        c = self.sender.counts()
        for key, text in (("sent", "Chosen samples the project stored."),
                          ("spooled", "Chosen samples written to the spool (the project could not take them)."),
                          ("dropped", "Chosen samples dropped: the hand-off queue or the spool was full."),
                          ("failed", "Chosen samples the project refused as invalid (or unreadable in the spool).")):
            yield CounterMetricFamily(f"visionloop_inference_feedback_{key}", text, value=c[key])
        yield GaugeMetricFamily("visionloop_inference_feedback_spool_files", "Samples waiting in the spool.",
                                value=c["spool_files"])
        yield GaugeMetricFamily("visionloop_inference_feedback_spool_bytes", "Bytes of the spool (limit: "
                                "spool_max_bytes).", value=c["spool_bytes"])
        yield GaugeMetricFamily("visionloop_inference_feedback_pending", "Chosen samples handed to the sender "
                                "thread, not yet sent or spooled.", value=c["pending"])
