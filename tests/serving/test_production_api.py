"""The production routes of the project API: a model server's sample becomes an image with its prediction as the
suggestion, a row and a ``prediction.flagged`` event; a retry is stored once; bad samples are clear 4xx; the list
filters; a reviewer accepts a prediction as the image's approved annotation. Who may call what: 401 without
credentials, 403 for a role too weak."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from tests.conftest import make_image_bytes
from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.server import ServerThread
from visionloop.storage import Project
from visionloop.storage.events import EventKind, EventRow
from visionloop.storage.production import count_production_samples, list_production_samples
from visionloop.storage.suggestions import ModelSource, list_suggestions
from visionloop.storage.users import Role

API = "/api/v1/projects/cells"
CLASSES = ["RBC", "WBC", "Platelets"]


@dataclass
class Served:
    client: TestClient
    project: Project
    annotator: dict[str, str]
    reviewer: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with Project.create(tmp_path / "cells", task="detection") as p:
        for c in CLASSES:
            p.add_class(c)
    with TestClient(create_app(tmp_path / "cells", settings=Settings())) as client:
        project = client.app.state.projects.get("cells")
        yield Served(client, project, *(bearer_headers(project, r) for r in (Role.ANNOTATOR, Role.REVIEWER,
                                                                               Role.VIEWER)))


def detections(width: int, height: int, *boxes: tuple[int, str, float, list[float]]) -> dict[str, Any]:
    return {"task": "detection", "width": width, "height": height,
            "detections": [{"xyxy": xyxy, "class_id": cid, "name": n, "score": s} for cid, n, s, xyxy in boxes]}


def sample_json(prediction: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "model": "detector", "package_version": "0123456789ab",
            "model_sha256": "ab" * 32, "predicted_at": datetime.now(UTC).isoformat(),
            "samplers": [{"name": "low_confidence", "score": 0.7, "why": "WBC scores 0.3 < 0.5"}], "score": 0.7,
            "random_slice": False, "prediction": prediction, "thresholds": {"score": 0.5, "per_class": {}},
            "server": "edge-1", **kw}


def send(client: TestClient | httpx.Client, data: bytes, sample: dict[str, Any] | str, headers: dict[str, str],
         ) -> httpx.Response:
    text = sample if isinstance(sample, str) else json.dumps(sample)
    return client.post(f"{API}/production", files={"file": ("im.jpg", data, "image/jpeg")},
                       data={"sample": text}, headers=headers)


def test_a_sample_becomes_an_image_a_suggestion_a_row_and_an_event_once(served: Served) -> None:
    c, p = served.client, served.project
    data = make_image_bytes(80, 60, seed=1)
    pred = detections(80, 60, (2, "WBC", 0.3, [10, 10, 30, 30]), (1, "RBC", 0.9, [40, 5, 70, 50]))
    body = sample_json(pred)
    first = send(c, data, body, served.annotator)
    assert first.status_code == 201, first.text
    got = first.json()
    assert got["samplers"][0]["why"] == "WBC scores 0.3 < 0.5" and got["review_state"] == "todo"
    again = send(c, data, body, served.annotator)  # a retry after a lost answer
    assert again.status_code == 200 and again.json() == got
    assert count_production_samples(p) == 1 and p.count_images() == 1
    image = p.image(got["image_id"])
    assert image.name == f"production/detector/{body['request_id']}.jpeg" and (image.width, image.height) == (80, 60)
    [s] = list_suggestions(p, (ModelSource.PACKAGE, "detector"))
    assert s.image_id == got["image_id"] and s.payload == pred and s.ref.version == "ab" * 32
    with p.engine.connect() as conn:
        [event] = conn.execute(select(EventRow).where(EventRow.kind == EventKind.PREDICTION_FLAGGED.value)).all()
    assert event.payload["request_id"] == body["request_id"] and event.payload["samplers"] == ["low_confidence"]

    # the same image sent by another request: one image, two samples
    other = send(c, data, sample_json(pred, random_slice=True, samplers=[{"name": "random"}]), served.annotator)
    assert other.status_code == 201 and other.json()["image_id"] == got["image_id"]
    assert p.count_images() == 1 and count_production_samples(p) == 2


def test_filters_order_and_accept(served: Served) -> None:
    c, p = served.client, served.project
    pred = detections(64, 48, (2, "WBC", 0.8, [5, 5, 20, 20]), (3, "Platelets", 0.2, [30, 30, 40, 40]))
    ids = []
    for i, names in enumerate((["low_confidence"], ["random", "classes"], ["classes"])):
        body = sample_json(pred, samplers=[{"name": n} for n in names], random_slice="random" in names,
                           model="detector" if i < 2 else "other")
        ids.append(send(c, make_image_bytes(seed=10 + i), body, served.annotator).json()["id"])
    listed = c.get(f"{API}/production", headers=served.viewer).json()
    assert listed["total"] == 3 and [s["id"] for s in listed["items"]] == ids  # oldest first

    def query(**params: Any) -> list[int]:
        r = c.get(f"{API}/production", params=params, headers=served.viewer)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert query(sampler="classes") == ids[1:]
    assert query(sampler="class") == []  # whole names only
    assert query(model="other") == ids[2:]
    assert query(random_slice=True) == ids[1:2]
    assert query(newest_first=True, limit=1) == ids[-1:]

    # a reviewer accepts the first as is (the package's threshold 0.5 leaves the platelet out)
    assert c.post(f"{API}/production/{ids[0]}/accept", json={}, headers=served.annotator).status_code == 403
    ok = c.post(f"{API}/production/{ids[0]}/accept", json={"base_revision": None}, headers=served.reviewer)
    assert ok.status_code == 200, ok.text
    image_id = ok.json()["image_id"]
    head = c.get(f"{API}/images/{image_id}", headers=served.viewer).json()
    assert head["review_state"] == "approved"
    rev, ann = p.head(image_id)
    assert rev == ok.json()["revision"] == 1 and ann.class_id.tolist() == [p.ontology().by_name("WBC").id]
    assert ann.score is None and p.history(image_id)[-1].author == "reviewer-user"
    assert query(reviewed=True) == ids[:1] and query(reviewed=False) == ids[1:]
    stale = c.post(f"{API}/production/{ids[0]}/accept", json={"base_revision": None}, headers=served.reviewer)
    assert stale.status_code == 409  # the head moved since: nothing overwritten
    assert c.get(f"{API}/production/{ids[1]}", headers=served.viewer).json()["samplers"] == [
        {"name": "random", "score": None, "why": ""}, {"name": "classes", "score": None, "why": ""}]
    assert c.get(f"{API}/production/999", headers=served.viewer).status_code == 404

    # the second is corrected (here through the API, as the editor saves) and approved as it is now
    not_yet = c.post(f"{API}/production/{ids[1]}/approve", headers=served.reviewer)
    assert not_yet.status_code == 409 and "correct it in the editor" in not_yet.json()["detail"]
    second = p.image(c.get(f"{API}/production/{ids[1]}", headers=served.viewer).json()["image_id"])
    fixed = {"type": "boxes", "xyxy": [[1, 1, 9, 9]], "class_id": [p.ontology().by_name("RBC").id]}
    c.put(f"{API}/images/{second.id}/annotation", json={"base_revision": None, "payload": fixed},
          headers=served.annotator).raise_for_status()
    assert c.post(f"{API}/production/{ids[1]}/approve", headers=served.annotator).status_code == 403
    done = c.post(f"{API}/production/{ids[1]}/approve", headers=served.reviewer)
    assert done.status_code == 200 and done.json() == {"image_id": second.id, "revision": 1,
                                                       "review_state": "approved"}
    assert query(reviewed=False) == ids[2:]


def test_bad_samples_are_clear_4xx_and_store_nothing(served: Served) -> None:
    c, p = served.client, served.project
    data = make_image_bytes(64, 48)
    pred = detections(64, 48, (1, "RBC", 0.9, [1, 1, 9, 9]))
    cases = [
        (data, "{not json", 422, "sample"),
        (data, sample_json(pred, request_id="../x"), 422, "request_id"),
        (data, sample_json(pred, typo=1), 422, "typo"),
        (data, sample_json(pred, score=3), 422, "score"),
        (data, sample_json(detections(65, 48)), 422, "65x48 for an image of 64x48"),
        (data, sample_json({"task": "classification", "width": 64, "height": 48, "label": None}), 422,
         "classification for a detection project"),
        (data, sample_json({"width": 64}), 422, "sample.prediction"),
        (b"not an image", sample_json(pred), 422, "not an image"),
    ]
    for image, body, code, expected in cases:
        r = send(c, image, body, served.annotator)
        assert r.status_code == code and expected in r.text, (expected, r.status_code, r.text)
    no_file = c.post(f"{API}/production", data={"sample": json.dumps(sample_json(pred))}, headers=served.annotator)
    assert no_file.status_code == 422
    assert p.count_images() == 0 and count_production_samples(p) == 0


def test_who_may_send_and_read(served: Served) -> None:
    c = served.client
    data, body = make_image_bytes(64, 48), sample_json(detections(64, 48))
    assert send(c, data, body, {}).status_code == 401
    assert send(c, data, body, served.viewer).status_code == 403
    assert c.get(f"{API}/production").status_code == 401
    assert c.post(f"{API}/production/1/accept", json={}).status_code == 401
    assert c.post(f"{API}/production/1/approve").status_code == 401
    assert c.get(f"{API}/production/1").status_code == 401
    assert c.get(f"{API}/production", headers=served.viewer).status_code == 200


def test_real_bccd_image_over_http_and_the_body_cap(tmp_path: Path, bccd_dir: Path) -> None:
    """Over a real server: a BCCD image with a prediction in its pixels; a body over ``api_max_body_bytes`` is a 413
    and stores nothing."""
    jpg = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))[0]
    w, h = Image.open(jpg).size
    with Project.create(tmp_path / "cells", task="detection") as p:
        for name in CLASSES:
            p.add_class(name)
        headers = bearer_headers(p, Role.ANNOTATOR, user="edge-server")
    data = jpg.read_bytes()
    with ServerThread(tmp_path / "cells", settings=Settings(api_max_body_bytes=len(data) + 64 * 1024)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        pred = detections(w, h, (2, "WBC", 0.45, [100, 100, 200, 220]))
        r = send(client, data, sample_json(pred), headers)
        assert r.status_code == 201, r.text
        big = data + b"\0" * (128 * 1024)
        r = send(client, big, sample_json(pred), headers)
        assert r.status_code == 413, r.text
    with Project.open(tmp_path / "cells") as p:
        assert [s.image_id for s in list_production_samples(p)] == [1] and p.count_images() == 1
