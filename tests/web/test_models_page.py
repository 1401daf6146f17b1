"""From a trained run to predictions in the page: export a package from the run's page (and an int8 one, whose guard
verdict is shown), deploy it on the models page, drop a BCCD image on "try it" and see the boxes drawn on it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.web.api_client import admin_client

SLOW = pytest.mark.slow  # a short detector training on 12 BCCD images, two exports: about four minutes

EPOCHS = 3
IMAGE_SIZE = 320


def _trained_run(url: str, project: str) -> str:
    """Train through the API (version, then a run) and wait for its job; returns the run id."""
    with admin_client(url) as client:
        version = client.post(f"/projects/{project}/versions", json={}).raise_for_status().json()["name"]
        job = client.post(f"/projects/{project}/runs", json={"version": version, "epochs": EPOCHS,
                                                              "image_size": IMAGE_SIZE}).raise_for_status().json()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            job = client.get(f"/projects/{project}/jobs/{job['id']}").raise_for_status().json()
            if job["state"] not in ("queued", "running"):
                break
            time.sleep(1)
        assert job["state"] == "done", job
        return job["result"]["run"]


@pytest.fixture(scope="module")
def run_id(served) -> str:
    return _trained_run(served.url, served.name)


@SLOW
def test_export_deploy_and_try_an_image(page, served, run_id, bccd_dir: Path, shot) -> None:
    page.goto(f"{served.url}/#/p/{served.name}/runs/{run_id}")
    page.click("#export-start")
    result = page.wait_for_selector(".package-result", timeout=300_000)
    assert "is ready" in result.inner_text()

    page.check("#export-int8")
    page.click("#export-start")
    verdict = page.wait_for_selector("#int8-verdict", timeout=300_000)
    text = verdict.inner_text()
    assert ("int8 kept" in text or "int8 refused" in text) and "drop" in text
    shot(page, "run-exported")

    page.goto(f"{served.url}/#/p/{served.name}/models")
    row = page.locator("#packages tbody tr").first
    row.locator("button.deploy").click()
    page.wait_for_selector("#packages tr.deployed .badge")
    assert page.locator("#packages tr.deployed").count() == 1

    image = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))[0]
    page.set_input_files("#try-file", str(image))
    summary = page.wait_for_selector("#try-summary", timeout=120_000)
    prediction = json.loads(page.text_content("#try-json"))
    assert prediction["task"] == "detection" and prediction["width"] == 640
    boxes = prediction["detections"]
    assert boxes, "the model found nothing on a BCCD image"
    assert f"{len(boxes)} objects" in summary.inner_text()
    # the boxes are drawn: pixels of the first box's class colour, which all go when the score filter hides every box
    with admin_client(served.url) as client:
        colours = {c["id"]: c["colour"] for c in client.get(f"/projects/{served.name}/classes").json()}
    colour = colours[boxes[0]["class_id"]]
    count = """(hex) => {
        const c = document.querySelector('.prediction-canvas');
        const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i] === want[0] && data[i + 1] === want[1] && data[i + 2] === want[2]) n += 1;
        }
        return [c.width, c.height, n];
    }"""
    width, height, drawn = page.evaluate(count, colour)
    assert (width, height) == (640, 480)
    x1, y1, x2, y2 = boxes[0]["xyxy"]
    assert drawn >= (x2 - x1) + (y2 - y1)  # a quarter of the first box's 2 px outline at least
    shot(page, "models-try")
    page.fill("#try-min-score", "1")
    assert page.evaluate(count, colour)[2] < drawn / 10
    assert "nothing found" in page.inner_text("#try-summary") or max(b["score"] for b in boxes) >= 1


def test_masks_are_drawn_where_pycocotools_puts_them(page) -> None:
    """The page decodes COCO compressed RLE itself: every pixel pycocotools sets is painted, and no other."""
    rng = np.random.default_rng(0)
    height, width = 60, 90
    masks = []
    for _ in range(2):
        m = np.zeros((height, width), np.uint8)
        for _box in range(4):
            y, x = rng.integers(0, height - 5), rng.integers(0, width - 5)
            m[y:y + rng.integers(3, 30), x:x + rng.integers(3, 40)] = 1
        masks.append(m)
    masks[1][masks[0] == 1] = 0  # semantic segments do not overlap
    segments = [{"class_id": i + 1, "name": f"c{i + 1}", "score": 0.9,
                 "mask": {"size": [height, width],
                          "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}}
                for i, m in enumerate(masks)]
    painted = page.evaluate("""async (prediction) => {
        const {predictionCanvas} = await import('/static/js/prediction_view.js');
        const blank = document.createElement('canvas');
        blank.width = prediction.width;
        blank.height = prediction.height;
        const classes = [{id: 1, colour: '#ff0000'}, {id: 2, colour: '#0000ff'}];
        const c = predictionCanvas(blank, prediction, classes);
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const out = [];
        for (let i = 0; i < data.length; i += 4) out.push(data[i + 3] === 0 ? 0 : data[i] > data[i + 2] ? 1 : 2);
        return out;
    }""", {"task": "segmentation", "width": width, "height": height, "segments": segments})
    expected = masks[0] + 2 * masks[1]
    assert np.array_equal(np.asarray(painted).reshape(height, width), expected)


def test_classification_and_tagging_answers_read_as_ranked_scores(page) -> None:
    shown = page.evaluate("""async () => {
        const {scoreList, predictionSummary} = await import('/static/js/prediction_view.js');
        const scores = [{class_id: 1, name: 'cat', score: 0.2}, {class_id: 2, name: 'dog', score: 0.7},
                        {class_id: 3, name: 'fox', score: 0.1}];
        const label = {task: 'classification', width: 4, height: 4, label: scores[1], scores};
        const tags = {task: 'tagging', width: 4, height: 4, tags: [scores[0], scores[1]], scores};
        const read = (p) => [...scoreList(p).querySelectorAll('li')].map((li) => [
            li.querySelector('.score-name').textContent, li.className === 'kept',
            li.querySelector('.score-bar > span').style.width]);
        return {label: read(label), tags: read(tags), labelText: predictionSummary(label),
                tagsText: predictionSummary(tags)};
    }""")
    assert shown["label"] == [["dog", True, "70%"], ["cat", False, "20%"], ["fox", False, "10%"]]
    assert [kept for _, kept, _ in shown["tags"]] == [True, True, False]
    assert shown["labelText"] == "dog (70%)" and shown["tagsText"] == "cat, dog"
