"""Drift routes over the project API with real credentials: reports (viewer), a check as a real drift job (admin),
the latest report as Prometheus metrics, and the loop job a drift alert may queue."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.active.drift_fixtures import THUMBS, add_samples, darken_and_blur, reference_project, tiny_classifier_package
from tests.conftest import make_image_bytes
from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.serving.jobs.kinds import KINDS, loop_after_drift
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.routes.drift import drift_metrics
from visionloop.storage.jobs import create_job
from visionloop.storage.users import Role

API = "/api/v1"


def _wait(client: TestClient, url: str, headers: dict[str, str]) -> dict:
    deadline = time.monotonic() + 600
    while (job := client.get(url, headers=headers).json())["state"] in ("queued", "running") \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    return job


@pytest.fixture
def served(project_factory, tmp_path: Path):  # noqa: ANN001, ANN201
    """A project with the tiny package deployed, 25 darkened production samples, ``[loop] on_drift = true``; yields
    (client, project, base URL)."""
    p = reference_project(project_factory)
    package = tiny_classifier_package(tmp_path / "pkg" / "tiny")
    shutil.copytree(package, Path(p.root) / "packages" / "tiny")
    (Path(p.root) / "deployment.json").write_text(json.dumps({"package": "tiny"}), encoding="utf-8")
    toml = Path(p.root) / "visionloop.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[loop]\non_drift = true\n", encoding="utf-8")
    images = [darken_and_blur(make_image_bytes(64, 48, seed=700 + i)) for i in range(25)]
    add_samples(p, package, images, at=datetime.now(UTC) - timedelta(minutes=5))
    with TestClient(create_app(Path(p.root).parent, settings=Settings())) as c:
        yield c, p, f"{API}/projects/{p.name}"


def test_drift_routes_need_a_user_and_admins_start_checks(served) -> None:  # noqa: ANN001
    c, p, base = served
    admin, viewer = bearer_headers(p, Role.ADMIN), bearer_headers(p, Role.VIEWER)
    for method, url in (("get", "/drift"), ("post", "/drift"), ("get", "/metrics")):
        assert c.request(method, base + url, json={}).status_code == 401
    assert c.post(f"{base}/drift", json={}, headers=viewer).status_code == 403
    assert c.post(f"{base}/drift", json={}, headers=bearer_headers(p, Role.REVIEWER)).status_code == 403
    bad = c.post(f"{base}/drift", json={"window": "soon"}, headers=admin)
    assert bad.status_code == 422 and "drift window" in bad.text
    assert c.post(f"{base}/drift", json={"package": "../x"}, headers=admin).status_code == 422
    assert c.post(f"{base}/drift", json={"window": "1" * 17}, headers=admin).status_code == 422
    empty = c.get(f"{base}/drift", headers=viewer)
    assert empty.status_code == 200 and empty.json()["reports"] == []
    assert empty.json()["thresholds"]["mmd_p"] == 0.01
    assert c.get(f"{base}/drift", params={"limit": 1001}, headers=viewer).status_code == 422
    m = c.get(f"{base}/metrics", headers=viewer)
    assert m.status_code == 200 and "visionloop_drift" not in m.text


@pytest.mark.slow  # the drift job runs the command in a child process
def test_a_drift_job_stores_a_report_shown_as_metrics(served) -> None:  # noqa: ANN001
    c, p, base = served
    admin, viewer = bearer_headers(p, Role.ADMIN), bearer_headers(p, Role.VIEWER)
    r = c.post(f"{base}/drift", json={"window": "1h", "backbone": THUMBS}, headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "drift" and r.json()["params"] == {"window": "1h", "backbone": THUMBS}
    job = _wait(c, f"{base}/jobs/{r.json()['id']}", admin)
    assert job["state"] == "done", job
    assert job["result"]["alert"] is True and job["result"]["loop_requested"] is True
    loop = c.get(f"{base}/jobs/{job['result']['follow_up_job']}", headers=admin).json()  # the alert asked for it
    assert loop["kind"] == "loop" and loop["params"] == {"trigger": "drift", "drift_report": job["result"]["id"]}

    listed = c.get(f"{base}/drift", params={"limit": 5}, headers=viewer).json()["reports"]
    assert [x["id"] for x in listed] == [job["result"]["id"]]
    assert listed[0]["model"] == "tiny" and listed[0]["n_production"] == 25
    assert set(listed[0]["image_stats"]) == {"size", "brightness", "blur"}

    m = c.get(f"{base}/metrics", headers=viewer)
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    lines = m.text.splitlines()
    assert f'visionloop_drift_alert{{project="{p.name}"}} 1.0' in lines
    assert f'visionloop_drift_production_samples{{project="{p.name}"}} 25.0' in lines
    assert any(line.startswith(f'visionloop_drift_mmd_p{{project="{p.name}"}} ') for line in lines)
    assert any(line.startswith(f'visionloop_drift_image_psi{{project="{p.name}",stat="brightness"}} ')
               for line in lines)


def test_metrics_text_without_a_report() -> None:
    assert drift_metrics("cells", None) == b""


def test_a_drift_alert_queues_the_loop_only_when_asked(project_factory) -> None:  # noqa: ANN001
    p = project_factory("classification")
    job = create_job(p, kind="drift", params={}, created_by="admin")
    asked = {"id": 7, "alert": True, "loop_requested": True}
    assert loop_after_drift(p, job, asked) == ("loop", {"trigger": "drift", "drift_report": 7})
    steps = KINDS["loop"].steps(p, create_job(p, kind="loop", params={"trigger": "drift", "drift_report": 7},
                                              created_by="admin"))
    assert "--force" in steps[0].args and steps[0].args[steps[0].args.index("--trigger") + 1] == "drift"
    assert loop_after_drift(p, job, {**asked, "loop_requested": False}) is None
    assert loop_after_drift(p, job, {"id": 8, "alert": False}) is None
