"""The models one server serves: each package with its runner (a Predictor) and its batcher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from visionloop.core.errors import VisionloopError
from visionloop.core.package import Package, load_package
from visionloop.inference.predictor import Predictor
from visionloop.serving.model_server.batching import BatchConfig, Batcher, ChunkRunner
from visionloop.serving.model_server.metrics import InferenceMetrics

__all__ = ["PackageSources", "ServedModel", "load_runners"]

PackageSources = Mapping[str, str | Path | Package] | Sequence[str | Path | Package]
"""Package paths (or loaded packages), or {name: path}; names default to the manifests' names."""


class ServedModel:
    """One model behind the server: its runner (a Predictor), package and batcher."""

    def __init__(self, name: str, runner: ChunkRunner, package: Package, batching: BatchConfig,
                 metrics: InferenceMetrics) -> None:
        self.name, self.runner, self.package, self.batching = name, runner, package, batching
        self.batcher = Batcher(name, runner, batching, metrics=metrics)

    def summary(self) -> dict[str, Any]:
        m = self.package.manifest
        return {"name": self.name, "task": str(m.task), "classes": len(m.classes), "int8": m.int8 is not None}

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
            "sessions": int(self.runner.n_sessions),
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
