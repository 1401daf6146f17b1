"""The deployed model of a project: a real exported package served by the platform with onnxruntime, hot swapped,
predictions of uploads and of project images (cached), and no torch in the web process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.deploy_fixtures import detector_package  # noqa: F401
from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.deployments import DEPLOYMENT_FILE
from visionloop.storage import Project
from visionloop.storage.users import Role

API = "/api/v1/projects/cells"
SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"


@dataclass
class Served:
    client: TestClient
    project: Project
    admin: dict[str, str]
    viewer: dict[str, str]


def make_project(root: Path, package: Path) -> Path:
    src = root / "src" / "BCCD"
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:2]:
        for sub, name in (("Annotations", xml.name), ("JPEGImages", f"{xml.stem}.jpg")):
            (src / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLE / sub / name, src / sub / name)
    with Project.create(root / "cells", task="detection") as p:
        import_source(p, src.parent)
    shutil.copytree(package, root / "cells" / "packages" / "detector")
    broken = root / "cells" / "packages" / "broken"
    shutil.copytree(package, broken)
    (broken / "model.onnx").write_bytes(b"not a model")
    return root / "cells"


@pytest.fixture
def served(tmp_path: Path, detector_package: Path) -> Iterator[Served]:  # noqa: F811
    root = make_project(tmp_path, detector_package)
    with TestClient(create_app(root, settings=Settings(prediction_cache_entries=1))) as client:
        project = client.app.state.projects.get("cells")
        yield Served(client, project, bearer_headers(project, Role.ADMIN), bearer_headers(project, Role.VIEWER))


def test_deploy_predict_and_hot_swap(served: Served) -> None:
    c = served.client
    assert c.get(f"{API}/deployment", headers=served.viewer).json()["package"] is None
    none = c.get(f"{API}/images/1/predictions", headers=served.viewer)
    assert none.status_code == 404 and "POST .../deployment" in none.json()["detail"]
    listed = {p["name"]: p for p in c.get(f"{API}/packages", headers=served.viewer).json()}
    assert listed["detector"]["task"] == "detection" and listed["detector"]["precision"] == "fp32"
    assert listed["detector"]["classes"] == ["RBC", "WBC", "Platelets"] and not listed["detector"]["deployed"]

    assert c.post(f"{API}/deployment", json={"package": "detector"}, headers=served.viewer).status_code == 403
    unknown = c.post(f"{API}/deployment", json={"package": "../detector"}, headers=served.admin)
    assert unknown.status_code == 404 and unknown.json()["choices"] == ["broken", "detector"]
    deployed = c.post(f"{API}/deployment", json={"package": "detector"}, headers=served.admin)
    assert deployed.status_code == 200, deployed.text
    assert deployed.json()["package"] == "detector" and deployed.json()["deployed_by"] == "admin-user"
    assert {p["name"]: p["deployed"] for p in c.get(f"{API}/packages", headers=served.viewer).json()} == {
        "detector": True, "broken": False}

    image = next((SAMPLE / "JPEGImages").glob("*.jpg")).read_bytes()
    predicted = c.post(f"{API}/predict", files={"file": ("cells.jpg", image, "image/jpeg")}, headers=served.viewer)
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    assert body["task"] == "detection" and (body["width"], body["height"]) == (640, 480)
    assert isinstance(body["detections"], list)
    assert all(set(d) >= {"xyxy", "class_id", "name", "score"} for d in body["detections"])
    bad = c.post(f"{API}/predict", files={"file": ("x.jpg", b"not an image", "image/jpeg")}, headers=served.viewer)
    assert bad.status_code == 400 and "x.jpg" in bad.json()["detail"]

    first = c.get(f"{API}/images/1/predictions", headers=served.viewer).json()
    deployments = c.app.state.deployments
    assert first == c.get(f"{API}/images/1/predictions", headers=served.viewer).json() and deployments.cached == 1
    c.get(f"{API}/images/2/predictions", headers=served.viewer)
    assert deployments.cached == 1  # prediction_cache_entries bounds it

    refused = c.post(f"{API}/deployment", json={"package": "broken"}, headers=served.admin)
    assert refused.status_code == 409 and "the deployed model stays" in refused.json()["detail"]
    assert c.get(f"{API}/deployment", headers=served.viewer).json()["package"] == "detector"
    assert c.post(f"{API}/predict", files={"file": ("a.jpg", image, "image/jpeg")},
                  headers=served.viewer).status_code == 200
    record = json.loads((Path(served.project.root) / DEPLOYMENT_FILE).read_text())
    assert record["package"] == "detector"


def test_a_restarted_server_deploys_the_same_package_without_torch(
    tmp_path: Path, detector_package: Path,  # noqa: F811
) -> None:
    root = make_project(tmp_path, detector_package)
    (root / DEPLOYMENT_FILE).write_text(json.dumps({"package": "detector", "deployed_at": "2026-12-01T10:00:00+00:00",
                                                    "deployed_by": "ann"}))
    image = next((SAMPLE / "JPEGImages").glob("*.jpg"))
    script = textwrap.dedent(f"""
        import sys
        from fastapi.testclient import TestClient
        from tests.serving.conftest import bearer_headers
        from visionloop.core.settings import Settings
        from visionloop.serving.projects_api.app import create_app
        with TestClient(create_app({str(root)!r}, settings=Settings())) as c:
            headers = bearer_headers(c.app.state.projects.get("cells"), "viewer")
            got = c.get("{API}/deployment", headers=headers).json()
            assert got["package"] == "detector" and got["deployed_by"] == "ann", got
            data = open({str(image)!r}, "rb").read()
            r = c.post("{API}/predict", files={{"file": ("a.jpg", data, "image/jpeg")}}, headers=headers)
            assert r.status_code == 200, r.text
            assert c.get("{API}/images/1/predictions", headers=headers).status_code == 200
        print("torch" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False"  # the web process never loaded torch


def test_an_upload_over_the_api_limit_is_refused(tmp_path: Path, detector_package: Path) -> None:  # noqa: F811
    root = make_project(tmp_path, detector_package)
    with TestClient(create_app(root, settings=Settings(api_max_body_bytes=10_000))) as c:
        headers = bearer_headers(c.app.state.projects.get("cells"), Role.VIEWER)
        big = next((SAMPLE / "JPEGImages").glob("*.jpg")).read_bytes()
        assert len(big) > 10_000
        r = c.post(f"{API}/predict", files={"file": ("a.jpg", big, "image/jpeg")}, headers=headers)
        assert r.status_code == 413 and "api_max_body_bytes" in r.json()["detail"]


def test_a_run_trained_with_deploy_is_evaluated_packaged_and_deployed(served: Served) -> None:
    """The jobs that follow a training started with ``deploy``: evaluate, then package, then the deployment itself."""
    from visionloop.serving.jobs.kinds import evaluate_after_training, package_after_evaluation
    from visionloop.serving.projects_api.deployments import deploy_after_packaging
    from visionloop.storage.jobs import create_job
    from visionloop.storage.versions import create_version

    p = served.project
    run, untested = "20261202-000000-fasterrcnn-test", "20261202-000000-fasterrcnn-untested"
    for name, rid, fractions in (("v1", run, (0.5, 0.0, 0.5)), ("v2", untested, (1.0, 0.0, 0.0))):
        create_version(p, name=name, seed=0, fractions=fractions)
        (Path(p.root) / "runs" / rid).mkdir(parents=True)
        (Path(p.root) / "runs" / rid / "config.json").write_text(json.dumps({"version": {"name": name}}))
    train = create_job(p, kind="train", params={"version": "v2", "deploy": True}, created_by="admin")
    # nothing to evaluate on: the package comes next
    assert evaluate_after_training(p, train, {"run": untested}) == (
        "package", {"run": untested, "name": untested, "deploy": True})
    train = create_job(p, kind="train", params={"version": "v1", "deploy": True}, created_by="admin")
    kind, params = evaluate_after_training(p, train, {"run": run})
    assert kind == "evaluate" and params["run"] == run and params["deploy"] is True
    evaluate = create_job(p, kind=kind, params=params, created_by="admin")
    assert package_after_evaluation(p, evaluate, {}) == ("package", {"run": run, "name": run, "deploy": True})
    plain = create_job(p, kind="train", params={"version": "v1"}, created_by="admin")
    assert "deploy" not in evaluate_after_training(p, plain, {"run": run})[1]  # without deploy the chain ends there
    assert evaluate_after_training(p, plain, {"run": untested}) is None
    assert package_after_evaluation(p, create_job(p, kind="evaluate", params={"run": run}, created_by="a"), {}) is None

    follow = deploy_after_packaging(served.client.app.state.deployments)
    assert follow(p, create_job(p, kind="package", params={"name": "detector", "deploy": True}, created_by="ann"),
                  {}) is None
    now = served.client.get(f"{API}/deployment", headers=served.viewer).json()
    assert now["package"] == "detector" and now["deployed_by"] == "ann"
    follow(p, create_job(p, kind="package", params={"name": "broken", "deploy": True}, created_by="ann"), {})
    assert served.client.get(f"{API}/deployment", headers=served.viewer).json()["package"] == "detector"  # kept
