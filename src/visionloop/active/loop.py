"""The retrain-and-compare loop: one cycle checks the trigger, freezes a version, trains the challenger with the
champion's recipe, measures both on the same frozen test split, and promotes the challenger only when it is better by
a statistically meaningful margin.

A cycle, step by step (each step recorded in its ``loop_cycles`` row as it goes):

1. **Trigger** (:mod:`~visionloop.active.loop_trigger`): at least ``min_new`` new approved annotations since the
   champion's version, or forced (a person, a drift alert, a schedule). Not due: no row, nothing changes.
2. **Version**: ``create_version(base=<champion's version>)``: the old images keep their splits, new ones go to
   train/val only, except production random-slice images, which may go to test; so the test set grows only by the
   random slice (see :func:`visionloop.storage.versions.create_version`).
3. **Challenger** (:mod:`~visionloop.active.loop_train`): trained on the new version with the champion's recipe.
4. **Compare** (:mod:`~visionloop.active.loop_eval`): both models predict the new version's test split (the old test
   images and the random slice); paired bootstrap CI of challenger minus champion for the metric.
5. **Decide**: promote only when the CI's lower bound is above ``margin`` (default 0); else keep the champion and
   say why. Promotion (:mod:`~visionloop.active.loop_promote`) exports, checks and deploys the challenger's package
   and emits ``model.promoted`` in the transaction that records the decision.
6. **Report** (:mod:`~visionloop.active.compare_report`): ``PROJECT/loop/<cycle id>/report.html``.

One cycle at a time per project (a lock file, released by the system when the process dies). A cycle whose process
was killed stays ``running`` in the table until the next cycle takes the lock and marks it ``failed`` (interrupted),
so the next run starts cleanly; what the killed cycle left (a version, a partial run) is never reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from visionloop.active.compare_report import REPORT_FILE, write_compare_report
from visionloop.active.loop_eval import compare_runs, default_metric, predict_split
from visionloop.active.loop_promote import package_and_deploy
from visionloop.active.loop_state import LOCK_WAIT_S, LOOP_DIR, LoopOptions, loop_history, loop_lock, loop_options
from visionloop.active.loop_train import recipe, train_challenger
from visionloop.active.loop_trigger import TriggerCheck, check_trigger, find_champion
from visionloop.core.progress import progress_file
from visionloop.storage.events import EventKind, api_path, emit_event
from visionloop.storage.loop_cycles import (
    LoopCycle,
    interrupt_running,
    list_cycles,
    start_cycle,
    update_cycle,
)
from visionloop.storage.versions import create_version

__all__ = ["STOPPED", "CycleOutcome", "LoopOptions", "loop_history", "loop_options", "run_cycle", "schedule_due"]

STOPPED = "stopped: the cycle's process was asked to stop (a cancelled job, Ctrl-C); the champion stays"
ProgressFn = Callable[[str, float], None]
"""``progress(message, fraction)`` of a cycle's stages."""


@dataclass
class CycleOutcome:
    """What :func:`run_cycle` did: ``ran`` False when no cycle was due (``check`` says why)."""

    ran: bool
    check: TriggerCheck | None
    cycle: LoopCycle | None = None
    interrupted: list[int] = field(default_factory=list)
    """Cycles found ``running`` from a killed process, marked failed before this one."""

    def to_json(self) -> dict[str, Any]:
        c = self.cycle
        return {"ran": self.ran, "due": bool(self.check and self.check.due),
                "reason": c.reason if c is not None else (self.check.reason if self.check else None),
                "new_annotations": self.check.new_annotations if self.check else None,
                "interrupted": self.interrupted, "cycle": c.to_json() if c is not None else None,
                "state": c.state if c is not None else None}


def schedule_due(project: Any, every_hours: float, *, now: datetime | None = None) -> bool:
    """Whether the last cycle (any state) started more than ``every_hours`` ago, or there was none."""
    last = list_cycles(project, limit=1)
    if not last:
        return True
    now = now or datetime.now(UTC)
    return now - last[0].started_at >= timedelta(hours=every_hours)


def _stage(progress: ProgressFn | None, stream: Any, message: str, fraction: float) -> None:
    if progress is not None:
        progress(message, fraction)
    if stream is not None:
        stream.write(fraction=fraction, message=message, force=True)


def run_cycle(project: Any, options: LoopOptions | None = None, *, progress: ProgressFn | None = None) -> CycleOutcome:
    """Run one cycle if it is due (see the module docstring); returns what happened. A failure marks the cycle
    ``failed`` with the error as its reason, and is raised."""
    options = options or loop_options(project)
    stream = progress_file(project.settings.progress_file)
    with loop_lock(project, wait_s=LOCK_WAIT_S):
        interrupted = interrupt_running(project)
        champion = find_champion(project, run=options.champion)
        if not options.force and options.every_hours and schedule_due(project, options.every_hours):
            options = replace(options, force=True, trigger="schedule")
        check = check_trigger(project, champion, min_new=options.min_new, force=options.force,
                              trigger=options.trigger, approved_only=options.approved_only)
        if not check.due:
            _stage(progress, stream, check.reason, 1.0)
            return CycleOutcome(ran=False, check=check, interrupted=interrupted)
        metric = options.metric or default_metric(project, champion.run_id)
        cycle = start_cycle(project, trigger=check.trigger, author=options.author,
                            new_annotations=check.new_annotations, champion_run=champion.run_id, metric=metric,
                            details={"started_because": check.reason, "champion_package": champion.package,
                                     "champion_version": champion.version, "margin": options.margin,
                                     "recipe": recipe(project, champion.run_id)})
        try:
            cycle = _cycle(project, cycle, champion, options, metric, progress, stream)
        except BaseException as e:
            stopped = isinstance(e, KeyboardInterrupt | SystemExit)
            update_cycle(project, cycle.id, state="failed", finished=True,
                         reason=STOPPED if stopped else f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            raise
        return CycleOutcome(ran=True, check=check, cycle=cycle, interrupted=interrupted)


def _cycle(project: Any, cycle: LoopCycle, champion: Any, options: LoopOptions, metric: str,
           progress: ProgressFn | None, stream: Any) -> LoopCycle:
    _stage(progress, stream, f"cycle {cycle.id}: freezing a version based on {champion.version}", 0.02)
    info = create_version(project, base=champion.version, approved_only=options.approved_only, seed=options.seed,
                          author=options.author)
    update_cycle(project, cycle.id, version=info.name, test_version=info.name,
                 details={"version_summary": {"splits": info.splits, "base": info.summary.get("base")}})
    _stage(progress, stream, f"cycle {cycle.id}: training the challenger on {info.name} with the recipe of "
                             f"{champion.run_id}", 0.05)
    result = train_challenger(project, champion.run_id, version=info.name, epochs=options.epochs)
    update_cycle(project, cycle.id, challenger_run=result.run_id)
    _stage(progress, stream, f"cycle {cycle.id}: champion and challenger on the test split of {info.name}", 0.85)
    champ = predict_split(project, champion.run_id, version=info.name)
    chal = predict_split(project, result.run_id, version=info.name)
    comp = compare_runs(champ, chal, metric=metric, resamples=options.resamples, confidence=options.confidence,
                        seed=options.seed)
    b = comp.bootstrap
    pct = round(100 * b.confidence)
    ci = f"{pct}% CI of the difference [{b.ci_low:+.4f}, {b.ci_high:+.4f}] over {b.images} test images"
    promote = b.ci_low > options.margin
    if promote:
        reason = (f"challenger {metric} {b.challenger:.4f} vs champion {b.champion:.4f}: {ci}, lower bound above the "
                  f"margin {options.margin:g}")
    elif b.difference > options.margin:
        reason = (f"challenger {metric} {b.challenger:.4f} vs champion {b.champion:.4f} looks better, but the {ci} "
                  f"reaches {b.ci_low:+.4f}, not above the margin {options.margin:g}: the gain is not established; "
                  "the champion stays (more test images, e.g. a larger random slice, narrow the interval)")
    else:
        reason = (f"challenger {metric} {b.challenger:.4f} is not better than the champion's {b.champion:.4f} ({ci}); "
                  "the champion stays")
    deployed = None
    if promote and options.deploy:
        _stage(progress, stream, f"cycle {cycle.id}: packaging and deploying {result.run_id}", 0.92)
        deployed = package_and_deploy(project, result.run_id, by=options.author,
                                      check_image=project.blobs.read(chal.shas[0]))
    elif promote:
        reason += " (not deployed: a dry run)"
    state = "promoted" if promote else "kept"
    report_rel = f"{LOOP_DIR}/{cycle.id}/{REPORT_FILE}"
    setup = {"trigger": cycle.trigger, "started_because": cycle.details.get("started_because"),
             "champion_run": champion.run_id, "champion_version": champion.version,
             "champion_package": champion.package, "challenger_run": result.run_id, "test_version": info.name,
             "test_images": b.images, "splits": info.splits, "recipe": cycle.details.get("recipe")}
    write_compare_report(project, cycle.id, decision={"state": state, "reason": reason, "margin": options.margin},
                         comparison=comp.to_json(), setup=setup)
    values = {"champion_value": b.champion, "challenger_value": b.challenger, "ci_low": b.ci_low,
              "ci_high": b.ci_high, "reason": reason, "package": deployed["package"] if deployed else None}
    with project.transaction() as conn:
        done = update_cycle(project, cycle.id, conn=conn, state=state, finished=True, **values,
                            details={"report": report_rel, "confidence": b.confidence, "resamples": b.resamples,
                                     "images": b.images, "n_better": comp.n_better, "n_worse": comp.n_worse,
                                     "per_class": comp.per_class, "per_class_metric": comp.per_class_metric,
                                     "deployed": bool(deployed)})
        if deployed:
            emit_event(conn, EventKind.MODEL_PROMOTED, {
                "cycle": cycle.id, "run": result.run_id, "package": deployed["package"],
                "package_version": deployed.get("package_version"), "previous_run": champion.run_id,
                "previous_package": champion.package, "version": info.name, "metric": metric,
                "champion": b.champion, "challenger": b.challenger, "ci": [b.ci_low, b.ci_high],
                "by": options.author,
                "links": {"cycle": api_path(project.name, "loop", "cycles", cycle.id),
                          "report": api_path(project.name, "loop", "cycles", cycle.id, "report")}})
    _stage(progress, stream, f"cycle {cycle.id}: {state}", 1.0)
    return done


