"""The review page's "From production" view: a real model server (an exported detector) sends two BCCD images it
predicted to a real platform server; a reviewer sees them with the sampler that chose them and the model's version,
accepts the first prediction as it is, corrects the second in the editor (one suggested box kept) and approves it.
The images' head annotations and review states are checked through the API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.deploy_fixtures import CELL_CLASSES, bccd_jpegs, detector_package  # noqa: F401
from tests.serving.conftest import bearer_headers
from tests.web.api_client import admin_client
from tests.web.conftest import ADMIN_PASSWORD, USER_PASSWORD, csp_page, serve, sign_in
from tests.web.test_editor import payload, screen, wait_saved
from tests.web.test_editor_suggestions import wait_shown
from visionloop.active.samplers import load_sampling_config
from visionloop.serving.model_server.app import create_inference_app
from visionloop.serving.model_server.feedback import FeedbackSettings
from visionloop.serving.model_server.server import InferenceServerThread
from visionloop.storage import Project
from visionloop.storage.users import Role, add_user, ensure_admin

NAME = "prod"


@contextmanager
def explained(page, shot, what: str) -> Iterator[None]:  # noqa: ANN001
    """A wait that times out says what the page showed (the hash, the editor's state, the text) and keeps a shot."""
    try:
        yield
    except PlaywrightTimeout:
        shot(page, "review-production-timeout")
        state = page.evaluate(
            "(() => { const e = window.vlEditor; const p = e && e.predictions; return {hash: location.hash, "
            "editor: e ? {id: e.id, history: !!e.history, timings: e.timings} : null, predictions: p ? "
            "{visible: p.layer.getVisible(), shown: p.source.getFeatures().length, suggestion: !!p.suggestion, "
            "deployment: p.deployment} : null, text: document.body.innerText.slice(0, 600)}; })()")
        raise AssertionError(f"{what}: {state}") from None


def test_production_images_reviewed_as_is_and_corrected(new_page, browser, bccd_dir: Path,  # noqa: ANN001
                                                        detector_package: Path, tmp_path: Path, shot) -> None:  # noqa: F811
    path = tmp_path / "projects" / NAME
    with Project.create(path, task="detection", name=NAME) as p:
        p.class_ids(CELL_CLASSES)
        ensure_admin(p, password=ADMIN_PASSWORD)
    shutil.copytree(detector_package, path / "packages" / "detector")
    with serve([path], projects_dir=path.parent) as platform, admin_client(platform.url) as admin:
        admin.post(f"/projects/{NAME}/deployment", json={"package": "detector"}).raise_for_status()
        project = platform.app.state.projects.get(NAME)
        add_user(project, "rita", role="reviewer", password=USER_PASSWORD)
        token = bearer_headers(project, Role.ANNOTATOR, user="edge-server")["Authorization"].split()[1]
        feedback = FeedbackSettings(
            url=f"{platform.url}/api/v1/projects/{NAME}", token=token, spool_dir=tmp_path / "spool",
            sampling=load_sampling_config({"samplers": [{"kind": "random", "rate": 1.0}]}), server="edge-1")
        app = create_inference_app({"detector": detector_package}, sessions=1, feedback=feedback)
        with InferenceServerThread(app) as model_server:
            with httpx.Client(base_url=model_server.url, timeout=120) as c:
                answers = [c.post("/v1/models/detector/predict", content=f.read_bytes()).raise_for_status().json()
                           for f in bccd_jpegs(bccd_dir, 2)]
            sender = app.state.model_server.feedback
            sender.flush()
            assert sender.counts()["sent"] == 2, sender.counts()
        samples = admin.get(f"/projects/{NAME}/production").raise_for_status().json()["items"]
        assert [s["prediction"]["detections"] for s in samples] == [a["detections"] for a in answers]
        assert all(a["detections"] for a in answers), "the detector found nothing: the test would show nothing"

        with csp_page(browser, platform.url, "rita", USER_PASSWORD) as page:  # the view under the real CSP
            page.goto(f"{platform.url}/#/p/{NAME}/review?view=production")
            page.locator("#production-why").get_by_text("random slice (100% of predictions)").wait_for()
            assert page.locator("#production-count").inner_text() == "2 images from production waiting for review"
            model = page.locator("#production-model").inner_text()
            assert model == f"detector · version {samples[0]['package_version']}"
            assert page.locator("[data-tab=production]").get_attribute("aria-selected") == "true"
            page.locator("#production-waiting").get_by_text("2").wait_for()
            shot(page, "review-production")
            page.click("#production-approve")  # accept the first prediction as it is
            page.locator("#production-count").get_by_text("1 image from production").wait_for()
            page.locator("#production-waiting").get_by_text("1").wait_for()
            page.click("[data-tab=submitted]")  # the annotators' submissions: none, with the same tabs
            page.locator("#review-count").get_by_text("Nothing is waiting for review").wait_for()
            page.locator("#production-waiting").get_by_text("1").wait_for()

        page = new_page()
        sign_in(page, platform.url, "rita", USER_PASSWORD)
        page.goto(f"{platform.url}/#/p/{NAME}/review?view=production")
        page.set_default_timeout(60_000)
        page.locator("#production-edit").click()  # the second image, in the editor
        opened = (f"window.vlEditor && window.vlEditor.id === {samples[1]['image_id']} "
                  "&& window.vlEditor.history && window.vlEditor.timings.rendered !== undefined")
        with explained(page, shot, f"the editor did not open image {samples[1]['image_id']}"):
            page.wait_for_function(opened)
        page.keyboard.press("o")
        second = answers[1]["detections"]
        with explained(page, shot, f"the editor did not show the {len(second)} predicted boxes"):
            wait_shown(page, len(second))  # the production prediction, offered as suggestions
        box = second[0]["xyxy"]
        page.mouse.click(*screen(page, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
        page.keyboard.press("Enter")  # keep one box: the correction
        page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 1")
        kept = payload(page)["xyxy"][0]
        wait_saved(page)
        page.goto(f"{platform.url}/#/p/{NAME}/review?view=production")
        page.locator("#production-shown").get_by_text("The annotation (corrected)").wait_for()
        shot(page, "review-production-corrected")
        page.click("#production-approve")
        page.locator("#production-count").get_by_text("Nothing from production is waiting for review").wait_for()

        first, corrected = (admin.get(f"/projects/{NAME}/images/{s['image_id']}").raise_for_status().json()
                            for s in samples)
        revisions = [admin.get(f"/projects/{NAME}/images/{s['image_id']}/revisions").raise_for_status().json()
                     for s in samples]
    assert first["review_state"] == corrected["review_state"] == "approved"
    assert len(first["annotation"]["xyxy"]) == len(answers[0]["detections"])
    assert [[round(v) for v in b] for b in first["annotation"]["xyxy"]] == [
        [round(v) for v in d["xyxy"]] for d in answers[0]["detections"]]
    assert corrected["annotation"]["xyxy"] == [kept] and any(
        all(abs(a - b) <= 1 for a, b in zip(kept, d["xyxy"], strict=True)) for d in second)
    assert {r["author"] for revs in revisions for r in revs} == {"rita"}
