"""Assisted segmentation over the project API: real DSB2018 images, every method (the operator's ONNX model a
random-weight one of SAM's contract), refinement with the previous mask, a huge image read in part, bounded input
with clear 4xx answers, and roles (401 without credentials, 403 for a viewer)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.inference.assist_models import export_sam_like
from tests.serving.conftest import bearer_headers
from visionloop.core.annotations import RLE, Instances
from visionloop.core.settings import Settings
from visionloop.inference.assist.simulate import centre_click, iou
from visionloop.ingest import import_source
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import Project
from visionloop.storage.users import Role

API = "/api/v1/projects/nuclei"
EMPTY_10 = RLE.encode(np.zeros((10, 10), bool)).counts
DSB_SAMPLE = 4
"""A fluorescence image of DSB2018 (256x256, in sorted order)."""


@dataclass
class Served:
    client: TestClient
    project: Project
    image: int
    huge: int
    truth: Instances
    annotator: dict[str, str]
    viewer: dict[str, str]


@pytest.fixture(scope="module")
def served(dsb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("assist")
    sample = sorted((dsb_dir / "stage1_train").iterdir())[DSB_SAMPLE]
    shutil.copytree(sample, root / "dsb" / sample.name)
    big = np.full((4200, 5000, 3), 30, np.uint8)
    yy, xx = np.mgrid[:4200, :5000]
    big[(xx - 4300) ** 2 + (yy - 3500) ** 2 <= 60**2] = (220, 200, 60)
    (root / "big").mkdir()
    Image.fromarray(big).save(root / "big" / "huge.png")
    encoder, decoder = export_sam_like(root / "sam")
    with Project.create(root / "projects" / "nuclei", task="segmentation") as p:
        import_source(p, root / "dsb", progress=False)
        import_source(p, root / "big", format="images", progress=False)
    settings = Settings(assist_onnx_encoder=str(encoder), assist_onnx_decoder=str(decoder), assist_max_clicks=6,
                        assist_image_cache=1)
    with TestClient(create_app(root / "projects", settings=settings)) as client:
        project = client.app.state.projects.get("nuclei")
        ids = {im.name.split("/")[-1]: im.id for im in project.images()}
        image = next(i for n, i in ids.items() if n != "huge.png")
        truth = project.head(image)[1]
        yield Served(client, project, image, ids["huge.png"], truth, bearer_headers(project, Role.ANNOTATOR),
                     bearer_headers(project, Role.VIEWER))


def nucleus(served: Served, i: int) -> np.ndarray:
    return served.truth.mask(i, 256, 256)


def test_the_methods_list_onnx_only_when_the_operator_set_a_model(served: Served, tmp_path: Path) -> None:
    c = served.client
    listed = c.get(f"{API}/assist/methods", headers=served.viewer).json()
    assert [m["name"] for m in listed] == ["grabcut", "slic", "felzenszwalb", "onnx"]
    assert [m["name"] for m in listed if m["default"]] == ["grabcut"] and [m["model"] for m in listed][-1]
    assert c.get(f"{API}/assist/methods").status_code == 401
    (tmp_path / "p").mkdir()
    with Project.create(tmp_path / "p" / "plain", task="segmentation") as plain:
        headers = bearer_headers(plain, Role.VIEWER)
    with TestClient(create_app(tmp_path / "p", settings=Settings())) as other:
        names = [m["name"] for m in other.get("/api/v1/projects/plain/assist/methods", headers=headers).json()]
    assert names == ["grabcut", "slic", "felzenszwalb"]


@pytest.mark.parametrize("method", ["grabcut", "slic", "felzenszwalb"])
def test_a_click_on_a_real_nucleus_gives_its_mask(served: Served, method: str) -> None:
    truth = nucleus(served, 0)
    click = centre_click(truth)
    r = served.client.post(f"{API}/images/{served.image}/assist", headers=served.annotator,
                           json={"method": method, "points": [{"x": click.x, "y": click.y}]})
    assert r.status_code == 200, r.text
    body = r.json()
    mask = RLE(tuple(body["rle"]["size"]), body["rle"]["counts"]).decode()
    assert mask.shape == (256, 256) and body["area"] == int(mask.sum()) and body["method"] == method
    assert iou(mask, truth) > 0.5, iou(mask, truth)
    decoded = served.client.app.state.assist.images
    assert decoded.entries == 1 and len(decoded) == 1  # Settings.assist_image_cache; decoded once for every method
    ring = np.asarray(body["polygon"]).reshape(-1, 2)
    x1, y1, x2, y2 = body["bbox"]
    assert len(ring) >= 3 and x1 - 0.5 <= ring[:, 0].min() and ring[:, 0].max() <= x2 + 0.5
    assert y1 - 0.5 <= ring[:, 1].min() and ring[:, 1].max() <= y2 + 0.5


def test_a_box_and_then_refining_clicks_with_the_previous_mask(served: Served) -> None:
    c = served.client
    truth = nucleus(served, 1)
    ys, xs = np.nonzero(truth)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    first = c.post(f"{API}/images/{served.image}/assist", headers=served.annotator, json={"box": box}).json()
    assert iou(RLE(tuple(first["rle"]["size"]), first["rle"]["counts"]).decode(), truth) > 0.6
    again = c.post(f"{API}/images/{served.image}/assist", headers=served.annotator, json={
        "box": box, "previous_rle": first["rle"],
        "points": [{"x": (box[0] + box[2]) / 2, "y": (box[1] + box[3]) / 2, "positive": True}]})
    assert again.status_code == 200, again.text
    assert iou(RLE(tuple(again.json()["rle"]["size"]), again.json()["rle"]["counts"]).decode(), truth) > 0.6


def test_the_operators_onnx_model_answers_through_the_api(served: Served) -> None:
    r = served.client.post(f"{API}/images/{served.image}/assist", headers=served.annotator,
                           json={"method": "onnx", "points": [{"x": 100, "y": 60}]})
    assert r.status_code == 200, r.text
    x1, y1, x2, y2 = r.json()["bbox"]
    assert abs((x1 + x2) / 2 - 100) <= 1.5 and abs((y1 + y2) / 2 - 60) <= 1.5  # the random model's disc


def test_a_huge_image_is_read_round_the_prompt_and_answered_in_its_pixels(served: Served) -> None:
    r = served.client.post(f"{API}/images/{served.huge}/assist", headers=served.annotator,
                           json={"points": [{"x": 4300, "y": 3500}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bbox"] == pytest.approx([4240, 3440, 4361, 3561], abs=2) and body["rle"]["size"] == [4200, 5000]
    mask = RLE(tuple(body["rle"]["size"]), body["rle"]["counts"]).decode()
    assert mask[3500, 4300] and mask.sum() == body["area"] and abs(body["area"] - np.pi * 60**2) < 0.05 * np.pi * 3600
    ring = np.asarray(body["polygon"]).reshape(-1, 2)
    assert np.allclose(ring.mean(axis=0), [4300.5, 3500.5], atol=3)


def test_roles_an_annotator_may_ask_a_viewer_may_not(served: Served) -> None:
    url = f"{API}/images/{served.image}/assist"
    body = {"points": [{"x": 10, "y": 10}]}
    assert served.client.post(url, json=body).status_code == 401
    refused = served.client.post(url, json=body, headers=served.viewer)
    assert refused.status_code == 403 and "annotator" in refused.text


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"box": [10, 10, 300, 50]}, 400, "box: expected xyxy inside the 256x256 image"),
    ({"points": [{"x": 10, "y": 10, "positive": False}]}, 400, "a box or at least one positive click"),
    ({"points": [{"x": 10, "y": 10}] * 7}, 400, "clicks: expected at most 6"),
    ({"points": [{"x": -1, "y": 10}]}, 400, "click 0: expected a point inside the 256x256 image"),
    ({"points": [{"x": 10, "y": 10}], "previous_rle": {"size": [10, 10], "counts": EMPTY_10}}, 400,
     "previous_rle.size: expected [256, 256]"),
    ({"points": [{"x": 10, "y": 10}], "previous_rle": {"size": [256, 256], "counts": "~~"}}, 422, "RLE.counts"),
    ({"points": [{"x": 10, "y": 10}], "method": "watershed"}, 404, "known: grabcut, slic, felzenszwalb, onnx"),
    ({"box": [1, 2, 3]}, 422, "box"),
    ({"points": [{"x": 1, "y": 1}] * 1001}, 422, "points"),
])
def test_bad_input_gets_a_clear_4xx(served: Served, body: dict, status: int, says: str) -> None:
    r = served.client.post(f"{API}/images/{served.image}/assist", headers=served.annotator, json=body)
    assert r.status_code == status and says in r.text, r.text


def test_an_unknown_image_is_404(served: Served) -> None:
    r = served.client.post(f"{API}/images/999999/assist", headers=served.annotator, json={"box": [1, 1, 9, 9]})
    assert r.status_code == 404 and "image" in r.json()["detail"]
