"""``GET /projects/{p}/health`` and the image-list filters its bars link to (box size and aspect bins, folders), on
SQLite and on PostgreSQL: every figure checked against the boxes and states the test wrote, every bin's link against
the images that really have a box in it."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import fresh_postgres_database
from tests.serving.conftest import bearer_headers
from visionloop.core.annotations import Boxes, Label
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import NewImage, Project
from visionloop.storage.health import ASPECT_EDGES, SIZE_EDGES
from visionloop.storage.label_issues import (
    NewLabelIssue,
    list_label_issues,
    save_label_issue_run,
    set_label_issue_state,
)
from visionloop.storage.review import set_review_state
from visionloop.storage.users import Role

API = "/api/v1"


@dataclass
class Data:
    client: TestClient
    project: Project
    other: Project
    boxes: dict[int, np.ndarray]  # image id -> xyxy
    folders: dict[int, str]
    viewer: dict[str, str]


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def data(request, tmp_path_factory) -> Iterator[Data]:
    if request.param == "sqlite":
        yield from _make(tmp_path_factory.mktemp("health-sqlite"), None)
        return
    base = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("no PostgreSQL server: set VISIONLOOP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@127.0.0.1/db")
    with fresh_postgres_database(base, prefix="vl_health") as url:
        yield from _make(tmp_path_factory.mktemp("health-pg"), url)


def _make(tmp, db_url: str | None) -> Iterator[Data]:
    rng = np.random.default_rng(7)
    p = Project.create(tmp / "projects" / "cells", task="detection", db_url=db_url)
    other = Project.create(tmp / "projects" / "other", task="detection")
    ids = p.class_ids(["cell", "dot", "unused"])
    names = [f"{'a' if i % 3 else 'b_%'}/{i}.jpg" if i % 5 else f"{i}.jpg" for i in range(20)]
    added = [image_id for image_id, _ in p.add_images(
        [NewImage(sha256=p.blobs.put(bytes([i]) * 8), width=400, height=300, format="jpeg", name=n)
         for i, n in enumerate(names)])]
    # two frames of a video with the same bytes: one exact-duplicate group
    frames = [image_id for image_id, _ in p.add_images(
        [NewImage(sha256=p.blobs.put(b"frame" * 4), width=400, height=300, format="jpeg", name=f"v/{f}.jpg",
                  video_id="v", frame_index=f) for f in range(2)])]
    folders = {i: (n.split("/")[0] if "/" in n else "/") for i, n in zip(added, names, strict=True)}
    folders.update({f: "v" for f in frames})
    boxes: dict[int, np.ndarray] = {}
    for image_id in added[:14]:  # 6 never annotated
        n = int(rng.integers(1, 6))
        xy = rng.uniform(0, 150, (n, 2))
        wh = np.exp(rng.uniform(np.log(3), np.log(240), (n, 2)))
        xyxy = np.round(np.concatenate([xy, np.minimum(xy + wh, [400, 300])], axis=1), 1)
        boxes[image_id] = xyxy
        p.save_annotation(image_id, Boxes(xyxy, np.array([ids["cell"] if k % 3 else ids["dot"] for k in range(n)])),
                          author="import", base_revision=None)
    set_review_state(p, added[:3], "submitted", author="ann")
    set_review_state(p, added[3:5], "approved", author="rita")
    set_review_state(p, added[5:6], "rejected", author="rita", reason="loose boxes")
    run = save_label_issue_run(p, [NewLabelIssue(image_id=added[k], kind="wrong_class", score=0.9 - k / 10,
                                                 given_class_id=ids["cell"], suggested_class_id=ids["dot"])
                                   for k in range(4)], created_by="ada", method="prune_by_noise_rate")
    first = list_label_issues(p, run_id=run.id).items[0]
    set_label_issue_state(p, [first.id], "dismissed", author="rita")
    viewer = bearer_headers(p, Role.VIEWER, user="vera")
    bearer_headers(other, Role.ADMIN, user="olga")
    with TestClient(create_app(p.root.parent, settings=Settings())) as client:
        yield Data(client, p, other, boxes, folders, viewer)
    p.close()
    other.close()


def _bin_of(value: float, edges: tuple[float, ...]) -> int:
    return next(i for i in range(len(edges) - 1) if value < edges[i + 1])


def test_health_figures_match_what_was_written(data: Data) -> None:
    r = data.client.get(f"{API}/projects/cells/health", headers=data.viewer)
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["images"], d["annotated_images"], d["unlabelled"]) == (22, 14, 8)
    all_boxes = np.concatenate(list(data.boxes.values()))
    w, h = all_boxes[:, 2] - all_boxes[:, 0], all_boxes[:, 3] - all_boxes[:, 1]
    assert d["boxes"] == len(all_boxes)
    sizes = np.bincount([_bin_of(math.sqrt(a), SIZE_EDGES) for a in w * h], minlength=len(SIZE_EDGES) - 1)
    aspects = np.bincount([_bin_of(r, ASPECT_EDGES) for r in w / h], minlength=len(ASPECT_EDGES) - 1)
    assert [b["count"] for b in d["box_sizes"]] == sizes.tolist()
    assert [b["count"] for b in d["box_aspects"]] == aspects.tolist()
    assert d["box_sizes"][-1]["max"] is None and d["box_sizes"][3] == {"min": 32, "max": 64, "count": int(sizes[3])}
    by_class = {c["name"]: c for c in d["classes"]}
    n_dot = sum(math.ceil(len(b) / 3) for b in data.boxes.values())  # boxes 0, 3, ... are dots
    assert by_class["dot"]["objects"] == n_dot and by_class["cell"]["objects"] == len(all_boxes) - n_dot
    assert by_class["dot"]["images"] == 14 and by_class["unused"] == {**by_class["unused"], "objects": 0, "images": 0}
    assert [c["name"] for c in d["classes"]][0] == max(by_class, key=lambda n: by_class[n]["objects"])
    expected_folders = {f: list(data.folders.values()).count(f) for f in set(data.folders.values())}
    assert {f["folder"]: f["images"] for f in d["folders"]} == expected_folders
    assert d["reviews"] == {"todo": 16, "in_progress": 0, "submitted": 3, "approved": 2, "rejected": 1}
    le = d["label_errors"]
    assert le["total"] == 4 and le["states"] == {"open": 3, "fixed": 0, "dismissed": 1}
    assert [t["rank"] for t in le["top"]] == [2, 3, 4] and le["top"][0]["given"] == "cell"
    assert le["top"][0]["suggested"] == "dot"
    assert d["duplicates"]["exact_groups"] == 1 and d["duplicates"]["exact_images"] == 2
    assert d["duplicates"]["embeddings"] == []  # none computed here: the page offers the embed job


def _with_a_box(boxes: dict[int, np.ndarray], test) -> list[int]:
    """Ids of the images with a box for which ``test(w, h)`` holds."""
    return sorted(i for i, xyxy in boxes.items() if np.any(test(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])))


def test_every_bin_links_to_the_images_with_a_box_in_it(data: Data) -> None:
    d = data.client.get(f"{API}/projects/cells/health", headers=data.viewer).json()
    checked = 0
    for key, bins, measure in (("box", d["box_sizes"], lambda w, h: np.sqrt(w * h)),
                               ("aspect", d["box_aspects"], lambda w, h: w / h)):
        for b in bins:
            params = {f"{key}_min": b["min"]} | ({f"{key}_max": b["max"]} if b["max"] is not None else {})
            expected = _with_a_box(data.boxes, lambda w, h, b=b, m=measure: (m(w, h) >= b["min"])
                                   & (m(w, h) < (b["max"] or math.inf)))
            page = data.client.get(f"{API}/projects/cells/images", params={**params, "limit": 100}, headers=data.viewer)
            assert page.status_code == 200, page.text
            assert [i["id"] for i in page.json()["items"]] == expected, (key, b)
            count = data.client.get(f"{API}/projects/cells/images/count", params=params, headers=data.viewer).json()
            assert count["total"] == len(expected)
            checked += bool(expected)
    assert checked >= 6
    # size and aspect together mean one box with both
    both = {"box_min": 32, "box_max": 128, "aspect_min": 2}
    expected = _with_a_box(data.boxes, lambda w, h: (np.sqrt(w * h) >= 32) & (np.sqrt(w * h) < 128) & (w >= 2 * h))
    page = data.client.get(f"{API}/projects/cells/images", params={**both, "limit": 100}, headers=data.viewer).json()
    assert [i["id"] for i in page["items"]] == expected


def test_folder_filter_follows_the_folder_bars(data: Data) -> None:
    for folder in ("a", "b_%", "v", "/"):
        r = data.client.get(f"{API}/projects/cells/images", params={"folder": folder, "limit": 100}, headers=data.viewer)
        assert r.status_code == 200, r.text
        assert [i["id"] for i in r.json()["items"]] == sorted(i for i, f in data.folders.items() if f == folder)
    # the folder name is matched literally: "b_%" is no pattern ("bx" or "b" would match it as one)
    r = data.client.get(f"{API}/projects/cells/images/count", params={"folder": "b"}, headers=data.viewer)
    assert r.json()["total"] == 0


def test_health_needs_a_user_of_the_project_and_bounded_filters(data: Data) -> None:
    c = data.client
    assert c.get(f"{API}/projects/cells/health").status_code == 401
    stranger = bearer_headers(data.other, Role.ADMIN, user="olga")  # an admin elsewhere is nobody here
    assert c.get(f"{API}/projects/cells/health", headers=stranger).status_code == 401
    # every user of the project reads it (viewer is the weakest role); the annotators page's figures are reviewers'
    assert c.get(f"{API}/projects/cells/health", headers=data.viewer).status_code == 200
    assert c.get(f"{API}/projects/cells/annotators", headers=data.viewer).status_code == 403
    assert c.get(f"{API}/projects/cells/annotators/ann/honeypots",
                 headers=bearer_headers(data.project, Role.ANNOTATOR, user="ann")).status_code == 403
    for params in ({"box_min": -1}, {"box_max": 0}, {"aspect_max": 0}, {"folder": "x" * 1025}):
        assert c.get(f"{API}/projects/cells/images", params=params, headers=data.viewer).status_code == 422, params


def test_health_of_a_project_without_boxes(tmp_path) -> None:
    p = Project.create(tmp_path / "projects" / "tags", task="classification")
    cls = p.class_ids(["cat", "dog"])
    [(image_id, _)] = p.add_images([NewImage(sha256=p.blobs.put(b"x" * 8), width=10, height=10, format="png",
                                             name="x.png")])
    p.save_annotation(image_id, Label(cls["dog"]), author="import", base_revision=None)
    headers = bearer_headers(p, Role.VIEWER)
    with TestClient(create_app(p.root.parent, settings=Settings())) as client:
        d = client.get(f"{API}/projects/tags/health", headers=headers).json()
    p.close()
    assert d["boxes"] == 0 and all(b["count"] == 0 for b in d["box_sizes"] + d["box_aspects"])
    assert [(c["name"], c["objects"]) for c in d["classes"]] == [("dog", 1), ("cat", 0)]
    assert d["label_errors"] is None and d["unlabelled"] == 0
