"""``GET /api/v1/projects/{project}/next`` over real HTTP: who may ask, the deployed model's order, the bounded
pool, missing embeddings; and a batch made from the answer's ids hands the images out in that order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.active.colour_project import CLASSES, colour_project
from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.server import ServerThread
from visionloop.storage import Project
from visionloop.storage.users import Role

API = "/api/v1/projects/colours"
LOOKS = ["red", "grey", "yellow", "blue", "grey", "pinkish", "green", "yellow"]


@dataclass
class Served:
    http: httpx.Client
    project: Project
    headers: dict[Role, dict[str, str]]


def _serve(root: Path, settings: Settings) -> Iterator[Served]:
    with ServerThread(root, settings=settings) as server, httpx.Client(base_url=server.url, timeout=120) as http, \
            Project.open(root) as p:
        yield Served(http, p, {r: bearer_headers(p, r) for r in Role})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    colour_project(tmp_path / "colours", LOOKS, labelled={0: "red"}).close()
    yield from _serve(tmp_path / "colours", Settings())


def test_reviewers_may_ask_and_others_may_not(served: Served) -> None:
    assert served.http.get(f"{API}/next").status_code == 401
    for role in (Role.VIEWER, Role.ANNOTATOR):
        r = served.http.get(f"{API}/next", headers=served.headers[role])
        assert r.status_code == 403, (role, r.text)
    for role in (Role.REVIEWER, Role.ADMIN):
        assert served.http.get(f"{API}/next", headers=served.headers[role]).status_code == 200


def test_the_deployed_model_orders_the_pool(served: Served) -> None:
    r = served.http.get(f"{API}/next", params={"n": 4, "strategy": "least_confidence", "diversity": "none"},
                        headers=served.headers[Role.REVIEWER])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"source": "deployed", "name": "colour"} and body["pool"] == 7 and not body["cold_start"]
    assert [x["name"] for x in body["results"]] == ["1-grey.png", "4-grey.png", "2-yellow.png", "7-yellow.png"]
    auto = served.http.get(f"{API}/next", params={"n": 3}, headers=served.headers[Role.REVIEWER]).json()
    assert auto["strategy"] == "entropy" and auto["diversity"] == "cluster" and len(auto["results"]) == 3
    for bad in ({"strategy": "bald"}, {"n": 0}, {"n": 1001}, {"diversity": "x"}, {"backbone": "../x"}):
        assert served.http.get(f"{API}/next", params=bad, headers=served.headers[Role.ADMIN]).status_code == 422


def test_a_batch_from_the_answer_hands_images_out_in_its_order(served: Served) -> None:
    admin, annotator = served.headers[Role.ADMIN], served.headers[Role.ANNOTATOR]
    ranked = served.http.get(f"{API}/next", params={"n": 5, "strategy": "least_confidence", "diversity": "none"},
                             headers=admin).json()["results"]
    ids = [x["id"] for x in ranked]
    assert ids != sorted(ids)  # not id order
    made = served.http.post(f"{API}/work/batches", json={"name": "al-1", "annotators": ["annotator-user"],
                                                         "image_ids": ids}, headers=admin)
    assert made.status_code == 201, made.text
    handed = []
    red = served.project.class_ids(CLASSES)["red"]
    for _ in ids:
        item = served.http.get(f"{API}/work/next", headers=annotator).json()["item"]
        handed.append(item["image"]["id"])
        done = served.http.post(f"{API}/work/{item['item']}/submit", headers=annotator,
                                json={"annotation": {"type": "label", "class_id": red}, "base_revision": None})
        assert done.status_code == 200, done.text
    assert handed == ids
    # the batch's images are in open work (and now labelled): the next ranking leaves them out
    again = served.http.get(f"{API}/next", params={"n": 10, "diversity": "none"}, headers=admin).json()
    assert again["pool"] == 2 and not {x["id"] for x in again["results"]} & set(ids)


def test_missing_embeddings_name_the_embed_job(tmp_path: Path) -> None:
    colour_project(tmp_path / "colours", LOOKS, embed=False).close()
    for s in _serve(tmp_path / "colours", Settings()):
        r = s.http.get(f"{API}/next", params={"n": 2}, headers=s.headers[Role.REVIEWER])
        detail = r.json()["detail"]
        assert r.status_code == 409 and "POST /api/v1/projects/colours/embeddings" in detail, r.text
        assert str(tmp_path) not in detail and "visionloop embed" not in detail  # no server path, no shell advice
        plain = s.http.get(f"{API}/next", params={"diversity": "none", "n": 2}, headers=s.headers[Role.REVIEWER])
        assert plain.status_code == 200 and len(plain.json()["results"]) == 2


def test_a_request_scores_at_most_the_configured_pool(tmp_path: Path) -> None:
    colour_project(tmp_path / "colours", LOOKS, deploy=False).close()
    for s in _serve(tmp_path / "colours", Settings(active_max_pool=3)):
        body = s.http.get(f"{API}/next", params={"n": 2}, headers=s.headers[Role.REVIEWER]).json()
        assert body["cold_start"] and body["strategy"] == "typiclust" and body["model"] is None
        assert body["pool"] == 8 and body["considered"] == 3 and len(body["results"]) == 2
        assert any("random sample of 3 of the 8" in note for note in body["notes"])
