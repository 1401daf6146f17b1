"""Command ``loop``: retrain and compare (``visionloop loop PROJECT``), and its history (``visionloop loop history
PROJECT``)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, err_console, handle_errors

__all__ = ["register"]


def _open(path: Path):  # noqa: ANN202
    from visionloop.storage import Project

    return Project.open(path)


def _history(project: Path, *, limit: int, as_json: bool) -> None:
    from visionloop.active.loop_state import loop_history

    with _open(project) as p:
        data = loop_history(p, limit=limit)
    if as_json:
        emit(data, as_json=True)
        return
    rows = [{"cycle": c["id"], "started": str(c["started_at"])[:19], "trigger": c["trigger"], "state": c["state"],
             "new": c["new_annotations"], "version": c["version"] or "", "challenger": c["challenger_run"] or "",
             "metric": c["metric"] or "",
             "champion": "" if c["champion_value"] is None else f"{c['champion_value']:.4f}",
             "challenger value": "" if c["challenger_value"] is None else f"{c['challenger_value']:.4f}",
             "CI": "" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"}
            for c in data["cycles"]]
    emit(rows or "no loop cycle yet", as_json=False, title=f"{len(rows)} loop cycles")
    emit(data["deployment"] or "nothing deployed", as_json=False, title="deployed")


def _one(p: Any, options: Any, *, show_progress: bool) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from visionloop.active.loop import run_cycle

    if not show_progress:
        return run_cycle(p, options).to_json()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("loop", total=1.0)
        return run_cycle(p, options, progress=lambda m, f: bar.update(task, description=m, completed=f)).to_json()


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """A cancelled job is sent SIGTERM: stop as on Ctrl-C (SystemExit), so the cycle is recorded as stopped before
    the process ends. The previous handler comes back afterwards; outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    c = result.get("cycle") or {}
    keys = ("id", "state", "trigger", "new_annotations", "version", "champion_run", "challenger_run", "metric",
            "champion_value", "challenger_value", "ci_low", "ci_high", "package")
    out = {"due": result["due"], "reason": result["reason"], **{k: c[k] for k in keys if k in c}}
    if c.get("details", {}).get("report"):
        out["report"] = c["details"]["report"]
    return out


@handle_errors
def loop(
    target: Annotated[str, typer.Argument(help="project directory, or 'history' followed by the project directory")],
    history_of: Annotated[Path | None, typer.Argument(help="with 'history': the project directory",
                                                      show_default=False)] = None,
    once: Annotated[bool, typer.Option("--once", help="run one check (and cycle when due), then stop")] = False,
    min_new: Annotated[int | None, typer.Option(help="new approved annotations that start a cycle (default: the "
                                                     "project's visionloop.toml loop.min_new, else 50)")] = None,
    margin: Annotated[float | None, typer.Option(help="promote only when the CI's lower bound of challenger minus "
                                                      "champion is above this (default 0)")] = None,
    force: Annotated[bool, typer.Option("--force", help="run a cycle whatever the count")] = False,
    trigger: Annotated[str | None, typer.Option(help="what started a forced cycle: manual | drift | schedule")] = None,
    metric: Annotated[str | None, typer.Option(help="accuracy | balanced_accuracy | macro_f1 (classification), "
                                                    "map50 | map (detection), miou (semantic)")] = None,
    champion: Annotated[str | None, typer.Option(help="the champion run when nothing is deployed")] = None,
    epochs: Annotated[int | None, typer.Option(help="override the recipe's epochs")] = None,
    every: Annotated[float | None, typer.Option(help="also run a cycle when the last one started more than this "
                                                     "many hours ago")] = None,
    interval: Annotated[float, typer.Option(help="without --once: seconds between checks")] = 300.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="decide and report, deploy nothing")] = False,
    author: Annotated[str, typer.Option("--as", help="who the cycle is recorded for")] = "loop",
    limit: Annotated[int, typer.Option(help="with 'history': cycles shown")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Retrain and compare: when enough new reviewed annotations arrived, freeze a version (the test set stays
    frozen), train a challenger with the deployed model's recipe, compare both on the same test split with a
    bootstrap confidence interval, and promote (package + deploy) only when the challenger is better by the margin.
    Runs until stopped unless --once. ``visionloop loop history PROJECT`` lists the cycles."""
    from visionloop.active.loop import loop_options
    from visionloop.core.errors import VisionloopError

    if target == "history":
        if history_of is None:
            raise typer.BadParameter("give the project: visionloop loop history PROJECT", param_hint="PROJECT")
        _history(history_of, limit=limit, as_json=as_json)
        return
    if history_of is not None:
        raise typer.BadParameter(f"one project only (got {target} and {history_of}); for the history: "
                                 "visionloop loop history PROJECT")
    show = not as_json or sys.stderr.isatty()
    with _stop_on_sigterm(), _open(Path(target)) as p:
        options = loop_options(p, min_new=min_new, margin=margin, force=force or None, trigger=trigger,
                               metric=metric, champion=champion, epochs=epochs, every_hours=every,
                               deploy=False if dry_run else None, author=author)
        if once:
            result = _one(p, options, show_progress=show)
            emit(result if as_json else _summary(result), as_json=as_json, title="loop")
            return
        while True:  # until Ctrl-C (or the job is cancelled)
            try:
                result = _one(p, options, show_progress=show)
                emit(result if as_json else _summary(result), as_json=as_json, title="loop")
            except VisionloopError as e:
                err_console.print(f"[red]error:[/red] {e}")
            options = replace(options, force=False)  # --force starts the first cycle only
            time.sleep(max(1.0, interval))


def register(app: typer.Typer) -> None:
    """Add ``loop`` to ``app``."""
    app.command("loop")(loop)
