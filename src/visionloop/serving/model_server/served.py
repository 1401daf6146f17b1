"""The models one server serves: each package with its runner (a Predictor) and its batcher.

A served model counts the requests using it (:meth:`ServedModel.in_use`), so a hot reload can let the requests that
picked the old model finish on it (:meth:`ServedModel.drain`) before its batcher stops and its sessions are released.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from visionloop.core.errors import ImageError, VisionloopError
from visionloop.core.package import Package, load_package
from visionloop.inference.predictor import Predictor
from visionloop.inference.results import Prediction
from visionloop.serving.model_server.batching import BatchConfig, Batcher, ChunkRunner
from visionloop.serving.model_server.canary import Canary
from visionloop.serving.model_server.metrics import InferenceMetrics

__all__ = ["PackageSources", "ServedModel", "load_runners", "package_version", "version_info"]

PackageSources = Mapping[str, str | Path | Package] | Sequence[str | Path | Package]
"""Package paths (or loaded packages), or {name: path}; names default to the manifests' names."""


def package_version(package: Package) -> str:
    """A package's stable short id: the first 12 hex digits of its model's sha256 (``manifest.model_sha256``, which
    every exported package records; computed from the ONNX bytes for a package without it). The same model bytes give
    the same version wherever and whenever the package was copied."""
    sha = package.manifest.model_sha256 or hashlib.sha256(package.model_bytes).hexdigest()
    return sha[:12]


def version_info(package: Package | None) -> dict[str, Any] | None:
    """``{"package_version", "run_id", "created_at", "model_sha256"}`` of ``package`` (None: None)."""
    if package is None:
        return None
    m = package.manifest
    return {"package_version": package_version(package), "run_id": m.run_id, "created_at": m.created_at,
            "model_sha256": m.model_sha256}


class ServedModel:
    """One model behind the server: its runner (a Predictor), package and batcher.

    ``previous``: the package this one replaced (kept for rollback). ``loaded_at``: Unix time it started serving.
    ``canary``: a challenger answering a share of the requests (see ``model_server.canary``), or None.
    """

    def __init__(self, name: str, runner: ChunkRunner, package: Package, batching: BatchConfig,
                 metrics: InferenceMetrics, *, previous: Package | None = None) -> None:
        self.name, self.runner, self.package, self.batching = name, runner, package, batching
        self.batcher = Batcher(name, runner, batching, metrics=metrics)
        self.previous, self.loaded_at = previous, time.time()
        self.version = package_version(package)
        self.users = 0
        """Requests holding this model now (see :meth:`in_use`)."""
        self.canary: Canary | None = None

    async def predict(self, data: Any, *, score_threshold: float | None = None,
                      ) -> tuple[ServedModel, Prediction | ImageError]:
        """The prediction of ``data`` and the model that made it: this one, or its canary's challenger for the
        requests in the canary's share. OverloadedError when this model's queue is full."""
        canary = self.canary
        if canary is None or not canary.pick():
            return self, await self.batcher.submit(data, score_threshold=score_threshold)
        return await canary.predict(self, data, score_threshold=score_threshold)

    @contextmanager
    def in_use(self) -> Iterator[ServedModel]:
        """Count a request that uses this model from reading its body to its answer (event loop only)."""
        self.users += 1
        try:
            yield self
        finally:
            self.users -= 1

    def stamp(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """``prediction`` (``Prediction.to_json``) with the model that made it: ``model``, ``package_version``,
        ``run_id``."""
        return {**prediction, "model": self.name, "package_version": self.version,
                "run_id": self.package.manifest.run_id}

    async def drain(self, *, timeout: float) -> bool:
        """Wait until no request uses this model (at most ``timeout`` seconds), then stop its batcher (requests
        still queued then are cancelled) and release its runner. True when it drained in time."""
        deadline = time.monotonic() + timeout
        while self.users > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        drained = self.users == 0
        await self.batcher.stop()
        close = getattr(self.runner, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
        return drained

    def summary(self) -> dict[str, Any]:
        m = self.package.manifest
        return {"name": self.name, "task": str(m.task), "classes": len(m.classes), "int8": m.int8 is not None,
                "package_version": self.version, "run_id": m.run_id,
                "previous_version": package_version(self.previous) if self.previous is not None else None}

    def info(self) -> dict[str, Any]:
        m = self.package.manifest
        return {
            "name": self.name, "task": str(m.task), "classes": [{"id": c.id, "name": c.name} for c in m.classes],
            "preprocess": m.preprocess, "thresholds": m.to_json()["thresholds"], "metrics": m.metrics,
            "main_metric": m.main_metric, "dataset_version": m.dataset_version, "dataset_hash": m.dataset_hash,
            "config_hash": m.config_hash, "run_id": m.run_id, "architecture": m.architecture,
            "int8": asdict(m.int8) if m.int8 else None, "model_sha256": m.model_sha256, "created_at": m.created_at,
            "batching": {"enabled": self.batching.enabled, "max_batch": self.batching.effective_max_batch,
                         "max_wait_ms": self.batching.max_wait_ms, "max_queue": self.batching.max_queue},
            "sessions": int(self.runner.n_sessions), "package_version": self.version,
            "loaded_at": self.loaded_at, "previous": version_info(self.previous),
            "canary": self.canary.info() if self.canary is not None else None,
        }


def load_runners(packages: PackageSources, *, sessions: int | None, max_pixels: int,
                 ) -> dict[str, tuple[Package, ChunkRunner]]:
    """Each package loaded with a Predictor, by served name; refuses two packages of one name, or none."""
    items: list[tuple[str | None, str | Path | Package]]
    if isinstance(packages, Mapping):
        items = list(packages.items())
    else:
        items = [(None, p) for p in packages]
    out: dict[str, tuple[Package, ChunkRunner]] = {}
    for name, src in items:
        pkg = src if isinstance(src, Package) else load_package(src)
        name = name or pkg.name
        if name in out:
            raise VisionloopError(f"two packages are named {name!r}; serve them as NAME=PATH with distinct names")
        out[name] = (pkg, Predictor(pkg, sessions=sessions, max_pixels=max_pixels))
    if not out:
        raise VisionloopError("no model packages to serve; pass at least one package path")
    return out
