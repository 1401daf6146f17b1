"""What the platform shows of a project's training runs, read from their folders (``storage.runs`` layout): a
summary per run (model, version, state, main metrics), the per-epoch history for curves, and a comparison of two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from visionloop.evaluation.keys import main_metric
from visionloop.serving.jobs.kinds import public_guard
from visionloop.storage.runs import list_runs, read_metrics, resolve_run, run_dir

__all__ = ["EVAL_SPLITS", "GUARD_FILE", "REPORT_FILE", "compare_runs", "flat", "read_json", "run_detail",
           "run_history", "run_summary", "runs_summaries"]

EVAL_SPLITS = ("test", "val", "train")
GUARD_FILE = "int8-guard.json"
"""Written by ``export.api.export_run`` (not imported: it would load torch into the server)."""
REPORT_FILE = "report.html"
"""Written by ``visionloop evaluate`` (``evaluation.report``)."""
_LARGE = frozenset({"per_image", "errors", "pr_curves", "reliability", "confusion", "confusion_matrix", "bbox",
                    "segm", "likely_unlabelled", "report", "per_class"})


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _evaluation(directory: Path) -> dict[str, Any] | None:
    """The first of eval-test/val/train.json that exists."""
    return next((e for s in EVAL_SPLITS if (e := read_json(directory / f"eval-{s}.json")) is not None), None)


def _main(config: dict[str, Any], evaluation: dict[str, Any] | None) -> str | None:
    if evaluation and evaluation.get("main_metric"):
        return str(evaluation["main_metric"])
    try:
        return main_metric(config["task"], semantic=(config.get("extra") or {}).get("kind") == "semantic")
    except (KeyError, ValueError):
        return None


def _metrics(result: dict[str, Any] | None, evaluation: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result:
        out.update({f"val_{k}": v for k, v in (result.get("val") or {}).items()})  # classification, tagging
        out.update({k: v for k, v in (result.get("metrics") or {}).items() if k.startswith("val_")})  # detection
    if evaluation:
        split = evaluation.get("split", "test")
        out.update({f"{split}_{k}": v for k, v in evaluation.items()
                    if isinstance(v, int | float) and not isinstance(v, bool) and k not in {"images", "n", "max_dets"}})
    return out


def run_summary(project: Any, run_id: str, *, running: dict[str, int] | None = None) -> dict[str, Any]:
    """One run: id, task, model, version, strategy, state, epochs logged, main metrics, whether it has a report.
    ``running``: run id -> id of the job training it now."""
    rid = resolve_run(project, run_id)
    directory = run_dir(project, rid)
    config = read_json(directory / "config.json") or {}
    result = read_json(directory / "result.json")
    evaluation = _evaluation(directory)
    job = (running or {}).get(rid)
    state = "running" if job is not None else ("done" if result and result.get("status", "done") == "done"
                                               else "failed" if result else "stopped")
    return {
        "id": rid, "task": config.get("task", ""), "model": (config.get("model") or {}).get("name", ""),
        "version": (config.get("version") or {}).get("name"), "strategy": config.get("strategy", ""),
        "state": state, "created_at": config.get("created_at", ""), "epochs": len(read_metrics(directory)),
        "metrics": _metrics(result, evaluation), "main_metric": _main(config, evaluation),
        "report": (directory / REPORT_FILE).is_file(), "job": job,
    }


def runs_summaries(project: Any, *, running: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Every run of the project, newest first."""
    return [run_summary(project, rid, running=running) for rid in reversed(list_runs(project))]


def run_detail(project: Any, run_id: str, *, running: dict[str, int] | None = None) -> dict[str, Any]:
    summary = run_summary(project, run_id, running=running)
    directory = run_dir(project, summary["id"])
    evaluation = _evaluation(directory)
    return {**summary, "config": read_json(directory / "config.json") or {},
            "result": read_json(directory / "result.json"),
            "evaluation": {k: v for k, v in evaluation.items() if k not in _LARGE - {"per_class"}} if evaluation
            else None, "int8_guard": public_guard(read_json(directory / GUARD_FILE))}


def run_history(project: Any, run_id: str) -> dict[str, Any]:
    """The metrics log as columns for curves: ``epoch``, ``train_loss``, ``lr`` and every ``val_*`` key, one value per
    epoch (null where an epoch did not log it), and ``best_epoch``."""
    rid = resolve_run(project, run_id)
    records = read_metrics(run_dir(project, rid))
    keys = ["epoch", "train_loss", "lr"]
    keys += sorted({k for r in records for k, v in r.items() if k.startswith("val_") and isinstance(v, int | float)})
    best = next((r["epoch"] for r in reversed(records) if r.get("best")), None)
    return {"run": rid, "series": {k: [r.get(k) for r in records] for k in keys}, "best_epoch": best,
            "epoch_seconds": [r.get("epoch_seconds") for r in records]}


def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flat(v, key) if isinstance(v, dict) else {key: v})
    return out


def _delta(a: Any, b: Any) -> dict[str, Any]:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    return {"a": a, "b": b, "delta": (b - a) if numbers else None}


_NOT_COMPARED = ("run_id", "created_at")


def compare_runs(project: Any, a: str, b: str) -> dict[str, Any]:
    """Config keys that differ, every metric of either run with its change (b - a), and per class metrics of the two
    runs' evaluations on a split both have (test first)."""
    sa, sb = run_summary(project, a), run_summary(project, b)
    da, db = run_dir(project, sa["id"]), run_dir(project, sb["id"])
    ca = {k: v for k, v in flat(read_json(da / "config.json") or {}).items() if not k.startswith(_NOT_COMPARED)}
    cb = {k: v for k, v in flat(read_json(db / "config.json") or {}).items() if not k.startswith(_NOT_COMPARED)}
    config = {k: {"a": ca.get(k), "b": cb.get(k)} for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)}
    metrics = {k: _delta(sa["metrics"].get(k), sb["metrics"].get(k))
               for k in sorted(set(sa["metrics"]) | set(sb["metrics"]))}
    split = next((s for s in EVAL_SPLITS if (da / f"eval-{s}.json").is_file() and (db / f"eval-{s}.json").is_file()),
                 None)
    per_class: dict[str, dict[str, dict[str, Any]]] = {}
    if split is not None:
        pa = (read_json(da / f"eval-{split}.json") or {}).get("per_class") or {}
        pb = (read_json(db / f"eval-{split}.json") or {}).get("per_class") or {}
        for name in sorted(set(pa) | set(pb)):
            ma, mb = pa.get(name) or {}, pb.get(name) or {}
            per_class[name] = {k: _delta(ma.get(k), mb.get(k)) for k in sorted(set(ma) | set(mb))}
    return {"a": sa, "b": sb, "config": config, "metrics": metrics, "per_class": per_class, "split": split}
