"""The deployed model's predictions in the annotation editor: with nothing deployed the panel says so; with a real
exported detector deployed, O draws the image's predictions (as the API answers them) on their own layer, hides them
again, keeps them on for the next image, and never touches the annotation; Shift+O adds them as one undoable edit.
A classifier's predicted labels are listed with their scores in the panel.

The tests run in file order on one project: the first one before anything is deployed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.deploy_fixtures import CELL_CLASSES, cell_classifier, cell_data, cell_package, detector_package  # noqa: F401
from tests.web.api_client import admin_client
from tests.web.conftest import Served, serve, sign_in
from tests.web.test_editor import _plain_project, open_editor, payload, wait_saved

PANEL = "[data-testid=ed-predictions]"
LAYER = "window.vlEditor.predictions"


def image(client, project: str, image_id: int) -> dict:  # noqa: ANN001
    return client.get(f"/projects/{project}/images/{image_id}").raise_for_status().json()


def image_annotation(served: Served, image_id: int) -> dict | None:
    with admin_client(served.url) as client:
        return image(client, served.name, image_id)["annotation"]


def rgb(hex_colour: str) -> str:
    """``#rrggbb`` as the browser's computed style writes it."""
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def shown_boxes(page) -> list[list[float]]:  # noqa: ANN001
    """The predictions layer's boxes in image pixels (xyxy), sorted."""
    return sorted(page.evaluate(f"""() => {{
        const ed = window.vlEditor;
        const H = ed.detail.height;
        return {LAYER}.source.getFeatures().map((f) => {{
            const [x1, y1, x2, y2] = f.getGeometry().getExtent();
            return [x1, H - y2, x2, H - y1].map((v) => Math.round(v));
        }});
    }}"""))


def wait_shown(page, n: int) -> None:  # noqa: ANN001
    page.wait_for_function(f"{LAYER}.layer.getVisible() && {LAYER}.source.getFeatures().length === {n}",
                           timeout=120_000)


def test_nothing_deployed_says_so_and_links_to_the_models_page(page, served: Served, shot) -> None:  # noqa: ANN001
    open_editor(page, served.url, served.name, 1)
    panel = page.locator(PANEL)
    panel.get_by_text("no model deployed yet").wait_for()
    assert panel.locator("a").get_attribute("href") == f"#/p/{served.name}/models"
    page.keyboard.press("o")
    assert page.evaluate(f"{LAYER}.source.getFeatures().length") == 0
    assert not page.evaluate(f"{LAYER}.layer.getVisible()")
    shot(page, "editor-predictions-none")


def test_predictions_toggle_and_leave_the_annotation_alone(page, served: Served, detector_package: Path,  # noqa: F811, ANN001
                                                           shot) -> None:
    shutil.copytree(detector_package, served.path / "packages" / "detector")
    with admin_client(served.url) as client:
        client.post(f"/projects/{served.name}/deployment", json={"package": "detector"}).raise_for_status()
        before = image(client, served.name, 1)
        expected = client.get(f"/projects/{served.name}/images/1/predictions").raise_for_status().json()
        expected_next = client.get(f"/projects/{served.name}/images/2/predictions").raise_for_status().json()
    boxes = sorted([round(v) for v in d["xyxy"]] for d in expected["detections"])
    assert boxes, "the detector (score threshold 0) found nothing: nothing to show"

    open_editor(page, served.url, served.name, 1)
    panel = page.locator(PANEL)
    panel.get_by_text("Model predictions: detector").wait_for()
    assert page.evaluate(f"{LAYER}.source.getFeatures().length") == 0  # loaded only when asked for
    page.keyboard.press("o")
    wait_shown(page, len(boxes))
    assert shown_boxes(page) == boxes
    panel.get_by_text(f"{len(boxes)} objects").wait_for()
    assert payload(page) == before["annotation"]  # the predictions are not part of the annotation
    shot(page, "editor-predictions-shown")
    page.keyboard.press("?")
    assert "predictions" in page.locator(".modal").inner_text()
    page.keyboard.press("Escape")

    page.keyboard.press("o")
    page.wait_for_function(f"!{LAYER}.layer.getVisible()")
    assert panel.locator("button.ed-pred-toggle").inner_text().startswith("Show")
    page.keyboard.press("o")
    wait_shown(page, len(boxes))

    page.keyboard.press("d")  # the next image: the predictions stay on
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 2 && window.vlEditor.predictions")
    wait_shown(page, len(expected_next["detections"]))
    assert payload(page) == image_annotation(served, 2)
    with admin_client(served.url) as client:
        after = image(client, served.name, 1)
    assert after["head_revision"] == before["head_revision"] and after["annotation"] == before["annotation"]


def test_shift_o_adds_the_predicted_boxes_as_one_undoable_edit(page, served: Served) -> None:  # noqa: ANN001
    with admin_client(served.url) as client:
        assert client.get(f"/projects/{served.name}/deployment").json()["package"] == "detector", \
            "runs after the deployment of the test before"
        n = len(client.get(f"/projects/{served.name}/images/3/predictions").raise_for_status().json()["detections"])
    n0 = len(image_annotation(served, 3)["xyxy"])
    open_editor(page, served.url, served.name, 3)
    page.locator(PANEL).get_by_text("Model predictions: detector").wait_for()
    page.keyboard.press("o")
    wait_shown(page, n)
    page.keyboard.press("Shift+O")
    assert len(payload(page)["xyxy"]) == n0 + n
    wait_saved(page)
    assert len(image_annotation(served, 3)["xyxy"]) == n0 + n
    page.keyboard.press("Control+z")  # one edit: one undo takes every added box back
    assert len(payload(page)["xyxy"]) == n0
    wait_saved(page)
    assert len(image_annotation(served, 3)["xyxy"]) == n0


def test_o_pressed_before_the_deployment_is_known_shows_them_once_it_is(page, served: Served) -> None:  # noqa: ANN001
    """On a loaded server the editor can take keys before it knows what is deployed: O is not lost then."""
    with admin_client(served.url) as client:
        n = len(client.get(f"/projects/{served.name}/images/2/predictions").raise_for_status().json()["detections"])
    held = []
    # the answer waits until the key was pressed
    page.route("**/api/v1/projects/*/deployment", lambda route: held.append(route))
    page.set_default_timeout(60_000)
    page.goto(f"{served.url}/#/p/{served.name}/annotate/2")
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 2 && window.vlEditor.history")
    assert len(held) == 1 and page.evaluate(f"{LAYER}.deployment === undefined")
    page.keyboard.press("o")
    held[0].continue_()
    wait_shown(page, n)
    page.unroute("**/api/v1/projects/*/deployment")


def test_classifier_labels_with_scores_in_the_panel(new_page, bccd_dir: Path, cell_package: Path,  # noqa: F811, ANN001
                                                    tmp_path: Path, shot) -> None:
    path = _plain_project(bccd_dir, tmp_path / "projects", "cells-cls", "classification", CELL_CLASSES, n=2)
    shutil.unpack_archive(cell_package, path / "packages" / "cells", format="zip")  # the package is one .vlpkg file
    with serve([path], projects_dir=path.parent) as server:
        with admin_client(server.url) as client:
            client.post("/projects/cells-cls/deployment", json={"package": "cells"}).raise_for_status()
            expected = client.get("/projects/cells-cls/images/1/predictions").raise_for_status().json()
            before = image(client, "cells-cls", 1)
        page = new_page()
        sign_in(page, server.url)
        open_editor(page, server.url, "cells-cls", 1)
        panel = page.locator(PANEL)
        panel.get_by_text("Model predictions: cells").wait_for()
        page.keyboard.press("o")
        panel.locator(".score-list").wait_for()
        names = panel.locator(".score-name").all_inner_texts()
        assert names == [s["name"] for s in sorted(expected["scores"], key=lambda s: -s["score"])]
        assert panel.locator("li.kept .score-name").all_inner_texts() == [expected["label"]["name"]]
        assert f"{expected['label']['name']} (" in panel.inner_text()
        with admin_client(server.url) as client:  # each bar has its class's colour
            colours = {c["name"]: c["colour"] for c in client.get("/projects/cells-cls/classes").json()}
        bars = panel.locator(".score-bar > span").evaluate_all(
            "(spans) => spans.map((s) => getComputedStyle(s).backgroundColor)")
        assert bars == [rgb(colours[name]) for name in names]
        assert payload(page) == before["annotation"]
        shot(page, "editor-predictions-classifier")
        with admin_client(server.url) as client:
            assert image(client, "cells-cls", 1)["head_revision"] == before["head_revision"]
