"""Pre-annotation in the editor.

In CI: suggestions stored for an image as the pre-annotation job stores them (``storage.suggestions``; the job has
tests of its own) for the deployed package (an exported random-weight detector): an annotator opens the editor, Enter
accepts the selected suggestion and Shift+O every one above the threshold, and the image's annotation holds them,
saved by that annotator; an admin starts pre-annotation from the Models page and follows the job to its end.

Slow: a detector trained briefly on BCCD and exported (a real package) is deployed and pre-annotates two unlabelled
BCCD images in a job; the editor shows the stored suggestions with their scores, a click selects one and Enter accepts
it, the threshold slider hides the low ones and Shift+O accepts every one shown (one undo); the accepted boxes are
saved as the annotation and, after a reload, are there while the suggestions they came from are no longer offered.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy_fixtures import CELL_CLASSES, detector_package  # noqa: F401
from tests.web.api_client import admin_client
from tests.web.conftest import USER_PASSWORD, bccd_subset, serve, sign_in
from tests.web.test_editor import _plain_project, open_editor, payload, screen, wait_saved
from visionloop.storage.suggestions import ModelRef, ModelSource, NewSuggestion, save_suggestions
from visionloop.storage.users import add_user

PANEL = "[data-testid=ed-predictions]"
LAYER = "window.vlEditor.predictions"
SLIDER = "[data-testid=ed-pred-threshold]"
BOUND_S = 300


@pytest.fixture(scope="module")
def bccd_detector(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Faster R-CNN (offline ImageNet MobileNetV2 FPN) trained one epoch on ten BCCD images at 224 px and exported:
    a real model whose scores differ from box to box (an untrained one gives every box the same score)."""
    import visionloop.training.detection as td
    from visionloop.export.api import export_run
    from visionloop.ingest import import_source
    from visionloop.storage import Project
    from visionloop.storage.versions import create_version

    tmp = tmp_path_factory.mktemp("detector")
    with Project.create(tmp / "train", task="detection") as p:
        import_source(p, bccd_subset(bccd_dir, tmp / "src", 10), progress=False)
        create_version(p, name="v1", fractions=(0.8, 0.2, 0.0), phash_distance=-1)
        hp = td.DetectionHParams(epochs=1, batch_size=2, eval_size=224, train_sizes=(192, 224), max_size=298,
                                 warmup_steps=2)
        run = td.train_detection(p, version="v1", hparams=hp, progress=False)
        return export_run(p, run.run_id, tmp / "detector", name="detector")


def iou(a: list[float], b: list[float]) -> float:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def offered(detections: list[dict], annotated: list[tuple[list[float], str]], threshold: float) -> list[dict]:
    """What the editor offers: at or above the threshold, not overlapping an annotated box of its class (IoU 0.5)."""
    return [d for d in detections if d["score"] >= threshold
            and not any(name == d["name"] and iou(box, d["xyxy"]) >= 0.5 for box, name in annotated)]


def shown(page) -> int:  # noqa: ANN001
    return page.evaluate(f"{LAYER}.layer.getVisible() ? {LAYER}.source.getFeatures().length : -1")


def wait_shown(page, n: int) -> None:  # noqa: ANN001
    page.wait_for_function(f"{LAYER}.layer.getVisible() && {LAYER}.source.getFeatures().length === {n}",
                           timeout=120_000)


def boxes_of(page) -> list[list[float]]:  # noqa: ANN001
    return [list(map(float, b)) for b in payload(page)["xyxy"]]


def close(a: list[float], b: list[float]) -> bool:
    return all(abs(x - y) <= 1.0 for x, y in zip(a, b, strict=True))


# ---- CI: stored suggestions accepted, pre-annotation started from the Models page -------------------------------

QUICK = "quick"
STORED = [  # (box, class, score) of image 1; the package's threshold is 0.5: the last one is hidden
    ([40.0, 40.0, 140.0, 140.0], "RBC", 0.95), ([220.0, 60.0, 330.0, 170.0], "WBC", 0.8),
    ([380.0, 250.0, 470.0, 340.0], "Platelets", 0.62), ([100.0, 300.0, 200.0, 400.0], "RBC", 0.3)]


@pytest.fixture(scope="module")
def quick(bccd_dir: Path, detector_package: Path,  # noqa: F811
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A detection project of two unlabelled BCCD images with the exported detector deployed, its suggestions for
    image 1 stored as the preannotate job stores them, and the annotator ``nina``; yields the running server."""
    path = _plain_project(bccd_dir, tmp_path_factory.mktemp("quick") / "projects", QUICK, "detection", CELL_CLASSES,
                          n=2)
    shutil.copytree(detector_package, path / "packages" / "detector")
    with serve([path], projects_dir=path.parent) as server, admin_client(server.url) as client:
        deployed = client.post(f"/projects/{QUICK}/deployment", json={"package": "detector"}).raise_for_status().json()
        ids = {c["name"]: c["id"] for c in client.get(f"/projects/{QUICK}/classes").raise_for_status().json()}
        project = server.app.state.projects.get(QUICK)
        add_user(project, "nina", role="annotator", password=USER_PASSWORD)
        image = client.get(f"/projects/{QUICK}/images/1").raise_for_status().json()
        prediction = {"task": "detection", "width": image["width"], "height": image["height"], "detections": [
            {"xyxy": box, "class_id": ids[name], "name": name, "score": score} for box, name, score in STORED]}
        ref = ModelRef(ModelSource.PACKAGE, "detector", deployed.get("model_sha256") or "detector")
        assert save_suggestions(project, ref, [NewSuggestion(1, prediction)],
                                thresholds={"score": 0.5, "per_class": {}}) == 1
        yield server


def test_stored_suggestions_accepted_with_enter_and_shift_o(new_page, quick, shot) -> None:  # noqa: ANN001
    page = new_page()
    sign_in(page, quick.url, "nina", USER_PASSWORD)
    open_editor(page, quick.url, QUICK, 1)
    page.locator(PANEL).get_by_text("Model predictions: detector").wait_for()
    page.keyboard.press("o")
    wait_shown(page, 3)  # at or above the package's threshold
    box, name, score = STORED[2]
    page.mouse.click(*screen(page, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
    assert f"{round(score * 100)}%" in page.locator(PANEL).locator(".ed-pred-selected").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 1")
    wait_shown(page, 2)  # the accepted one is not offered again
    page.keyboard.press("Shift+O")
    page.wait_for_function("window.vlEditor.history.current.xyxy.length === 3")
    wait_saved(page)
    shot(page, "editor-suggestions-stored")
    with admin_client(quick.url) as client:
        saved = client.get(f"/projects/{QUICK}/images/1").raise_for_status().json()
        names = {c["id"]: c["name"] for c in client.get(f"/projects/{QUICK}/classes").json()}
        revisions = client.get(f"/projects/{QUICK}/images/1/revisions").raise_for_status().json()
    got = sorted((tuple(round(v) for v in b), names[c]) for b, c in zip(saved["annotation"]["xyxy"],
                                                                       saved["annotation"]["class_id"], strict=True))
    assert got == sorted((tuple(round(v) for v in b), n) for b, n, _ in STORED[:3])
    head = next(r for r in revisions if r["revision"] == saved["head_revision"])
    assert head["author"] == "nina"
    page.goto(f"{quick.url}/#/p/{QUICK}/models")  # starting pre-annotation is for admins (the API says so too)
    page.locator("#packages").wait_for()
    assert page.locator("#pre-annotate").is_hidden()


def test_pre_annotation_starts_from_the_models_page(new_page, quick, shot) -> None:  # noqa: ANN001
    page = new_page()
    sign_in(page, quick.url)
    page.goto(f"{quick.url}/#/p/{QUICK}/models")
    card = page.locator("#pre-annotate")
    card.get_by_text("Pre-annotate unlabelled images with this model").click()
    page.wait_for_function("document.querySelector('#pre-annotate .job-progress')?.dataset.state === 'done'",
                           timeout=BOUND_S * 1000)
    card.locator("#preannotate-after").get_by_text("1 image pre-annotated").wait_for()  # image 2: 1 is annotated
    shot(page, "models-preannotate")
    with admin_client(quick.url) as client:
        jobs = client.get(f"/projects/{QUICK}/jobs").raise_for_status().json()
        suggestion = client.get(f"/projects/{QUICK}/images/2/suggestions").raise_for_status().json()
    assert suggestion["model"] == "detector" and suggestion["image_id"] == 2
    assert [(j["kind"], j["state"], j["created_by"]) for j in jobs] == [("preannotate", "done", "admin")]


@pytest.mark.slow
def test_accept_one_accept_all_above_a_threshold_and_find_them_after_a_reload(
        new_page, bccd_dir: Path, bccd_detector: Path, tmp_path: Path, shot) -> None:  # noqa: ANN001
    path = _plain_project(bccd_dir, tmp_path / "projects", "preann", "detection", CELL_CLASSES, n=2)
    shutil.copytree(bccd_detector, path / "packages" / "detector")
    with serve([path], projects_dir=path.parent) as server, admin_client(server.url) as client:
        client.post("/projects/preann/deployment", json={"package": "detector"}).raise_for_status()
        job = client.post("/projects/preann/preannotate", json={}).raise_for_status().json()
        deadline = time.monotonic() + BOUND_S
        while job["state"] not in {"done", "failed", "cancelled", "interrupted"}:
            assert time.monotonic() < deadline, f"the preannotate job is stuck: {job}"
            time.sleep(0.3)
            job = client.get(f"/projects/preann/jobs/{job['id']}").raise_for_status().json()
        assert job["state"] == "done" and job["result"]["stored"] == 2, job
        suggestion = client.get("/projects/preann/images/1/suggestions").raise_for_status().json()
        detections = suggestion["prediction"]["detections"]
        assert len(detections) >= 4, "the detector suggested too little for this test"
        default = suggestion["thresholds"]["score"]
        classes = {c["id"]: c["name"] for c in client.get("/projects/preann/classes").json()}

        page = new_page()
        sign_in(page, server.url)
        open_editor(page, server.url, "preann", 1)
        panel = page.locator(PANEL)
        panel.get_by_text("Model predictions: detector").wait_for()
        page.keyboard.press("o")
        wait_shown(page, len(offered(detections, [], default)))
        assert abs(float(page.locator(SLIDER).input_value()) - default) <= 0.005  # the package threshold first
        panel.get_by_text(f"{len(offered(detections, [], default))} suggestion").wait_for()
        assert not payload(page)["xyxy"]  # nothing is part of the annotation yet
        page.locator(SLIDER).fill("0")  # every suggestion
        wait_shown(page, len(detections))
        shot(page, "editor-suggestions")

        # Accept one: click the smallest suggestion (the click picks the smallest under it), then Enter.
        one = min(detections, key=lambda d: (d["xyxy"][2] - d["xyxy"][0]) * (d["xyxy"][3] - d["xyxy"][1]))
        x1, y1, x2, y2 = one["xyxy"]
        page.mouse.click(*screen(page, (x1 + x2) / 2, (y1 + y2) / 2))
        panel.locator(".ed-pred-selected").wait_for()
        assert f"{round(one['score'] * 100)}%" in panel.locator(".ed-pred-selected").inner_text()
        page.keyboard.press("Enter")
        page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 1")
        assert close(boxes_of(page)[0], one["xyxy"])
        assert classes[payload(page)["class_id"][0]] == one["name"]
        accepted = [(one["xyxy"], one["name"])]
        wait_shown(page, len(offered(detections, accepted, 0.0)))  # the accepted one is not offered again

        # A threshold in the middle of the scores: only those at or above it are shown, and Shift+O takes them all.
        scores = sorted(d["score"] for d in offered(detections, accepted, 0.0))
        t = round(scores[len(scores) // 2], 2)
        above = offered(detections, accepted, t)
        assert 0 < len(above) < len(scores), (t, scores)
        page.locator(SLIDER).fill(str(t))
        wait_shown(page, len(above))
        page.keyboard.press("Shift+O")
        page.wait_for_function(f"window.vlEditor.history.current.xyxy.length === {1 + len(above)}")
        for d in above:
            assert any(close(d["xyxy"], b) for b in boxes_of(page)), d
        wait_shown(page, len(offered(detections, accepted + [(d["xyxy"], d["name"]) for d in above], t)))
        page.keyboard.press("Control+z")  # one edit: one undo takes them back, and they are offered again
        page.wait_for_function("window.vlEditor.history.current.xyxy.length === 1")
        wait_shown(page, len(above))
        page.keyboard.press("Control+y")
        page.wait_for_function(f"window.vlEditor.history.current.xyxy.length === {1 + len(above)}")
        wait_saved(page)
        saved = client.get("/projects/preann/images/1").raise_for_status().json()["annotation"]
        assert len(saved["xyxy"]) == 1 + len(above)

        page.keyboard.press("?")
        keys = page.locator(".modal").inner_text()
        assert "Accept the selected suggestion" in keys and "every suggestion above the threshold" in keys
        page.keyboard.press("Escape")

        page.reload()  # the accepted boxes are the image's annotation; the threshold and the toggle are kept
        page.wait_for_function("window.vlEditor && window.vlEditor.id === 1 && window.vlEditor.history")
        page.wait_for_function(f"{LAYER}.layer.getVisible() && {LAYER}.suggestion !== null", timeout=120_000)
        assert len(boxes_of(page)) == 1 + len(above)
        everything = accepted + [(d["xyxy"], d["name"]) for d in above]
        assert float(page.locator(SLIDER).input_value()) == t
        assert shown(page) == len(offered(detections, everything, t))
        shot(page, "editor-suggestions-accepted")

        page.goto(f"{server.url}/#/p/preann/jobs")  # the job is listed with what it did
        page.get_by_text("2 images pre-annotated by detector").wait_for()
        assert "Pre-annotation" in page.locator("main").inner_text()
