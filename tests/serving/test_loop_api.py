"""Loop routes over real HTTP (uvicorn on 127.0.0.1): history (viewer), a cycle started as a real ``loop`` job
(admin), one cycle and its comparison report under the report CSP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.serving.conftest import bearer_headers
from tests.synthetic import make_project
from visionloop.active.compare_report import write_compare_report
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.server import ServerThread
from visionloop.storage import Project
from visionloop.storage.loop_cycles import INTERRUPTED, start_cycle, update_cycle
from visionloop.storage.users import Role

SETTINGS = Settings(job_threads=1)


@dataclass
class Served:
    http: httpx.Client
    project: Project
    admin: dict[str, str]
    viewer: dict[str, str]
    base: str = "/api/v1/projects/p/loop"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("loop-api") / "projects"
    p = make_project(root / "p", task="classification", n_per_class=4)
    admin, viewer = bearer_headers(p, Role.ADMIN), bearer_headers(p, Role.VIEWER)
    p.close()
    with ServerThread(root, settings=SETTINGS) as server, httpx.Client(base_url=server.url, timeout=60) as http:
        yield Served(http, server.app.state.projects.get("p"), admin, viewer)


def _wait(s: Served, job_id: int) -> dict:
    deadline = time.monotonic() + 300
    while (job := s.http.get(f"/api/v1/projects/p/jobs/{job_id}", headers=s.admin).json())["state"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
    return job


def test_who_may_call_the_loop_routes(served: Served) -> None:
    s = served
    for method, url in (("get", ""), ("post", ""), ("get", "/cycles/1"), ("get", "/cycles/1/report")):
        assert s.http.request(method, s.base + url).status_code == 401
    assert s.http.post(s.base, json={}, headers=s.viewer).status_code == 403
    assert s.http.post(s.base, json={}, headers=bearer_headers(s.project, Role.REVIEWER)).status_code == 403
    assert s.http.get(s.base, params={"limit": 501}, headers=s.viewer).status_code == 422
    assert s.http.post(s.base, json={"min_new": -1}, headers=s.admin).status_code == 422


def test_history_lists_cycles_and_a_stale_running_one_is_marked_interrupted(served: Served) -> None:
    s = served
    empty = s.http.get(s.base, headers=s.viewer).json()
    assert empty["deployment"] is None and empty["job"] is None and empty["settings"]["min_new"] == 50
    stale = start_cycle(s.project, trigger="manual", author="admin")  # its process is gone: no one holds the lock
    decided = start_cycle(s.project, trigger="count", author="loop", new_annotations=60)
    update_cycle(s.project, decided.id, state="kept", finished=True, metric="accuracy", champion_value=0.9,
                 challenger_value=0.91, ci_low=-0.02, ci_high=0.04, reason="not established")
    write_compare_report(s.project, decided.id, decision={"state": "kept", "reason": "not established", "margin": 0},
                         comparison={"bootstrap": {"metric": "accuracy", "champion": 0.9, "challenger": 0.91,
                                                   "difference": 0.01, "ci_low": -0.02, "ci_high": 0.04,
                                                   "confidence": 0.95, "resamples": 10, "images": 20, "seed": 0},
                                     "per_class": {"c0": {"champion": 0.8, "challenger": None}},
                                     "per_class_metric": "recall", "better": [], "worse": [], "kind": "classification"},
                         setup={"champion_run": "a", "challenger_run": "b", "test_version": "v1"})
    got = s.http.get(s.base, headers=s.viewer).json()
    assert [c["id"] for c in got["cycles"]] == [decided.id, stale.id]
    assert got["cycles"][1]["state"] == "failed" and got["cycles"][1]["reason"] == INTERRUPTED
    assert got["cycles"][0]["report"] is True and got["cycles"][1]["report"] is False
    one = s.http.get(f"{s.base}/cycles/{decided.id}", headers=s.viewer)
    assert one.status_code == 200 and one.json()["ci_low"] == -0.02
    report = s.http.get(f"{s.base}/cycles/{decided.id}/report", headers=s.viewer)
    assert report.status_code == 200 and "KEPT: not established" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    missing = s.http.get(f"{s.base}/cycles/{stale.id}/report", headers=s.viewer)
    assert missing.status_code == 404 and "is failed" in missing.json()["detail"]
    assert s.http.get(f"{s.base}/cycles/9999", headers=s.viewer).status_code == 404


@pytest.mark.slow
@pytest.mark.ci  # the loop job starts a Python process that imports torch: 20-30 s on 2 loaded cores
def test_an_admin_starts_a_cycle_as_a_loop_job(served: Served) -> None:
    s = served
    r = s.http.post(s.base, json={}, headers=s.admin)
    assert r.status_code == 202 and r.json()["kind"] == "loop"
    job_id = r.json()["id"]
    again = s.http.post(s.base, json={}, headers=s.admin)
    assert again.status_code in (202, 409)  # 409 while the first is queued or running
    if again.status_code == 409:
        assert f"loop job {job_id}" in again.json()["detail"]
    job = _wait(s, job_id)
    # nothing is deployed in this project: the cycle's command says what to do, and the job fails with it
    assert job["state"] == "failed" and "nothing is deployed" in (job.get("error") or "") + str(job.get("log"))
    if again.status_code == 202:
        _wait(s, again.json()["id"])
