"""Assisted segmentation in the editor, as a person uses it on a real DSB2018 image: I picks the assist tool, a click
on a nucleus asks the server for its mask (a preview), a second click refines it, Enter keeps it as an outline of the
current class, and after a reload the instance is there (checked through the API against the true mask)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tests.web.conftest import ADMIN_PASSWORD, Served, serve, sign_in
from tests.web.test_editor import detail, open_editor, screen, token_of, wait_saved
from visionloop.inference.assist.simulate import centre_click, iou
from visionloop.ingest import import_source
from visionloop.storage import Project
from visionloop.storage.users import ensure_admin

DSB_SAMPLE = 4
"""A fluorescence image of DSB2018 (256x256, in sorted order) whose nuclei stand apart."""


@pytest.fixture(scope="module")
def nuclei(dsb_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, np.ndarray]]:
    folder = tmp_path_factory.mktemp("assist-projects")
    sample = sorted((dsb_dir / "stage1_train").iterdir())[DSB_SAMPLE]
    source = folder.parent / "assist-source"
    source.mkdir(exist_ok=True)
    image = next((sample / "images").glob("*.png"))
    shutil.copy(image, source / image.name)
    truth = np.asarray(Image.open(sorted((sample / "masks").glob("*.png"))[0])) > 0
    path = folder / "nuclei"
    with Project.create(path, task="segmentation", name="nuclei") as p:
        p.class_ids(["nucleus"])
        import_source(p, source, format="images", progress=False)
        ensure_admin(p, password=ADMIN_PASSWORD)
    with serve([path], projects_dir=folder) as server:
        yield Served(url=server.url, path=path, name="nuclei", projects_dir=folder, server=server), truth


def test_click_a_nucleus_refine_accept_and_find_it_after_a_reload(new_page, nuclei, shot) -> None:  # noqa: ANN001
    served, truth = nuclei
    page = new_page()
    sign_in(page, served.url)
    headers = token_of(served.url)
    open_editor(page, served.url, "nuclei", 1)
    page.keyboard.press("?")
    assert page.locator(".ed-keys").get_by_text("Assist tool: click an object").count() == 1
    page.keyboard.press("Escape")
    page.keyboard.press("i")
    page.wait_for_function("window.vlEditor.tool === 'assist' && window.vlEditor.assist.method !== null")
    assert page.locator(".ed-tool[data-tool='assist']").get_attribute("aria-pressed") == "true"
    c = centre_click(truth)
    page.mouse.click(*screen(page, c.x, c.y))
    page.wait_for_function("window.vlEditor.assist.answer && window.vlEditor.assist.answer.area > 0"
                           " && !window.vlEditor.assist.pending")
    first = page.evaluate("window.vlEditor.assist.answer")
    ys, xs = np.nonzero(truth)
    page.mouse.click(*screen(page, float(xs.min()) + 1.5, float(ys[xs.argmin()]) + 0.5))  # its left edge: refine
    page.wait_for_function("window.vlEditor.assist.points.length === 2 && !window.vlEditor.assist.pending")
    refined = page.evaluate("window.vlEditor.assist.answer")
    assert refined["area"] > 0 and page.evaluate("window.vlEditor.history.current.xyxy.length") == 0  # a preview
    shot(page, "editor-assist-preview")
    page.keyboard.press("Enter")
    page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 1")
    assert page.evaluate("window.vlEditor.assist.answer") is None  # the preview became the outline
    page.keyboard.press("Control+z")  # one edit of the history: undo takes it back, redo brings it again
    page.wait_for_function("window.vlEditor.history.current.xyxy.length === 0")
    page.keyboard.press("Control+Shift+z")
    page.wait_for_function("window.vlEditor.history.current.xyxy.length === 1")
    wait_saved(page)
    page.reload()
    open_editor(page, served.url, "nuclei", 1)
    assert page.evaluate("window.vlEditor.history.current.xyxy.length") == 1
    shot(page, "editor-assist-accepted")
    head = detail(served.url, "nuclei", 1, headers)["annotation"]
    assert head["type"] == "instances" and len(head["class_id"]) == 1
    ring = head["segmentations"][0]["polygons"][0]
    drawn = mask_utils.decode(mask_utils.frPyObjects([ring], *truth.shape))[..., 0].astype(bool)
    assert iou(drawn, truth) > 0.5, (iou(drawn, truth), first["area"], refined["area"], int(truth.sum()))
