"""Training from the page as a person does it: make a dataset version, see what "auto" will train and why, start a
short run (1 epoch, small images), watch the curves appear and the run finish, open the run's page and its HTML
report, compare it with a second run."""

from __future__ import annotations

import re

import pytest

from tests.web.api_client import admin_client
from tests.web.conftest import USER_PASSWORD, sign_in

SLOW = pytest.mark.slow  # a short detector training on 12 BCCD images takes about a minute on 2 cores

TRAIN_TIMEOUT_MS = 600_000
OPTIONS_TIMEOUT_MS = 90_000  # the first answer loads torch and the model registry into the server


def _start_short_run(page, image_size: int, *, deploy: bool = False) -> None:
    assert page.is_checked("#train-deploy")  # a newcomer's run is deployed when trained, unless they say otherwise
    if not deploy:
        page.uncheck("#train-deploy")
    page.click("details.advanced > summary")
    page.fill("#train-epochs", "1")
    page.fill("#train-image-size", str(image_size))
    page.click("#train-start")


@SLOW
def test_train_follow_open_report_and_compare(page, served, shot) -> None:
    page.goto(f"{served.url}/#/p/{served.name}/train")
    page.click("#version-create")
    page.wait_for_function("document.querySelector('#train-version').value !== ''")
    reason = page.wait_for_selector(".auto-choice", timeout=OPTIONS_TIMEOUT_MS)
    assert "auto" in reason.inner_text().lower()
    why = page.inner_text(".auto-choice .reason")  # the size and the epochs the data gave, each with its reason
    assert "lowered from 480 px" in why and "8 training images: 24 epochs" in why
    shot(page, "train-form")

    _start_short_run(page, 256, deploy=True)
    live = page.wait_for_selector(".train-live:not([hidden])")
    page.wait_for_selector(".train-live .job-progress[data-state]")
    page.wait_for_selector(".train-live .chart canvas", timeout=TRAIN_TIMEOUT_MS)  # the first epoch's record
    page.wait_for_selector(".train-live .done-box", timeout=TRAIN_TIMEOUT_MS)
    assert "done" in live.inner_text()
    page.wait_for_selector("#train-chain .chain-step", timeout=TRAIN_TIMEOUT_MS)  # evaluated, packaged, deployed
    shot(page, "train-done")
    page.wait_for_selector("#train-try", timeout=TRAIN_TIMEOUT_MS)
    assert "Evaluated on the test split: done" in page.inner_text("#train-chain")
    shot(page, "train-deployed")
    run_href = page.get_attribute(".done-box a", "href")
    page.click("#train-try")
    page.wait_for_selector("#packages tr.deployed .badge")  # the run's package serves predictions now
    assert run_href.rsplit("/", 1)[-1] in page.inner_text("#packages tr.deployed")

    page.goto(f"{served.url}/{run_href}")
    page.wait_for_selector(".run-page .stat-value")
    values = page.locator(".run-page .stat-value").all_inner_texts()
    assert values and all(re.fullmatch(r"\d\.\d{3}", v) for v in values)
    page.wait_for_selector(".run-page .chart canvas")
    shot(page, "run-page")

    page.wait_for_selector("#run-report", timeout=TRAIN_TIMEOUT_MS)  # made by the evaluate job after training
    page.wait_for_selector(".run-page .per-class")  # the evaluation's per class metrics came with it
    shot(page, "run-page-evaluated")
    with page.expect_popup() as popup_info:
        page.click("#run-report")
    report = popup_info.value
    report.wait_for_load_state()
    assert "report" in report.title().lower()
    assert report.locator("h2", has_text="Summary").count() == 1
    report.close()

    first = page.url.rsplit("/", 1)[-1]
    page.goto(f"{served.url}/#/p/{served.name}/train")
    page.wait_for_selector(".auto-choice", timeout=OPTIONS_TIMEOUT_MS)
    _start_short_run(page, 224)
    page.wait_for_selector(".train-live .done-box", timeout=TRAIN_TIMEOUT_MS)
    page.click(".done-box a")
    page.wait_for_selector("#compare-with")
    page.select_option("#compare-with", first)
    page.click("#compare-go")
    table = page.wait_for_selector("#compare-metrics")
    assert table.is_visible() and page.locator("#compare-metrics tbody tr").count() >= 1
    assert page.locator("#compare-metrics td.diff").count() >= 1
    assert "256" in page.inner_text("#compare-config")  # the image sizes differ: shown as a config difference
    shot(page, "compare")


@SLOW
def test_stop_a_run_with_confirmation_then_resume_it(page, served, shot) -> None:
    page.goto(f"{served.url}/#/p/{served.name}/train")
    page.click("#version-create")
    page.wait_for_selector(".auto-choice", timeout=OPTIONS_TIMEOUT_MS)
    page.uncheck("#train-deploy")
    page.click("details.advanced > summary")
    page.fill("#train-epochs", "3")
    page.fill("#train-image-size", "224")
    page.click("#train-start")
    page.wait_for_selector(".train-live .chart canvas", timeout=TRAIN_TIMEOUT_MS)  # an epoch is done
    shot(page, "train-live")
    page.click("#train-cancel")
    page.click(".modal-actions button:has-text('Keep training')")  # changed their mind: nothing happens
    assert page.locator(".train-live .job-progress[data-state=running]").count() == 1
    page.click("#train-cancel")
    page.click(".modal-actions button:has-text('Stop training')")
    page.wait_for_selector(".train-live .job-progress[data-state=cancelled]", timeout=120_000)
    assert "stopped" in page.inner_text(".train-after")
    shot(page, "train-stopped")
    page.click("#train-resume")
    page.wait_for_selector(".train-live .done-box", timeout=TRAIN_TIMEOUT_MS)
    run = page.get_attribute(".done-box a", "href").rsplit("/", 1)[-1]
    with admin_client(served.url) as client:
        history = client.get(f"/projects/{served.name}/runs/{run}/history").json()
    assert history["series"]["epoch"] == [1, 2, 3]  # resumed from its checkpoint: each epoch logged once


def test_a_viewer_sees_the_runs_but_no_start_button(new_page, served) -> None:
    viewer = new_page()
    sign_in(viewer, served.url, served.add_user("vera", "viewer"), USER_PASSWORD)
    viewer.goto(f"{served.url}/#/p/{served.name}/train")
    viewer.wait_for_selector(".train-form")
    assert viewer.locator("#train-start").count() == 0 and viewer.locator("#version-create").count() == 0
    assert "Only an admin" in viewer.inner_text(".train-form")
    viewer.goto(f"{served.url}/#/p/{served.name}/models")
    viewer.wait_for_selector(".models-page")
    assert viewer.locator("button.deploy").count() == 0


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    """A served classification project: 12 flat-colour images labelled cat / dog, version v1, the admin."""
    import io

    import numpy as np
    from PIL import Image

    from tests.web.conftest import ADMIN_PASSWORD, serve
    from visionloop.core.annotations import Label
    from visionloop.storage import NewImage, Project
    from visionloop.storage.users import ensure_admin
    from visionloop.storage.versions import create_version

    folder = tmp_path_factory.mktemp("classification")
    with Project.create(folder / "pets", task="classification", name="pets") as p:
        ids = p.class_ids(["cat", "dog"])
        for k in range(12):
            buf = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), k * 20, np.uint8)).save(buf, format="PNG")
            [(image, _)] = p.add_images([NewImage(sha256=p.blobs.put(buf.getvalue()), width=32, height=32,
                                                  format="png", name=f"{k}.png")])
            p.save_annotation(image, Label(class_id=ids["cat" if k % 2 else "dog"]), base_revision=None, author="t")
        create_version(p, name="v1", phash_distance=-1)
        ensure_admin(p, password=ADMIN_PASSWORD)
    with serve([folder / "pets"], projects_dir=folder) as server:
        yield server.url


@SLOW
def test_classifiers_are_searched_by_name_and_an_unknown_one_is_refused(new_page, classification) -> None:
    page = new_page()
    sign_in(page, classification)
    page.goto(f"{classification}/#/p/pets/train")
    choice = page.wait_for_selector(".auto-choice", timeout=OPTIONS_TIMEOUT_MS)
    assert "linear" in choice.inner_text()  # 8 training images: auto says why it fits a linear head
    page.click("details.advanced > summary")
    assert page.is_hidden("#train-model") and page.is_visible("#train-model-search")
    assert page.locator("#train-model-list option").count() > 100  # timm's classifiers, searchable
    page.fill("#train-model-search", "no_such_model")
    page.click("#train-start")
    page.locator(".toast-error", has_text="No model is named no_such_model").wait_for()
    assert page.locator(".train-live:not([hidden])").count() == 0  # nothing was started
