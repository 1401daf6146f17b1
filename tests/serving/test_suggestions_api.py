"""Pre-annotation over the project API: an admin queues the job, the job runs ``visionloop preannotate`` with the
deployed detector (a real exported package), an image's suggestion comes back for viewers, and the predictions
route answers from it (the same boxes the live model gives). Who may call what: 401 without credentials, 403 for a
role too weak."""

from __future__ import annotations

import shutil
import time
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
from visionloop.storage import Project
from visionloop.storage.suggestions import ModelSource, count_suggestions, list_suggestions
from visionloop.storage.users import Role

API = "/api/v1/projects/cells"
SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"
BOUND_S = 300


@dataclass
class Served:
    client: TestClient
    project: Project
    admin: dict[str, str]
    annotator: dict[str, str]
    viewer: dict[str, str]

    def wait(self, job_id: int) -> dict:
        deadline = time.monotonic() + BOUND_S
        while True:
            job = self.client.get(f"{API}/jobs/{job_id}", headers=self.viewer).json()
            if job["state"] in {"done", "failed", "cancelled", "interrupted"}:
                return job
            assert time.monotonic() < deadline, f"job {job_id} is stuck: {job}"
            time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path, detector_package: Path) -> Iterator[Served]:  # noqa: F811
    plain = tmp_path / "plain"
    plain.mkdir()
    for jpg in sorted((SAMPLE / "JPEGImages").glob("*.jpg"))[:3]:  # no annotations: all three are unlabelled
        shutil.copy(jpg, plain / jpg.name)
    with Project.create(tmp_path / "cells", task="detection") as p:
        import_source(p, plain, format="images")
    shutil.copytree(detector_package, tmp_path / "cells" / "packages" / "detector")
    with TestClient(create_app(tmp_path / "cells", settings=Settings(job_threads=1))) as client:
        project = client.app.state.projects.get("cells")
        yield Served(client, project, *(bearer_headers(project, r) for r in (Role.ADMIN, Role.ANNOTATOR,
                                                                               Role.VIEWER)))


def test_preannotate_job_then_suggestions_and_predictions_from_them(served: Served) -> None:
    c, admin, viewer = served.client, served.admin, served.viewer
    missing = c.post(f"{API}/preannotate", json={}, headers=admin)
    assert missing.status_code == 404 and "deploy a package first" in missing.json()["detail"]
    assert c.get(f"{API}/images/1/suggestions", headers=viewer).status_code == 404  # nothing deployed
    c.post(f"{API}/deployment", json={"package": "detector"}, headers=admin).raise_for_status()
    live = c.get(f"{API}/images/1/predictions", headers=viewer).raise_for_status().json()
    assert live["detections"], "the detector found nothing: the test shows nothing"
    none_yet = c.get(f"{API}/images/1/suggestions", headers=viewer)
    assert none_yet.status_code == 404 and "pre-annotate" in none_yet.json()["detail"]

    queued = c.post(f"{API}/preannotate", json={"limit": 2}, headers=admin)
    assert queued.status_code == 202, queued.text
    assert queued.json()["kind"] == "preannotate" and queued.json()["params"] == {
        "only_unlabelled": True, "limit": 2, "package": "detector"}
    job = served.wait(queued.json()["id"])
    assert job["state"] == "done", job
    assert (job["result"]["stored"], job["result"]["candidates"]) == (2, 3)
    assert job["progress"]["fraction"] == 1.0
    assert count_suggestions(served.project, (ModelSource.PACKAGE, "detector")) == 2

    s = c.get(f"{API}/images/1/suggestions", headers=viewer).raise_for_status().json()
    assert (s["image_id"], s["source"], s["model"]) == (1, "package", "detector")
    assert s["thresholds"]["score"] == 0.0 and len(s["version"]) == 64
    stored = list_suggestions(served.project, (ModelSource.PACKAGE, "detector"), image_ids=[1])[0]
    assert s["prediction"] == stored.payload
    # The predictions route answers from the suggestion: the same boxes as the live model (threshold 0 both ways).
    fast = c.get(f"{API}/images/1/predictions", headers=viewer).raise_for_status().json()
    assert fast == live
    assert c.get(f"{API}/images/3/suggestions", headers=viewer).status_code == 404  # past the limit
    assert c.get(f"{API}/images/99/suggestions", headers=viewer).status_code == 404

    resumed = served.wait(c.post(f"{API}/preannotate", json={"package": "detector"}, headers=admin).json()["id"])
    assert (resumed["result"]["skipped"], resumed["result"]["stored"]) == (2, 1)
    assert c.get(f"{API}/images/3/suggestions", headers=viewer).status_code == 200


def test_bad_requests_are_refused_before_a_job_is_queued(served: Served) -> None:
    c, admin = served.client, served.admin
    assert c.post(f"{API}/preannotate", json={"package": "nope"}, headers=admin).status_code == 404
    assert c.post(f"{API}/preannotate", json={"run": "nope"}, headers=admin).status_code == 404
    both = c.post(f"{API}/preannotate", json={"package": "detector", "run": "latest"}, headers=admin)
    assert both.status_code == 409 and "not both" in both.json()["detail"]
    assert c.post(f"{API}/preannotate", json={"limit": 0}, headers=admin).status_code == 422
    assert c.get(f"{API}/jobs", headers=admin).json() == []


def test_who_may_call_what(served: Served) -> None:
    c = served.client
    assert c.post(f"{API}/preannotate", json={"package": "detector"}).status_code == 401
    assert c.get(f"{API}/images/1/suggestions").status_code == 401
    for weak in (served.viewer, served.annotator):
        assert c.post(f"{API}/preannotate", json={"package": "detector"}, headers=weak).status_code == 403
    assert c.get(f"{API}/images/1/suggestions", headers=served.viewer).status_code == 404  # allowed; none deployed
