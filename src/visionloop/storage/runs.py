"""Run records: ``PROJECT/runs/<run-id>/`` with the resolved config, metrics, checkpoints and reports.

Runs are part of the project on disk, so their records live here, below training (which writes them) and evaluation,
export and the CLI (which read them). Layout of a run (every task)::

    runs/<run-id>/
      config.json          RunConfig: task, version name+hash, model (registry name + JSON kwargs), classes,
                           preprocessing, strategy (+ why), augmentation policy, hyper-parameters, seed, weights
                           source, thresholds
      metrics.jsonl        one JSON record per epoch (train_loss, lr, val_* ...), see training.loop.MetricsLogger
      checkpoints/last.pt  full training state for --resume (training.loop.TrainLoop.state_dict)
      checkpoints/best.pt  {"model": state_dict, "record": the epoch's record}: the weights load_run uses
      result.json          final status and metrics, written when training ends
      report.html, eval-<split>.json   written by ``visionloop evaluate``

The model of a run is rebuilt by :func:`visionloop.models.runs.load_run` from ``config.model["name"]`` (a registry
name) and ``config.model["kwargs"]`` (JSON values): no code named in a file is ever imported.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from visionloop.core.errors import NotFoundError
from visionloop.core.preprocess import Preprocess

__all__ = [
    "RunConfig",
    "RunResult",
    "checkpoint_path",
    "list_runs",
    "load_config",
    "new_run_id",
    "read_metrics",
    "resolve_run",
    "run_dir",
    "save_config",
    "write_result",
]

RUNS = "runs"


@dataclass(kw_only=True)
class RunConfig:
    """The resolved configuration of one training run (``config.json``).

    ``classes``: ``[{"id": project class id, "name": ...}]`` in model-output order (index i = output i).
    ``model``: ``{"name": registry name, "kwargs": {...}}``: the registry entry's builder called with ``kwargs``
    (JSON values) returns the architecture (no pretrained download needed). ``preprocess``: :meth:`Preprocess.to_json` of the
    evaluation-time preprocessing (what export/inference must reproduce). ``thresholds``: per-class decision
    thresholds on sigmoid scores (tagging) or None. ``extra``: task-specific settings (detection uses it freely).
    """

    run_id: str
    task: str
    version: dict[str, str]
    model: dict[str, Any]
    classes: list[dict[str, Any]]
    preprocess: dict[str, Any]
    strategy: str = ""
    strategy_reason: str = ""
    augmentation: dict[str, Any] = field(default_factory=dict)
    hparams: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    weights: dict[str, Any] = field(default_factory=dict)
    thresholds: list[float] | None = None
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.classes]

    @property
    def class_ids(self) -> list[int]:
        return [int(c["id"]) for c in self.classes]

    def preprocessing(self) -> Preprocess:
        return Preprocess.from_json(self.preprocess)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class RunResult:
    """What :func:`visionloop.training.api.train` returns: the run id, its directory and the final metrics."""

    run_id: str
    run_dir: Path
    metrics: dict[str, Any]


def new_run_id(*, label: str = "") -> str:
    """``YYYYmmdd-HHMMSS-<label>-<4 hex>``: sorts by time, unique without coordination."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label)[:40].strip("-")
    return f"{stamp}-{safe}-{secrets.token_hex(2)}" if safe else f"{stamp}-{secrets.token_hex(2)}"


def _runs_root(project: Any) -> Path:
    return Path(project.root) / RUNS


def list_runs(project: Any) -> list[str]:
    """Run ids of the project that have a ``config.json``, oldest first."""
    root = _runs_root(project)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").exists())


def resolve_run(project: Any, run_id: str) -> str:
    """``run_id`` itself, or the newest run for ``"latest"``; NotFoundError lists the known runs."""
    runs = list_runs(project)
    if run_id == "latest" and runs:
        return runs[-1]
    if run_id not in runs:
        raise NotFoundError("run", run_id, choices=runs[::-1] or ["none yet: train one with visionloop train"])
    return run_id


def run_dir(project: Any, run_id: str, *, create: bool = False) -> Path:
    """``PROJECT/runs/<run_id>``; must exist unless ``create``."""
    path = _runs_root(project) / run_id
    if create:
        path.mkdir(parents=True, exist_ok=True)
        (path / "checkpoints").mkdir(exist_ok=True)
        return path
    return _runs_root(project) / resolve_run(project, run_id)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_config(directory: Path, config: RunConfig) -> None:
    if not config.created_at:
        config.created_at = datetime.now(UTC).isoformat(timespec="seconds")
    _write_json(Path(directory) / "config.json", config.to_json())


def load_config(project: Any, run_id: str) -> RunConfig:
    path = run_dir(project, run_id) / "config.json"
    return RunConfig.from_json(json.loads(path.read_text(encoding="utf-8")))


def write_result(directory: Path, data: dict[str, Any]) -> None:
    """``result.json``: final status and metrics of the run."""
    _write_json(Path(directory) / "result.json", data)


def read_metrics(directory: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (empty when the file does not exist)."""
    path = Path(directory) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def checkpoint_path(project: Any, run_id: str, *, checkpoint: str = "best") -> Path:
    """``checkpoints/<checkpoint>.pt`` of a run; ``"best"`` falls back to ``last`` when no best was written.

    NotFoundError (with how to resume) when the run has not finished an epoch.
    """
    rid = resolve_run(project, run_id)
    directory = run_dir(project, rid) / "checkpoints"
    names = ["best.pt", "last.pt"] if checkpoint == "best" else [f"{checkpoint}.pt"]
    path = next((directory / n for n in names if (directory / n).exists()), None)
    if path is None:
        raise NotFoundError("checkpoint of run", rid, choices=["the run has not finished an epoch; resume it with "
                                                               f"visionloop train --resume {rid}"])
    return path
