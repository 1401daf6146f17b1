"""The Work page makes a batch of the next N unlabelled images in active-learning order, under the real CSP; the
annotator's queue then hands them out in that order (checked through the API)."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select

from tests.active.colour_project import colour_project
from tests.serving.conftest import bearer_headers
from tests.web.conftest import ADMIN_PASSWORD, csp_page, serve
from visionloop.storage import Project
from visionloop.storage.users import add_user, ensure_admin
from visionloop.storage.work_rows import AssignmentRow

LOOKS = ["red", "grey", "yellow", "blue", "grey", "pinkish", "green", "yellow"]
API = "/api/v1/projects/colours"


def test_batch_of_the_next_images_in_active_learning_order(browser, tmp_path: Path, shot) -> None:  # noqa: ANN001
    root = tmp_path / "projects" / "colours"
    with colour_project(root, LOOKS, labelled={0: "red"}) as p:
        ensure_admin(p, password=ADMIN_PASSWORD)
        add_user(p, "ann", role="annotator", password="ann-password-long")
        admin, ann = bearer_headers(p, "admin", user="api-admin"), bearer_headers(p, "annotator", user="ann")
    with serve([root], projects_dir=root.parent) as server, csp_page(browser, server.url) as page:
        expected = httpx.get(f"{server.url}{API}/next", params={"n": 4, "strategy": "least_confidence"},
                             headers=admin, timeout=60).json()["results"]
        page.goto(f"{server.url}/#/p/colours/work")
        page.wait_for_selector("[data-testid=work-page]")
        page.fill("#batch-name", "next-4")
        page.select_option("#batch-source", "next")
        assert page.is_hidden("#batch-class") and page.is_visible("#batch-strategy")
        page.fill("#batch-next-n", "4")
        page.select_option("#batch-strategy", "least_confidence")
        page.click("#batch-create")
        page.wait_for_selector("tr.work-batch[data-batch='next-4']")
        info = page.text_content("#batch-next-info")
        assert "Ranked by least_confidence + cluster (model colour): 4 images of 7 unlabelled." in info, info
        shot(page, "work-next-batch")
        first = httpx.get(f"{server.url}{API}/work/next", headers=ann, timeout=60).json()["item"]
    with Project.open(root) as p, p.engine.connect() as conn:
        queued = list(conn.execute(select(AssignmentRow.image_id).order_by(AssignmentRow.position)).scalars())
    assert queued == [r["id"] for r in expected] and first["image"]["id"] == expected[0]["id"]
    assert expected[0]["name"].endswith("grey.png")
