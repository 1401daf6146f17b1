"""Train, measure and deploy from the API, as the web page does: a real detector trained on BCCD sample images in a
job (cancelled after its first epoch and resumed), its report from the evaluate job that follows, an int8 package
with the guard's verdict, deployed and asked for a prediction."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.routes.runs import REPORT_CSP
from visionloop.storage import Project
from visionloop.storage.users import Role
from visionloop.storage.versions import create_version

API = "/api/v1/projects/cells"
SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"
BOUND_S = 900.0


@pytest.mark.slow
def test_train_cancel_resume_report_package_deploy(tmp_path: Path) -> None:
    src = tmp_path / "src" / "BCCD"
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:10]:
        for sub, name in (("Annotations", xml.name), ("JPEGImages", f"{xml.stem}.jpg")):
            (src / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLE / sub / name, src / sub / name)
    with Project.create(tmp_path / "cells", task="detection") as p:
        import_source(p, src.parent)
        n_train = create_version(p, name="v1", fractions=(0.6, 0.2, 0.2)).splits["train"]
    with TestClient(create_app(tmp_path / "cells", settings=Settings(job_threads=2))) as c:
        project = c.app.state.projects.get("cells")
        admin, viewer = bearer_headers(project, Role.ADMIN), bearer_headers(project, Role.VIEWER)

        def job(jid: int) -> dict:
            return c.get(f"{API}/jobs/{jid}", headers=viewer).json()

        def wait(jid: int, ready=lambda j: j["state"] not in ("queued", "running")) -> dict:
            deadline = time.monotonic() + BOUND_S
            while not ready(got := job(jid)):
                assert time.monotonic() < deadline, f"job {jid} is stuck: {got}"
                time.sleep(0.5)
            return got

        options = c.get(f"{API}/train/options", params={"version": "v1"}, headers=viewer).json()
        assert options["default_model"] == "fasterrcnn_mobilenet_v2_fpn" and options["training_images"] == n_train
        assert options["default_model"] in [m["name"] for m in options["models"]] and options["strategies"] == []
        assert "fine-tuned" in options["auto"]["reason"]

        started = c.post(f"{API}/runs", json={"version": "v1", "epochs": 2, "image_size": 192}, headers=admin)
        assert started.status_code == 202, started.text
        first = wait(started.json()["id"], lambda j: "record" in j["progress"] or j["state"] != "running"
                     and j["state"] != "queued")
        run = first["progress"]["run"]
        assert first["progress"]["record"]["epoch"] == 1 and 0 < first["progress"]["fraction"] < 1
        listed = c.get(f"{API}/runs", headers=viewer).json()
        assert listed[0]["id"] == run and listed[0]["state"] == "running" and listed[0]["job"] == first["id"]
        c.post(f"{API}/jobs/{first['id']}/cancel", headers=admin)
        assert wait(first["id"])["state"] == "cancelled"
        assert c.get(f"{API}/runs/{run}", headers=viewer).json()["state"] == "stopped"

        resumed = c.post(f"{API}/jobs/{first['id']}/resume", headers=admin)
        assert resumed.status_code == 202 and resumed.json()["params"]["resume"] == run, resumed.text
        done = wait(resumed.json()["id"])
        assert done["state"] == "done" and done["result"]["run"] == run and done["result"]["epochs"] == 2, done
        report_job = wait(done["result"]["follow_up_job"])
        assert report_job["kind"] == "evaluate" and report_job["state"] == "done", report_job
        assert report_job["params"] == {"run": run, "split": "test"}

        history = c.get(f"{API}/runs/{run}/history", headers=viewer).json()
        assert history["series"]["epoch"] == [1, 2] and len(history["series"]["train_loss"]) == 2
        assert "val_map" in history["series"]
        summary = c.get(f"{API}/runs/{run}", headers=viewer).json()
        assert summary["state"] == "done" and summary["report"] and summary["main_metric"] == "map"
        assert {"val_map", "test_map", "test_map50"} <= set(summary["metrics"])
        report = c.get(f"{API}/runs/{run}/report", headers=viewer)
        assert report.status_code == 200 and report.headers["content-security-policy"] == REPORT_CSP
        assert "<html" in report.text.lower()
        same = c.get(f"{API}/runs/compare", params={"a": run, "b": run}, headers=viewer).json()
        assert same["config"] == {} and same["split"] == "test" and set(same["per_class"]) >= {"RBC"}

        packaged = c.post(f"{API}/packages", json={"run": run, "int8": True}, headers=admin)
        assert packaged.status_code == 202, packaged.text
        pj = wait(packaged.json()["id"])
        guard = pj["result"]["int8_guard"]
        assert guard["outcome"] in ("written", "refused") and "package" not in guard and guard["metric"] == "map"
        if pj["state"] == "failed":  # the guard refused int8 (it loses too much on this tiny run): fp32 then
            assert "int8" in pj["error"] and guard["outcome"] == "refused", pj
            pj = wait(c.post(f"{API}/packages", json={"run": run, "int8": False}, headers=admin).json()["id"])
        assert pj["state"] == "done", pj
        packages = c.get(f"{API}/packages", headers=viewer).json()
        name = pj["result"]["name"]
        mine = next(p for p in packages if p["name"] == name)
        assert mine["run"] == run and (mine["precision"] == "fp32" or mine["int8_guard"]["outcome"] == "written")

        assert c.post(f"{API}/deployment", json={"package": name}, headers=admin).status_code == 200
        image = next((src / "JPEGImages").glob("*.jpg")).read_bytes()
        predicted = c.post(f"{API}/predict", files={"file": ("a.jpg", image, "image/jpeg")}, headers=viewer)
        assert predicted.status_code == 200 and predicted.json()["task"] == "detection", predicted.text
