"""The retrain-and-compare loop on a real SQLite project: trigger, frozen test set, challenger, bootstrap decision,
promotion (package + deployment.json + model.promoted event), history, and a clean start after a killed cycle."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.active.loop_projects import bccd_crops_loop_project
from tests.synthetic import make_project
from visionloop.active.loop import LoopOptions, loop_history, loop_options, run_cycle
from visionloop.active.loop_promote import package_and_deploy
from visionloop.core.errors import AnnotationValidationError, ConflictError
from visionloop.storage import Project
from visionloop.storage.deployment import read_deployment
from visionloop.storage.events import EventKind, list_events
from visionloop.storage.loop_cycles import INTERRUPTED, get_cycle, list_cycles, start_cycle
from visionloop.storage.review import ReviewState, set_review_state
from visionloop.storage.versions import version_items
from visionloop.training.api import train


def _cli() -> typer.Typer:
    from visionloop.cli.loop_cmds import register

    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so the command is called by its name as in `visionloop loop`
    register(app)
    return app


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A synthetic colour project with a linear champion run (not deployed)."""
    root = tmp_path_factory.mktemp("small")
    p = make_project(root / "p", task="classification", n_per_class=8)
    run = train(p, version="v1", strategy="linear", progress=False, log=lambda _s: None).run_id
    p.close()
    return root / "p", run


def test_nothing_deployed_and_no_champion_named_says_what_to_do(small):
    path, _ = small
    with Project.open(path) as p, pytest.raises(ConflictError, match="--champion RUN"):
        run_cycle(p, loop_options(p))


def test_not_due_changes_nothing_and_a_killed_cycle_is_marked_interrupted(small):
    path, run = small
    with Project.open(path) as p:
        before = {c.id for c in list_cycles(p)}
        killed = start_cycle(p, trigger="manual", author="loop", champion_run=run)  # its process died
        out = run_cycle(p, loop_options(p, champion=run, min_new=5))
        assert not out.ran and not out.check.due and "0 new approved annotations" in out.check.reason
        assert out.interrupted == [killed.id]
        gone = get_cycle(p, killed.id)
        assert gone.state == "failed" and gone.reason == INTERRUPTED and gone.finished_at is not None
        assert {c.id for c in list_cycles(p)} - before == {killed.id}  # no row for a check that was not due


def test_one_cycle_at_a_time(small):
    path, run = small
    with Project.open(path) as p:
        (path / "loop").mkdir(exist_ok=True)
        fd = os.open(path / "loop" / ".lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with pytest.raises(ConflictError, match="already running"):
                run_cycle(p, loop_options(p, champion=run, force=True))
        finally:
            os.close(fd)


def test_options_come_from_the_project_file_then_the_caller(small):
    path, _ = small
    with Project.open(path) as p:
        text = (path / "visionloop.toml").read_text()
        try:
            (path / "visionloop.toml").write_text(text + "\n[loop]\nmin_new = 7\nmargin = 0.02\n")
            assert loop_options(p) == LoopOptions(min_new=7, margin=0.02)
            assert loop_options(p, margin=0.0, metric="macro_f1").margin == 0.0
        finally:
            (path / "visionloop.toml").write_text(text)
        with pytest.raises(AnnotationValidationError, match="min_new"):
            loop_options(p, min_new=-1)
        with pytest.raises(AnnotationValidationError, match="loop option"):
            loop_options(p, minimum=3)


@pytest.mark.slow
@pytest.mark.ci
def test_bccd_crops_cycle_promotes_a_better_challenger_then_keeps_an_equal_one(bccd_dir, tmp_path):
    path, to_review = bccd_crops_loop_project(bccd_dir, tmp_path, n=24, seed_train_images=1)
    with Project.open(path) as p:
        champion = train(p, version="v1", strategy="linear", progress=False, log=lambda _s: None).run_id
        package_and_deploy(p, champion, by="admin")
        v1 = {it.image.id: it.split for it in version_items(p, "v1")}

        # the reviewers approve more crops: the count starts a cycle
        set_review_state(p, to_review, ReviewState.APPROVED, author="reviewer")
        out = run_cycle(p, loop_options(p, min_new=20, author="admin"))
        c = out.cycle
        assert out.ran and c.state == "promoted", c.reason
        assert c.trigger == "count" and c.new_annotations == len(to_review) and c.champion_run == champion
        assert c.challenger_value > c.champion_value and 0 < c.ci_low <= c.ci_high
        assert c.metric == "accuracy" and c.version == c.test_version == "v2"
        v2 = {it.image.id: it.split for it in version_items(p, "v2")}
        assert {i: v2[i] for i in v1} == v1  # the test set stayed frozen: same images, same splits
        assert {i for i, s in v2.items() if s == "test"} == {i for i, s in v1.items() if s == "test"}
        assert sum(s == "train" for s in v2.values()) > 3 * sum(s == "train" for s in v1.values())
        deployed = read_deployment(p.root)
        assert deployed["package"] == c.package == c.challenger_run and deployed["action"] == "promote"
        assert deployed["previous"]["package"] == champion
        _, events = list_events(p, kind=EventKind.MODEL_PROMOTED)
        assert [e.payload["run"] for e in events] == [c.challenger_run]
        assert events[0].payload["previous_run"] == champion and events[0].payload["ci"] == [c.ci_low, c.ci_high]
        report = (path / c.details["report"]).read_text()
        assert "PROMOTED" in report and "Test images that got better" in report and "data:image/jpeg" in report
        print(f"BCCD crops cycle: champion accuracy {c.champion_value:.4f}, challenger {c.challenger_value:.4f}, "
              f"95% CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}] over {c.details['images']} test crops")

        # forced again with nothing new: the same recipe on the same data is not better, the champion stays
        again = run_cycle(p, loop_options(p, force=True)).cycle
        assert again.state == "kept" and again.trigger == "manual" and "champion stays" in again.reason
        assert again.champion_run == c.challenger_run and again.package is None
        assert read_deployment(p.root)["package"] == c.challenger_run
        assert list_events(p, kind=EventKind.MODEL_PROMOTED)[0] == 1
        history = loop_history(p)
        assert [h["state"] for h in history["cycles"]] == ["kept", "promoted"]
        assert history["last_promotion"]["id"] == c.id and history["deployment"]["package"] == c.challenger_run

    r = CliRunner().invoke(_cli(), ["loop", "history", str(path), "--json"])
    assert r.exit_code == 0, r.output
    assert [h["id"] for h in json.loads(r.stdout)["cycles"]] == [again.id, c.id]
    r = CliRunner().invoke(_cli(), ["loop", str(path), "--once", "--min-new", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ran"] is False and "fewer than 1" in json.loads(r.stdout)["reason"]
    r = CliRunner().invoke(_cli(), ["loop", "history"])
    assert r.exit_code != 0 and "visionloop loop history PROJECT" in r.output


def test_history_cli_on_a_project_without_cycles(small):
    path, _ = small
    r = CliRunner().invoke(_cli(), ["loop", "history", str(Path(path)), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["deployment"] is None


def test_a_schedule_is_due_when_the_last_cycle_started_long_enough_ago(tmp_path):
    from datetime import UTC, datetime, timedelta

    from visionloop.active.loop import schedule_due

    with make_project(tmp_path / "p", task="classification", n_per_class=2) as p:
        assert schedule_due(p, 24)  # never ran
        start_cycle(p, trigger="schedule", author="loop")
        assert not schedule_due(p, 24)
        assert schedule_due(p, 24, now=datetime.now(UTC) + timedelta(hours=25))


@pytest.mark.slow
@pytest.mark.ci  # a real `visionloop loop` process: about 20 s
def test_a_cycle_stopped_by_sigterm_is_recorded_as_stopped(small):
    import signal
    import subprocess
    import sys
    import time

    from visionloop.active.loop import STOPPED

    path, run = small
    with Project.open(path) as p:
        before = {c.id for c in list_cycles(p)}
        proc = subprocess.Popen([sys.executable, "-m", "visionloop.cli.main", "loop", str(path), "--once", "--force",
                                 "--champion", run, "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not [c for c in list_cycles(p) if c.id not in before and c.state == "running"]:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()[-2000:]
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)  # what a cancelled job gets
            assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        finally:
            if proc.poll() is None:
                proc.kill()
        [stopped] = [c for c in list_cycles(p) if c.id not in before]
        assert stopped.state == "failed" and stopped.reason == STOPPED and stopped.finished_at is not None
