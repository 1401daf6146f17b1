"""Similarity routes over the project API with real credentials and real BCCD embeddings."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.models.embed import embed_project, load_embedder
from visionloop.serving.jobs.kinds import get_kind
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import Project
from visionloop.storage.jobs import get_job
from visionloop.storage.users import Role

API = "/api/v1"
pytestmark = pytest.mark.slow  # a backbone embeds real images; the CI subset is marked ci


@dataclass
class Served:
    client: TestClient
    project: Project
    bare: Project
    ids: dict[str, int]


@pytest.fixture(scope="module")
def served(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("similar-api")
    src = tmp / "src"
    src.mkdir()
    for i in range(4):
        name = f"BloodImage_0000{i}.jpg"
        (src / name).write_bytes((bccd_dir / "BCCD" / "JPEGImages" / name).read_bytes())
    im = Image.open(src / "BloodImage_00002.jpg")
    buf = io.BytesIO()
    im.resize((im.width // 2, im.height // 2)).save(buf, "JPEG", quality=80)
    (src / "copy.jpg").write_bytes(buf.getvalue())
    project = Project.create(tmp / "projects" / "cells", task="detection")
    bare = Project.create(tmp / "projects" / "bare", task="detection")
    for p in (project, bare):
        import_source(p, src, format="images")
    embed_project(project, load_embedder())
    with TestClient(create_app(tmp / "projects", settings=Settings())) as client:
        yield Served(client, project, bare, {im.name: im.id for im in project.images()})
    project.close()
    bare.close()


@pytest.mark.ci
def test_more_like_this_finds_the_copy_first(served: Served) -> None:
    viewer = bearer_headers(served.project, Role.VIEWER)
    original = served.ids["BloodImage_00002.jpg"]
    r = served.client.get(f"{API}/projects/cells/images/{original}/similar", params={"k": 3}, headers=viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"id": original, "name": "BloodImage_00002.jpg"} and body["method"] == "exact"
    assert [h["id"] for h in body["results"]][0] == served.ids["copy.jpg"] and len(body["results"]) == 3
    assert original not in [h["id"] for h in body["results"]]
    assert body["results"][0]["score"] >= body["results"][1]["score"]


@pytest.mark.ci
def test_duplicates_and_stored_sets(served: Served) -> None:
    viewer = bearer_headers(served.project, Role.VIEWER)
    r = served.client.get(f"{API}/projects/cells/duplicates", headers=viewer)
    assert r.status_code == 200, r.text
    near = r.json()["near"]
    assert [g["ids"] for g in near] == [sorted([served.ids["BloodImage_00002.jpg"], served.ids["copy.jpg"]])]
    assert {i["name"] for i in near[0]["images"]} == {"BloodImage_00002.jpg", "copy.jpg"} and r.json()["exact"] == []
    sets = served.client.get(f"{API}/projects/cells/embeddings", headers=viewer).json()
    assert sets == [{"backbone": "tf_efficientnet_lite0", "kind": "images", "count": 5, "dim": 1280}]


@pytest.mark.ci
def test_without_embeddings_the_answer_is_409_saying_to_run_the_embed_job(served: Served) -> None:
    viewer = bearer_headers(served.bare, Role.VIEWER)
    first = served.bare.images()[0].id
    for url in (f"{API}/projects/bare/images/{first}/similar", f"{API}/projects/bare/duplicates"):
        r = served.client.get(url, headers=viewer)
        assert r.status_code == 409, r.text
        assert "embed job" in r.json()["detail"] and "/projects/bare/embeddings" in r.json()["detail"]
    assert served.client.get(f"{API}/projects/bare/embeddings", headers=viewer).json() == []


@pytest.mark.ci
def test_bounds_and_roles(served: Served) -> None:
    c = served.client
    viewer = bearer_headers(served.project, Role.VIEWER)
    image = served.ids["copy.jpg"]
    for k in (0, 101):
        assert c.get(f"{API}/projects/cells/images/{image}/similar", params={"k": k}, headers=viewer).status_code == 422
    bad = c.get(f"{API}/projects/cells/duplicates", params={"backbone": "../x"}, headers=viewer)
    assert bad.status_code == 422
    assert c.get(f"{API}/projects/cells/images/999999/similar", headers=viewer).status_code == 404
    for method, url in (("GET", f"images/{image}/similar"), ("GET", "duplicates"), ("GET", "embeddings"),
                        ("POST", "embeddings")):
        kw = {"json": {}} if method == "POST" else {}
        assert c.request(method, f"{API}/projects/cells/{url}", **kw).status_code == 401
    for role in (Role.VIEWER, Role.ANNOTATOR, Role.REVIEWER):
        r = c.post(f"{API}/projects/bare/embeddings", json={}, headers=bearer_headers(served.bare, role))
        assert r.status_code == 403 and "needs the admin role" in r.json()["detail"]


def test_an_admin_queues_the_embed_job_which_makes_the_search_work(served: Served) -> None:
    c = served.client
    admin = bearer_headers(served.bare, Role.ADMIN)
    r = c.post(f"{API}/projects/bare/embeddings", json={"backbone": "mobilenet_v2"}, headers=admin)
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "embed" and r.json()["params"] == {"backbone": "mobilenet_v2"}
    step = get_kind("embed").steps(served.bare, get_job(served.bare, r.json()["id"]))[0]
    assert step.args[:1] == ["embed"] and step.args[-3:] == ["--backbone", "mobilenet_v2", "--json"]
    deadline = time.monotonic() + 600
    while (job := c.get(f"{API}/projects/bare/jobs/{r.json()['id']}", headers=admin).json())["state"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job["state"] == "done", job
    images = job["result"]["sets"][0]
    assert (images["kind"], images["count"], images["dim"]) == ("images", 5, 1280)
    copy = next(im.id for im in served.bare.images() if im.name == "copy.jpg")
    hit = c.get(f"{API}/projects/bare/images/{copy}/similar", params={"k": 1, "backbone": "mobilenet_v2"},
                headers=admin).json()["results"][0]
    assert hit["name"] == "BloodImage_00002.jpg"
