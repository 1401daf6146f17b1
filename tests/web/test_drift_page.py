"""The drift page under the server's CSP: reports over time with thresholds and the alert marked, the latest
report's histograms and classes, and a check run from the page and followed to its report."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.active.drift_fixtures import add_samples, darken_and_blur, reference_project, tiny_classifier_package
from tests.conftest import make_image_bytes
from tests.web.conftest import ADMIN_PASSWORD, csp_page, serve
from visionloop.active.drift_check import DriftOptions, check_drift
from visionloop.storage import Project
from visionloop.storage.drift import list_drift_reports
from visionloop.storage.users import ensure_admin

KEY = "tf_efficientnet_lite0"
"""The stored embeddings are 8x8 thumbnails kept under the default backbone's key, so the check the page starts
needs no pretrained network (the real-data test uses the real one)."""


def _images(n: int, start: int) -> list[bytes]:
    return [make_image_bytes(64, 48, seed=start + i) for i in range(n)]


@pytest.fixture(scope="module")
def drift_server(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:  # noqa: ANN001
    """The platform on a project with three checks (the last one alerting), 25 fresh samples of the last 10 minutes
    and the tiny package deployed; yields (server, project folder)."""
    tmp = tmp_path_factory.mktemp("drift-page")
    folder = tmp / "projects"
    p = reference_project(lambda task: Project.create(folder / "drift", task=task, name="drift"), key=KEY)
    ensure_admin(p, password=ADMIN_PASSWORD)
    package = tiny_classifier_package(tmp / "tiny")
    shutil.copytree(package, folder / "drift" / "packages" / "tiny")
    (folder / "drift" / "deployment.json").write_text(json.dumps({"package": "tiny"}), encoding="utf-8")
    now = datetime.now(UTC)
    options = DriftOptions(permutations=200)
    for days, images in ((3, _images(30, 2000)), (2, _images(30, 3000)),
                         (1, [darken_and_blur(b) for b in _images(30, 4000)])):
        add_samples(p, package, images, at=now - timedelta(days=days, minutes=30), prefix=f"d{days}", key=KEY)
        check_drift(p, folder / "drift" / "packages" / "tiny", options=options, now=now - timedelta(days=days),
                    package_name="tiny")
    add_samples(p, package, _images(25, 5000), at=now - timedelta(minutes=10), prefix="now", key=KEY)
    p.close()
    with serve([folder / "drift"], projects_dir=folder) as server:
        yield server, folder / "drift"


def test_drift_page_shows_the_reports_over_time(browser, drift_server, shot: Callable) -> None:  # noqa: ANN001
    server, _ = drift_server
    with csp_page(browser, server.url) as page:
        page.goto(f"{server.url}/#/p/drift/drift")
        expect(page.get_by_test_id("drift-alert")).to_have_text("Drift: embeddings (MMD), confidences, predicted "
                                                                "classes, brightness, sharpness")
        expect(page.locator("[data-testid=drift-p-chart] canvas")).to_have_count(1)
        expect(page.locator("[data-testid=drift-psi-chart] canvas")).to_have_count(1)
        for stat in ("size", "brightness", "blur"):
            expect(page.locator(f"[data-testid=drift-hist-{stat}] canvas")).to_have_count(1)
        expect(page.locator("[data-testid=drift-hist-brightness] .u-title")).to_contain_text("Brightness")
        expect(page.locator("[data-testid=drift-reports] tbody tr")).to_have_count(3)
        expect(page.locator("[data-testid=drift-classes] tbody tr")).to_have_count(2)
        expect(page.locator(".u-legend").first).to_contain_text("threshold 0.01")
        expect(page.get_by_test_id("start-drift")).to_be_visible()
        shot(page, "drift-page")


@pytest.mark.slow  # the check runs as a job: a child process that imports the library
def test_a_check_started_on_the_page_is_followed_to_its_report(browser, drift_server,  # noqa: ANN001
                                                                 shot: Callable) -> None:
    server, path = drift_server
    with csp_page(browser, server.url) as page:
        page.goto(f"{server.url}/#/p/drift/drift")
        expect(page.locator("[data-testid=drift-reports] tbody tr")).to_have_count(3)
        page.get_by_test_id("drift-window").select_option("1h")
        page.get_by_test_id("start-drift").click()
        expect(page.locator("[data-testid=drift-reports] tbody tr")).to_have_count(4, timeout=240_000)
        expect(page.get_by_test_id("drift-alert")).to_have_text("No drift")
        expect(page.get_by_test_id("stat-production")).to_contain_text("25")
        shot(page, "drift-page-after-check")
    with Project.open(path) as again:
        latest = list_drift_reports(again)[0]
    assert latest.alert is False and latest.n_production == 25 and latest.model == "tiny"
    assert latest.window_end - latest.window_start == timedelta(hours=1)
