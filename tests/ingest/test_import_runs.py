"""One import at a time per project: a second one is told clearly, a killed or failed one is not 'running' forever."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select, update

from tests.conftest import REPO, fresh_postgres_database, make_image_bytes
from visionloop.core.errors import FormatError
from visionloop.ingest import ImportRunningError, import_source, runs
from visionloop.ingest.runs import start_run
from visionloop.storage import Project
from visionloop.storage.models import ImportRow


def _folder(root, n, *, seed=0):
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"{i}.jpg").write_bytes(make_image_bytes(seed=seed + i))
    return root


def _statuses(project):
    with project.engine.connect() as c:
        return [r.status for r in c.execute(select(ImportRow.status).order_by(ImportRow.id))]


def test_a_second_import_while_one_runs_is_refused_clearly(project_factory, tmp_path):
    p = project_factory("classification")
    running = start_run(p, "/data/first", "images")  # an import at work in this process
    with pytest.raises(ImportRunningError, match=r"an import is running in this project \(import #1 of /data/first"):
        import_source(p, _folder(tmp_path / "b", 2), format="images")
    assert _statuses(p) == ["running", "refused"]
    running.finish("done", {})
    assert import_source(p, tmp_path / "b", format="images").images_added == 2
    assert _statuses(p) == ["done", "refused", "done"]


def test_a_killed_import_is_detected_and_marked_interrupted(project_factory, tmp_path):
    p = project_factory("classification")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    run = start_run(p, "/data/killed", "images")
    with p.transaction() as c:  # as the killed process left it: running, owned by a process that is gone
        owner = {"host": os.uname().nodename, "pid": dead_pid, "heartbeat": "2020-01-01T00:00:00+00:00"}
        c.execute(update(ImportRow).where(ImportRow.id == run.id).values(report={"owner": owner}))
        c.execute(ImportRow.__table__.insert().values(source="/old", format="coco", status="running", report={}))
    report = import_source(p, _folder(tmp_path / "a", 2), format="images")
    assert report.images_added == 2
    assert _statuses(p) == ["interrupted", "interrupted", "done"]


def test_a_failed_import_is_recorded_as_failed(project_factory, tmp_path):
    p = project_factory("classification")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not an archive" * 10)
    with pytest.raises(FormatError):
        import_source(p, bad)
    with p.engine.connect() as c:
        row = c.execute(select(ImportRow.status, ImportRow.report)).one()
    assert row.status == "failed" and "FormatError" in row.report["error"]


def test_two_import_processes_at_once_never_trace_back(tmp_path):
    """Two CLI imports into one project at once (small batches, shared images and classes): each one either
    completes or says an import is running; never a traceback (UNIQUE constraint, duplicate class)."""
    Project.create(tmp_path / "p", task="classification").close()
    for name, seed in (("a", 0), ("b", 20)):
        for cls, offset in (("cat", 0), ("dog", 100)):
            _folder(tmp_path / name / cls, 30, seed=seed + offset)  # a and b share 10 images per class
    env = {**os.environ, "VISIONLOOP_IMPORT_BATCH": "4", "PYTHONPATH": str(REPO / "src")}
    cmds = [[sys.executable, "-m", "visionloop.cli.main", "import", str(tmp_path / "p"), str(tmp_path / name),
             "--format", "class_folders", "--json"] for name in ("a", "b")]
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = [proc.communicate(timeout=300) for proc in procs]
    done = 0
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert "Traceback" not in err and "UNIQUE" not in err and "exists already" not in err, err
        if proc.returncode == 0:
            done += 1
            assert json.loads(out)["images_seen"] == 60
        else:
            assert proc.returncode == 1 and "an import is running" in err, err
    assert done >= 1
    with Project.open(tmp_path / "p") as p:
        assert p.count_images() == (100 if done == 2 else 60)
        assert sorted(p.ontology().names) == ["cat", "dog"]
        assert "running" not in _statuses(p)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_db_url(request, tmp_path):
    """A SQLite file, and a fresh PostgreSQL database on ``VISIONLOOP_TEST_POSTGRES_URL``'s server when it is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    base = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL server: set VISIONLOOP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@127.0.0.1/db")
    with fresh_postgres_database(base, prefix="vl_runs") as url:
        yield url


def test_two_imports_starting_at_the_same_instant_one_goes_on(tmp_path, fresh_db_url, monkeypatch):
    """Two threads start an import together; the first is held inside its start, after it decided to run and
    before it committed, while the second starts. The second must wait for that start and be refused: it may never
    decide on a view that misses the first (on PostgreSQL ids do not follow commit order)."""
    p = Project.create(tmp_path / "p", task="classification", db_url=fresh_db_url)
    entered, release = threading.Event(), threading.Event()
    real_owner = runs._owner
    calls = []

    def held_owner():
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            entered.set()
            release.wait(60)
        return real_owner()

    monkeypatch.setattr(runs, "_owner", held_owner)
    results: dict[str, object] = {}

    def start(name):
        try:
            results[name] = start_run(p, f"/data/{name}", "images")
        except ImportRunningError as e:
            results[name] = e

    first = threading.Thread(target=start, args=("first",), name="first")
    second = threading.Thread(target=start, args=("second",), name="second")
    try:
        first.start()
        assert entered.wait(60)
        second.start()
        second.join(0.5)  # give the second start time to overtake, were it not made to wait
        release.set()
        first.join(60)
        second.join(60)
        assert isinstance(results["first"], runs.ImportRun)
        assert isinstance(results["second"], ImportRunningError) and results["second"].run_id == results["first"].id
        assert sorted(_statuses(p)) == ["refused", "running"]
        assert calls == ["first"]
    finally:
        release.set()
        p.close()


def test_many_threads_starting_together_exactly_one_runs(project_factory):
    p = project_factory("classification")
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def start(k):
        barrier.wait()
        try:
            outcomes.append(start_run(p, f"/data/{k}", "images"))
        except ImportRunningError as e:
            outcomes.append(e)

    threads = [threading.Thread(target=start, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(isinstance(o, runs.ImportRun) for o in outcomes) == 1
    assert sum(isinstance(o, ImportRunningError) for o in outcomes) == 3
    assert sorted(_statuses(p)) == ["refused"] * 3 + ["running"]
