"""The loop page under the server's CSP: the deployed model, the cycles with their decisions, the metric and CI charts,
a comparison report link, and a cycle started from the page and followed to its end (a loop job)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.synthetic import make_project
from tests.web.conftest import ADMIN_PASSWORD, csp_page, serve
from visionloop.active.compare_report import write_compare_report
from visionloop.storage import Project
from visionloop.storage.loop_cycles import list_cycles, start_cycle, update_cycle
from visionloop.storage.users import ensure_admin


def _decided(p: Project, *, state: str, champion: float, challenger: float, low: float, high: float) -> int:
    c = start_cycle(p, trigger="count", author="loop", new_annotations=80, champion_run="run-a",
                    metric="accuracy")
    update_cycle(p, c.id, state=state, finished=True, version=f"v{c.id + 1}", test_version=f"v{c.id + 1}",
                 challenger_run=f"run-{c.id}", champion_value=champion, challenger_value=challenger, ci_low=low,
                 ci_high=high, reason=f"{state} because of the CI", details={"confidence": 0.95})
    return c.id


@pytest.mark.slow
@pytest.mark.ci  # about 50 s on the loaded 2-core machine: the loop job starts a Python process
def test_loop_page_shows_the_history_and_starts_a_cycle(browser, tmp_path: Path, shot: Callable) -> None:  # noqa: ANN001
    folder = tmp_path / "projects"
    p = make_project(folder / "loop", task="classification", n_per_class=4)
    ensure_admin(p, password=ADMIN_PASSWORD)
    first = _decided(p, state="promoted", champion=0.90, challenger=0.95, low=0.02, high=0.08)
    _decided(p, state="kept", champion=0.95, challenger=0.955, low=-0.01, high=0.02)
    write_compare_report(p, first, decision={"state": "promoted", "reason": "better", "margin": 0},
                         comparison={"bootstrap": {"metric": "accuracy", "champion": 0.9, "challenger": 0.95,
                                                   "difference": 0.05, "ci_low": 0.02, "ci_high": 0.08,
                                                   "confidence": 0.95, "resamples": 1000, "images": 200, "seed": 0},
                                     "per_class": {}, "per_class_metric": "recall", "better": [], "worse": [],
                                     "kind": "classification"},
                         setup={"champion_run": "run-a", "challenger_run": f"run-{first}", "test_version": "v2"})
    (folder / "loop" / "deployment.json").write_text(json.dumps({"package": "gone", "deployed_by": "admin",
                                                                 "deployed_at": "2026-01-01T00:00:00+00:00"}))
    p.close()

    with serve([folder / "loop"], projects_dir=folder) as server, csp_page(browser, server.url) as page:
        page.goto(f"{server.url}/#/p/loop/loop")
        expect(page.get_by_test_id("loop-deployed")).to_contain_text("Deployed: gone")
        rows = page.locator("[data-testid=loop-cycles] tbody")
        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-state", "kept")
        expect(rows.first).to_contain_text("kept because of the CI")
        expect(rows.nth(1)).to_contain_text("[+0.0200, +0.0800]")
        expect(page.locator("[data-testid=loop-metric-chart] canvas")).to_have_count(1)
        expect(page.locator("[data-testid=loop-diff-chart] canvas")).to_have_count(1)
        expect(page.locator("[data-testid=loop-diff-chart] .u-legend")).to_contain_text("margin 0")
        link = page.get_by_test_id(f"loop-report-{first}")
        report = page.request.get(server.url + link.get_attribute("href"))  # with the session cookie
        assert report.status == 200 and "PROMOTED: better" in report.text()
        shot(page, "loop-page")

        page.get_by_test_id("start-loop").click()
        # the deployed package is gone, so the cycle cannot find its champion: the job fails and says why
        expect(page.get_by_test_id("loop-job")).to_contain_text("failed", timeout=120_000)
        expect(page.get_by_test_id("start-loop")).to_be_enabled()
        shot(page, "loop-page-after-start")

    with Project.open(folder / "loop") as again:
        assert [c.state for c in list_cycles(again)] == ["kept", "promoted"]  # a cycle that never started: no row
