"""Hot reload, rollback and canaries of served models, while they serve.

A reload loads the new package (in a thread, the old model keeps answering), starts its batcher and has it predict
one check image built from the manifest's input size; only then does the model's name point to it (one dict
assignment in the event loop: every request picks the old or the new model, never neither). Requests that picked the
old model finish on it: its batcher stops and its sessions are released once no request uses it (or after
``drain_timeout_s``). A package that fails to load, to answer, or that has another task is refused and the old model
stays. The replaced package is kept as the model's ``previous``, so :meth:`ModelControl.rollback` swaps it back the
same way. One change at a time per server; the last changes are kept (bounded) for the model info.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from visionloop.core.errors import ConflictError, ImageError, NotFoundError, VisionloopError
from visionloop.core.package import Package, PackageError
from visionloop.serving.model_server.batching import BatchConfig, ChunkRunner
from visionloop.serving.model_server.canary import Canary
from visionloop.serving.model_server.metrics import InferenceMetrics
from visionloop.serving.model_server.served import ServedModel, package_version

__all__ = [
    "DEFAULT_MAX_PACKAGE_BYTES", "ModelControl", "ReloadRefusedError", "ReloadSettings", "RunnerFactory",
    "check_image_for",
]

DEFAULT_MAX_PACKAGE_BYTES = 1024 * 1024 * 1024
HISTORY = 50
"""Changes (reloads, rollbacks, canaries) remembered per server."""

RunnerFactory = Callable[[Package], ChunkRunner]
"""Builds the runner of a package (a Predictor with the server's sessions and pixel limit); runs in a thread."""


class ReloadRefusedError(ConflictError):
    """A package that cannot take over (fails to load or to answer, another task); the served model stays."""


@dataclass(frozen=True, kw_only=True)
class ReloadSettings:
    packages_dir: Path | None = None
    """Folder whose packages ``POST .../reload {"path": ...}`` may name; None: only uploads."""
    max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES
    """Largest uploaded package archive, bytes (beyond: 413)."""
    check_timeout_s: float = 120.0
    """Longest wait for the new model's check prediction, seconds."""
    drain_timeout_s: float = 60.0
    """Longest wait for the requests on a replaced model before its batcher stops, seconds."""

    def __post_init__(self) -> None:
        if self.max_package_bytes < 1 or self.check_timeout_s <= 0 or self.drain_timeout_s < 0:
            raise VisionloopError("reload settings: max_package_bytes and check_timeout_s must be positive, "
                                  "drain_timeout_s at least 0")


def check_image_for(package: Package) -> np.ndarray:
    """A (H, W, 3) uint8 image of the package's input size (64 x 64 when the model takes any size): a gradient,
    so the check runs the model on something that is not constant."""
    size = (package.manifest.preprocess or {}).get("size") or (64, 64)
    h, w = (int(s) for s in size)
    h, w = max(8, min(h, 4096)), max(8, min(w, 4096))
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    col = np.linspace(255, 0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((ramp + col) / 2, (h, w, 3)).astype(np.uint8)


class ModelControl:
    """Changes the served models (``models``, the dict the routes read) while the server runs; event loop only."""

    def __init__(self, models: dict[str, ServedModel], *, metrics: InferenceMetrics,
                 batching: Callable[[str], BatchConfig], runner_factory: RunnerFactory,
                 settings: ReloadSettings | None = None) -> None:
        self.models, self.metrics, self.batching = models, metrics, batching
        self.runner_factory, self.settings = runner_factory, settings or ReloadSettings()
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.uploading = False
        """A package upload is being received (one at a time)."""
        self._lock: asyncio.Lock | None = None
        metrics.registry.register(_ModelsCollector(self))

    def resolve_path(self, path: str) -> Path:
        """``path`` (relative to ``packages_dir``, or absolute) when it lies inside ``packages_dir``, links
        resolved; NotFoundError when it does not exist, VisionloopError when it leaves the folder or none is set."""
        root = self.settings.packages_dir
        if root is None:
            raise VisionloopError("this server loads packages from its disk only inside --packages-dir, which is not "
                                  "set; upload the package archive as the request body instead")
        root = root.resolve()
        try:
            target = (root / path).resolve()
            exists = target.exists()
        except (OSError, ValueError) as e:  # a NUL byte, a name too long
            raise VisionloopError(f"package path {path!r} is not a usable file name ({e})") from e
        if not target.is_relative_to(root) or target == root:
            raise VisionloopError(f"package path {path!r} is outside the server's --packages-dir; name a package "
                                  "folder or archive inside it")
        if not exists:
            raise NotFoundError("package", path, choices=sorted(p.name for p in root.iterdir())[:50])
        return target

    async def reload(self, name: str, package: Package, *, action: str = "reload") -> dict[str, Any]:
        """Serve ``package`` as ``name`` (checked first, see the module docstring); the change's record."""
        async with self._locked():
            old = self.require(name)
            if package_version(package) == old.version:
                return self._record(name, action, old.version, old.version, ok=True, detail="already serving it")
            new = await self._start_checked(name, package, previous=old.package, task=str(old.package.task))
            new.canary, old.canary = old.canary, None
            self.models[name] = new
            drained = await old.drain(timeout=self.settings.drain_timeout_s)
            return self._record(name, action, old.version, new.version, ok=True,
                                detail=None if drained else "requests still on the old model were cancelled after "
                                f"{self.settings.drain_timeout_s:g} s")

    async def rollback(self, name: str) -> dict[str, Any]:
        """Serve the package ``name`` served before its last reload (the current one becomes its ``previous``)."""
        previous = self.require(name).previous
        if previous is None:
            raise ConflictError(f"model {name!r} has no previous package to roll back to: it has served the package "
                                "it started with; reload another package first")
        return await self.reload(name, previous, action="rollback")

    async def set_canary(self, name: str, package: Package, share: float) -> dict[str, Any]:
        """Let ``package`` answer ``share`` of ``name``'s requests (replacing any canary), compared with the
        champion's answers."""
        async with self._locked():
            champion = self.require(name)
            challenger = await self._start_checked(name, package, previous=None, task=str(champion.package.task))
            try:
                canary = Canary(challenger, share)
            except VisionloopError:
                await challenger.drain(timeout=0)
                raise
            old, champion.canary = champion.canary, canary
            if old is not None:
                await old.challenger.drain(timeout=self.settings.drain_timeout_s)
            return self._record(name, "canary", champion.version, challenger.version, ok=True,
                                detail=f"share {share:g}")

    async def clear_canary(self, name: str) -> dict[str, Any]:
        """Stop ``name``'s canary (its agreement is in the record); ConflictError when there is none."""
        async with self._locked():
            champion = self.require(name)
            canary, champion.canary = champion.canary, None
            if canary is None:
                raise ConflictError(f"model {name!r} has no canary; start one with POST .../canary")
            await canary.challenger.drain(timeout=self.settings.drain_timeout_s)
            return self._record(name, "canary_end", champion.version, canary.challenger.version, ok=True,
                                detail=canary.info())

    def require(self, name: str) -> ServedModel:
        """The served model ``name``; NotFoundError listing the served names."""
        m = self.models.get(name)
        if m is None:
            raise NotFoundError("model", name, choices=sorted(self.models))
        return m

    async def _start_checked(self, name: str, package: Package, *, previous: Package | None,
                             task: str) -> ServedModel:
        """A started ServedModel for ``package`` that answered its check image; ReloadRefusedError otherwise."""
        version = package_version(package)
        if str(package.task) != task:
            self._refused(name, version, f"it is a {package.task} model and {name!r} serves {task}; serve it "
                                         "under another name")
        try:
            runner = await asyncio.to_thread(self.runner_factory, package)
        except (PackageError, VisionloopError, OSError) as e:
            self._refused(name, version, f"it does not load: {e}")
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors: the package is broken, the server is not
            self._refused(name, version, f"it does not load ({type(e).__name__}: {e})")
        new = ServedModel(name, runner, package, self.batching(name), self.metrics, previous=previous)
        await new.batcher.start()
        try:
            res = await asyncio.wait_for(new.batcher.submit(check_image_for(package)),
                                         self.settings.check_timeout_s)
            if isinstance(res, ImageError):
                raise VisionloopError(str(res))
        except BaseException as e:
            await new.drain(timeout=0)
            if isinstance(e, asyncio.CancelledError):
                raise
            why = f"no answer within {self.settings.check_timeout_s:g} s" if isinstance(e, TimeoutError) else (
                f"{type(e).__name__}: {e}")
            self._refused(name, version, f"it failed its check prediction ({why})")
        return new

    def _refused(self, name: str, version: str, why: str) -> NoReturn:
        self._record(name, "refused", self.models[name].version if name in self.models else None, version, ok=False,
                     detail=why)
        raise ReloadRefusedError(f"package {version} was refused for model {name!r}: {why}; the served model stays")

    def _record(self, name: str, action: str, old: str | None, new: str | None, *, ok: bool, detail: Any,
                ) -> dict[str, Any]:
        rec = {"model": name, "action": action, "from_version": old, "to_version": new, "ok": ok,
               "detail": detail, "at": time.time()}
        self.history.append(rec)
        self.metrics.reloads.labels(name, action, "ok" if ok else "refused").inc()
        return rec

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:  # made in the event loop that uses it
            self._lock = asyncio.Lock()
        return self._lock

    def models_info(self) -> Mapping[str, ServedModel]:
        return dict(self.models)


class _ModelsCollector(Collector):
    """Per model at each scrape: the version served (an info gauge) and the canary's counts and agreement."""

    def __init__(self, control: ModelControl) -> None:
        self.control = control

    def collect(self) -> Iterator[Metric]:
        served = GaugeMetricFamily("visionloop_inference_model_version", "1 for the package version each model "
                                   "serves.", labels=["model", "package_version"])
        compared = CounterMetricFamily("visionloop_inference_canary_compared", "Requests answered by both the "
                                       "model and its canary challenger.", labels=["model", "challenger"])
        failed = CounterMetricFamily("visionloop_inference_canary_failed", "Canary requests the challenger failed "
                                     "(the model answered).", labels=["model", "challenger"])
        agree = GaugeMetricFamily("visionloop_inference_canary_agreement", "Mean agreement (0..1) of the model and "
                                  "its canary challenger on compared requests.", labels=["model", "challenger"])
        for name, m in self.control.models_info().items():
            served.add_metric([name, m.version], 1.0)
            c = m.canary
            if c is not None:
                labels = [name, c.challenger.version]
                compared.add_metric(labels, c.compared)
                failed.add_metric(labels, c.failed)
                if c.agreement_rate is not None:
                    agree.add_metric(labels, c.agreement_rate)
        yield from (served, compared, failed, agree)
