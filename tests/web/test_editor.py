"""The annotation editor as a person uses it: draw with the mouse, keys, undo, reload, conflicts, a server that goes
away and comes back, every task type (classification, tagging, detection, video tracks, polygons, instance masks,
semantic masks), a large image served as tiles, and 5,000 boxes on one image.

Shapes are drawn with real mouse events at screen positions computed from image pixels (the page's map does the
conversion); results are checked through the API. Timings (opening 5,000 boxes, frame times while dragging and
panning, the next image, the tiled image's first view) are printed (``-s``), never asserted.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import (
    ADMIN_PASSWORD,
    USER_PASSWORD,
    Served,
    bccd_subset,
    make_bccd_project,
    serve,
    sign_in,
)
from visionloop.core.imageio import probe
from visionloop.ingest import import_source
from visionloop.storage import NewImage, Project
from visionloop.storage.users import ensure_admin

API = "/api/v1"
TIMEOUT = 120.0
"""Seconds an API call of a test may take (the machine may be loaded; nothing here is timed)."""


# ---- helpers ----------------------------------------------------------------------------------------------------


def token_of(url: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> dict[str, str]:
    r = httpx.post(f"{url}{API}/auth/token", data={"username": user, "password": password}, timeout=TIMEOUT)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def detail(url: str, project: str, image_id: int, headers: dict[str, str]) -> dict:
    r = httpx.get(f"{url}{API}/projects/{project}/images/{image_id}", headers=headers, timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()


def class_ids(url: str, project: str, headers: dict[str, str]) -> dict[str, int]:
    r = httpx.get(f"{url}{API}/projects/{project}/classes", headers=headers, timeout=TIMEOUT)
    r.raise_for_status()
    return {c["name"]: c["id"] for c in r.json()}


def open_editor(page, url: str, project: str, image_id: int) -> None:  # noqa: ANN001
    page.set_default_timeout(60_000)  # waits for the page to get somewhere, generous on a loaded machine
    page.goto(f"{url}/#/p/{project}/annotate/{image_id}")
    page.wait_for_function(f"window.vlEditor && window.vlEditor.id === {image_id} && window.vlEditor.history")
    page.wait_for_function("window.vlEditor.timings.rendered !== undefined")


def screen(page, x: float, y: float) -> tuple[float, float]:  # noqa: ANN001
    """Where image pixel (x, y) is on the screen."""
    return tuple(page.evaluate("""([x, y]) => {
        const ed = window.vlEditor;
        const [px, py] = ed.canvas.map.getPixelFromCoordinate(ed.canvas.toMap([x, y]));
        const r = ed.canvas.map.getTargetElement().getBoundingClientRect();
        return [r.left + px, r.top + py];
    }""", [x, y]))


def drag(page, a: tuple[float, float], b: tuple[float, float], steps: int = 8) -> None:  # noqa: ANN001
    """Press at image pixel ``a``, move to ``b`` and release."""
    page.mouse.move(*screen(page, *a))
    page.mouse.down()
    page.mouse.move(*screen(page, *b), steps=steps)
    page.mouse.up()


def click(page, x: float, y: float) -> None:  # noqa: ANN001
    page.mouse.click(*screen(page, x, y))


def wait_saved(page, timeout: float = 60_000) -> None:  # noqa: ANN001
    page.wait_for_function("document.querySelector('.ed-status').dataset.state === 'saved'", timeout=timeout)


def payload(page) -> dict:  # noqa: ANN001
    return page.evaluate("window.vlEditor.history.current")


# ---- detection: draw, change class, undo, reload ------------------------------------------------------------------


def test_draw_three_boxes_change_class_undo_and_reload(page, served: Served, shot) -> None:
    headers = token_of(served.url)
    classes = class_ids(served.url, served.name, headers)
    before = detail(served.url, served.name, 2, headers)["annotation"]
    n0 = len(before["xyxy"])
    open_editor(page, served.url, served.name, 2)
    shot(page, "editor-detection-open")
    drag(page, (20, 20), (90, 80))            # box A (class 1: the first class)
    drag(page, (500, 380), (600, 460))        # box B
    click(page, 55, 50)                       # select A again
    page.keyboard.press("3")                  # A becomes the third class
    drag(page, (300, 20), (360, 70))          # box C
    assert len(payload(page)["xyxy"]) == n0 + 3
    shot(page, "editor-detection-three-boxes")
    page.keyboard.press("Control+z")          # C is undone
    got = payload(page)
    assert len(got["xyxy"]) == n0 + 2
    wait_saved(page)
    third = sorted(classes.items(), key=lambda kv: kv[1])[2][1]

    page.reload()
    page.wait_for_function("window.vlEditor && window.vlEditor.history")
    head = detail(served.url, served.name, 2, headers)["annotation"]
    assert len(head["xyxy"]) == n0 + 2
    new = [(box, c) for box, c in zip(head["xyxy"], head["class_id"], strict=True) if box not in before["xyxy"]]
    assert len(new) == 2
    by_x = sorted(new, key=lambda bc: bc[0][0])
    assert by_x[0][0] == pytest.approx([20, 20, 90, 80], abs=2) and by_x[0][1] == third
    assert by_x[1][0] == pytest.approx([500, 380, 600, 460], abs=2)
    assert payload(page) == head  # the reloaded editor shows what the server has
    shot(page, "editor-detection-reloaded")


def test_an_edit_made_just_before_a_reload_is_saved(page, served: Served) -> None:
    headers = token_of(served.url)
    image = 10
    open_editor(page, served.url, served.name, image)
    n0 = len(payload(page)["xyxy"])
    drag(page, (30, 30), (100, 90))
    page.reload()  # at once: the edit has not even left its 300 ms wait
    page.wait_for_function(f"window.vlEditor && window.vlEditor.id === {image} && window.vlEditor.history")
    assert len(payload(page)["xyxy"]) == n0 + 1
    wait_saved(page)
    head = detail(served.url, served.name, image, headers)["annotation"]
    assert len(head["xyxy"]) == n0 + 1 and [30, 30, 100, 90] in [[round(v) for v in b] for b in head["xyxy"]]


def test_keys_overlay_lists_every_action(page, served: Served, shot) -> None:
    open_editor(page, served.url, served.name, 3)
    page.keyboard.press("?")
    overlay = page.locator(".ed-keys")
    overlay.wait_for()
    text = overlay.inner_text()
    for needed in ["Undo", "Redo", "Next image", "Previous image", "Delete the selected shape", "Fit the image",
                   "Copy the previous image", "Box tool"]:
        assert needed in text, needed
    shot(page, "editor-keys")
    page.keyboard.press("Escape")
    assert page.locator(".ed-keys").count() == 0


# ---- a second user saves in between ---------------------------------------------------------------------------------


def test_conflict_shows_both_versions_and_merges(page, served: Served, shot) -> None:
    admin = token_of(served.url)
    image = 4
    open_editor(page, served.url, served.name, image)
    start = detail(served.url, served.name, image, admin)
    # bob saves a box while the admin has the image open
    served.add_user("bob", "annotator")
    bob = token_of(served.url, "bob", USER_PASSWORD)
    theirs = dict(start["annotation"])
    theirs["xyxy"] = [*theirs["xyxy"], [400, 30, 470, 90]]
    theirs["class_id"] = [*theirs["class_id"], theirs["class_id"][0]]
    if "attributes" in theirs:
        theirs["attributes"] = [*theirs["attributes"], {}]
    r = httpx.put(f"{served.url}{API}/projects/{served.name}/images/{image}/annotation", headers=bob,
                  json={"payload": theirs, "base_revision": start["head_revision"]}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    drag(page, (30, 300), (110, 380))  # the admin's edit, based on the old revision
    dialog = page.locator(".ed-conflict-dialog")
    dialog.wait_for()
    text = dialog.inner_text()
    assert "Theirs" in text and "Yours" in text and "bob" in text
    assert dialog.locator("canvas").count() == 2
    page.wait_for_timeout(300)  # the image drawn under both versions
    shot(page, "editor-conflict")
    page.click("[data-choice=merge]")
    wait_saved(page)
    head = detail(served.url, served.name, image, admin)
    assert head["head_revision"] == r.json()["revision"] + 1
    assert [400, 30, 470, 90] in head["annotation"]["xyxy"]  # theirs kept
    assert any(b == pytest.approx([30, 300, 110, 380], abs=2) for b in head["annotation"]["xyxy"])  # and mine
    assert len(head["annotation"]["xyxy"]) == len(start["annotation"]["xyxy"]) + 2


def test_a_conflict_of_another_image_is_announced_and_resolved_there(page, served: Served, shot) -> None:
    headers = token_of(served.url)
    open_editor(page, served.url, served.name, 12)
    before = detail(served.url, served.name, 11, headers)
    # an edit of image 11 waiting in this browser, based on a revision older than the head
    page.evaluate("""async () => {
        const queue = await import('/static/js/offline.js');
        await queue.enqueue('bccd', 11, {type: 'boxes', xyxy: [[5, 5, 50, 50]], class_id: [1]}, 0);
    }""")
    note = page.locator(".toast", has_text="Someone else saved an image")
    note.wait_for()
    shot(page, "editor-conflict-elsewhere")
    note.locator("a").click()
    page.locator(".ed-conflict-dialog").wait_for()  # opening that image asks which version to keep
    page.click("[data-choice=theirs]")
    page.wait_for_function("document.getElementById('pending-edits').hidden")
    wait_saved(page)
    after = detail(served.url, served.name, 11, headers)
    assert after["head_revision"] == before["head_revision"] and after["annotation"] == before["annotation"]


# ---- the server goes away in the middle of a session ------------------------------------------------------------


@pytest.fixture
def own_project(bccd_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "projects"
    folder.mkdir()
    return make_bccd_project(bccd_dir, folder, 3, name="offline")


def test_edits_made_while_the_server_is_down_are_all_saved(new_page, own_project: Path, shot) -> None:
    server_cm = serve([own_project], projects_dir=own_project.parent)
    server = server_cm.__enter__()
    url, port = server.url, server.port
    page = new_page()
    try:
        sign_in(page, url)
        headers = token_of(url)
        n0 = len(detail(url, "offline", 1, headers)["annotation"]["xyxy"])
        open_editor(page, url, "offline", 1)
        drag(page, (20, 20), (80, 70))
        wait_saved(page)
        server_cm.__exit__(None, None, None)  # the server stops

        drag(page, (500, 20), (600, 90))
        page.keyboard.press("2")  # the new box's class
        drag(page, (520, 380), (610, 460))
        drag(page, (250, 400), (320, 470))
        page.wait_for_function("document.querySelector('.ed-status').dataset.state === 'offline'")
        status = page.inner_text(".ed-status")
        assert "waiting to be sent" in status
        page.wait_for_function("!document.getElementById('pending-edits').hidden")
        shot(page, "editor-offline-pending")
        mine = payload(page)

        # the same project on the same port again: the queue sends everything by itself
        server_cm = serve([own_project], projects_dir=own_project.parent, port=port)
        server = server_cm.__enter__()
        assert server.port == port
        wait_saved(page)
        page.wait_for_function("document.getElementById('pending-edits').hidden")
        head = detail(url, "offline", 1, headers)["annotation"]
        assert head == mine and len(head["xyxy"]) == n0 + 4
        shot(page, "editor-offline-sent")

        # down again; this time the tab is closed before the server is back: the next visit sends the edit
        server_cm.__exit__(None, None, None)
        drag(page, (150, 150), (210, 200))
        page.wait_for_function("document.querySelector('.ed-status').dataset.state === 'offline'")
        mine = payload(page)
        context = page.context
        page.close()
        server_cm = serve([own_project], projects_dir=own_project.parent, port=port)
        server = server_cm.__enter__()
        again = context.new_page()
        sign_in(again, url)  # a new tab: the app loads offline.js, which sends what waits
        again.wait_for_function("document.getElementById('pending-edits').hidden")
        for _ in range(50):
            head = detail(url, "offline", 1, token_of(url))["annotation"]
            if len(head["xyxy"]) == n0 + 5:
                break
            again.wait_for_timeout(200)
        assert head == mine
    finally:
        server_cm.__exit__(None, None, None)


# ---- classification and segmentation projects ---------------------------------------------------------------------


def _plain_project(bccd_dir: Path, folder: Path, name: str, task: str, classes: list[str], n: int = 3) -> Path:
    source = bccd_subset(bccd_dir, folder.parent / f"{name}-source", n) / "BCCD" / "JPEGImages"
    path = folder / name
    with Project.create(path, task=task, name=name) as p:
        p.class_ids(classes)
        import_source(p, source, format="images", progress=False)
        ensure_admin(p, password=ADMIN_PASSWORD)
    return path


def _video_project(bccd_dir: Path, folder: Path, name: str, frames: int = 4) -> Path:
    """A detection project whose images are the frames 0..frames-1 of one video (BCCD pictures stand in)."""
    path = folder / name
    with Project.create(path, task="detection", name=name) as p:
        p.class_ids(["car", "person"])
        for i, f in enumerate(sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))[:frames]):
            data = f.read_bytes()
            info = probe(data, name=f.name)
            p.add_images([NewImage(sha256=p.blobs.put(data), width=info.width, height=info.height, format=info.format,
                                   name=f"street/{i:04d}.jpg", video_id="street", frame_index=i)])
        ensure_admin(p, password=ADMIN_PASSWORD)
    return path


@pytest.fixture(scope="module")
def task_projects(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("task-projects")
    paths = [_plain_project(bccd_dir, folder, "smears", "classification", ["healthy", "infected", "unclear"]),
             _plain_project(bccd_dir, folder, "cells-seg", "segmentation", ["wbc", "rbc"]),
             _plain_project(bccd_dir, folder, "smear-tags", "tagging", ["blurry", "stained", "overexposed"]),
             _video_project(bccd_dir, folder, "street")]
    with serve(paths, projects_dir=folder) as server:
        yield Served(url=server.url, path=paths[0], name="smears", projects_dir=folder, server=server)


def editor_on(new_page, served: Served, project: str, image_id: int) -> tuple[object, dict, dict]:  # noqa: ANN001
    """A new page signed in as the admin with the editor open on the image; also the admin's headers and the
    project's class ids by name."""
    page = new_page()
    sign_in(page, served.url)
    headers = token_of(served.url)
    classes = class_ids(served.url, project, headers)
    open_editor(page, served.url, project, image_id)
    return page, headers, classes


def test_classification_with_keys_and_next_image(new_page, task_projects: Served, shot) -> None:
    page, headers, classes = editor_on(new_page, task_projects, "smears", 1)
    assert "Not labelled yet" in page.inner_text(".ed-banner")
    page.keyboard.press("2")
    assert page.inner_text(".ed-banner") == "infected"
    shot(page, "editor-classification")
    page.wait_for_function("window.vlEditor.nextId === 2")
    pressed = page.evaluate("performance.now()")
    page.keyboard.press("d")  # next image (prefetched)
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 2 && window.vlEditor.timings.rendered")
    t = page.evaluate("window.vlEditor.timings")
    print(f"next image (prefetched): shown {t['shown'] - pressed:.0f} ms, drawn {t['rendered'] - pressed:.0f} ms "
          "after the key press")
    page.keyboard.press("1")
    page.keyboard.press("3")  # changed my mind: the last key wins
    wait_saved(page)
    assert detail(task_projects.url, "smears", 1, headers)["annotation"] == {
        "type": "label", "class_id": classes["infected"]}
    assert detail(task_projects.url, "smears", 2, headers)["annotation"] == {
        "type": "label", "class_id": classes["unclear"]}
    page.keyboard.press("Control+z")
    wait_saved(page)
    assert detail(task_projects.url, "smears", 2, headers)["annotation"]["class_id"] == classes["healthy"]
    # label, leave and come straight back: the page shows the new label, not what it fetched ahead before the save
    page.keyboard.press("2")
    page.keyboard.press("a")
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 1 && window.vlEditor.history")
    page.keyboard.press("d")
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 2 && window.vlEditor.history")
    assert page.inner_text(".ed-banner") == "infected"


def test_an_image_left_while_loading_takes_no_keys(new_page, task_projects: Served) -> None:
    page, headers, classes = editor_on(new_page, task_projects, "smears", 1)
    before = detail(task_projects.url, "smears", 2, headers)["head_revision"]
    # image 2 is left for image 3 while its page still loads (the first answer it waits for is held back a second)
    held = []

    def hold_once(route) -> None:  # noqa: ANN001
        if not held:
            held.append(route.request.url)
            time.sleep(1.0)
        route.continue_()

    page.route("**/api/v1/projects/smears/classes", hold_once)
    page.evaluate("location.hash = '#/p/smears/annotate/2'; setTimeout(() => { location.hash = "
                  "'#/p/smears/annotate/3'; }, 300)")
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 3 && window.vlEditor.history")
    page.wait_for_timeout(1500)  # image 2's record has come meanwhile
    page.keyboard.press("1")
    wait_saved(page)
    assert detail(task_projects.url, "smears", 3, headers)["annotation"]["class_id"] == classes["healthy"]
    assert detail(task_projects.url, "smears", 2, headers)["head_revision"] == before  # image 2 heard nothing


def test_segmentation_polygon_and_vertex_edit(new_page, task_projects: Served, shot) -> None:
    page, headers, classes = editor_on(new_page, task_projects, "cells-seg", 1)
    page.keyboard.press("2")  # rbc
    for x, y in [(100, 100), (220, 90), (240, 200), (120, 220)]:
        click(page, x, y)
        page.wait_for_timeout(120)  # separate clicks, not a double click
    click(page, 100, 100)  # the first point again closes the outline
    page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 1")
    shot(page, "editor-segmentation-polygon")
    got = payload(page)
    assert got["type"] == "instances" and got["class_id"] == [classes["rbc"]]
    ring = got["segmentations"][0]["polygons"][0]
    assert len(ring) == 8 and ring[:2] == pytest.approx([100, 100], abs=2)
    drag(page, (240, 200), (300, 260))  # the selected outline's vertex, moved (Modify)
    page.wait_for_function("window.vlEditor.history.current.xyxy[0][2] > 290")
    wait_saved(page)
    head = detail(task_projects.url, "cells-seg", 1, headers)["annotation"]
    assert head["segmentations"][0]["polygons"][0][4:6] == pytest.approx([300, 260], abs=2)
    assert head["xyxy"][0] == pytest.approx([100, 90, 300, 260], abs=2)


# ---- 5,000 boxes -----------------------------------------------------------------------------------------------------


def frame_times(page, action) -> list[float]:  # noqa: ANN001
    """The times between the page's animation frames (ms) while ``action()`` runs."""
    page.evaluate("""() => { window.vlFrames = []; window.vlStop = false; let last = performance.now();
        const tick = (now) => { window.vlFrames.push(now - last); last = now;
            if (window.vlFrames.length < 100000 && !window.vlStop) requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }""")
    action()
    page.evaluate("window.vlStop = true")
    return page.evaluate("window.vlFrames")[2:]


def test_five_thousand_boxes_open_and_drag(page, served: Served, shot) -> None:
    headers = token_of(served.url)
    image = 5
    d = detail(served.url, served.name, image, headers)
    w, h = d["width"], d["height"]
    cols, rows = 100, 50
    xyxy = [[round(i * w / cols + 1, 2), round(j * h / rows + 1, 2), round((i + 1) * w / cols - 1, 2),
             round((j + 1) * h / rows - 1, 2)] for j in range(rows) for i in range(cols)]
    first = min(class_ids(served.url, served.name, headers).values())
    r = httpx.put(f"{served.url}{API}/projects/{served.name}/images/{image}/annotation", headers=headers,
                  json={"payload": {"type": "boxes", "xyxy": xyxy, "class_id": [first] * len(xyxy)},
                        "base_revision": d["head_revision"]}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    page.goto(f"{served.url}/#/p/{served.name}/images")
    page.evaluate(f"location.hash = '#/p/{served.name}/annotate/{image}'")
    page.wait_for_function(f"window.vlEditor && window.vlEditor.id === {image} && window.vlEditor.timings.rendered")
    t = page.evaluate("window.vlEditor.timings")
    print("5,000 boxes, ms after the editor started: " + ", ".join(
        f"{k} {t[k] - t['start']:.0f}" for k in ["fetched", "features", "loaded", "history", "shown", "rendered"]))
    assert len(payload(page)["xyxy"]) == len(xyxy)
    page.keyboard.press("v")  # select tool: a drag inside a box moves it
    cx, cy = (xyxy[2525][0] + xyxy[2525][2]) / 2, (xyxy[2525][1] + xyxy[2525][3]) / 2
    click(page, cx, cy)
    frames = frame_times(page, lambda: drag(page, (cx, cy), (cx + 150, cy + 80), steps=60))
    shot(page, "editor-5000-boxes")
    page.keyboard.down(" ")
    pan = frame_times(page, lambda: drag(page, (300, 200), (150, 120), steps=60))
    page.keyboard.up(" ")
    for what, times in [("dragging a box", frames), ("panning", pan)]:
        p95 = statistics.quantiles(times, n=20)[18] if len(times) >= 20 else max(times)
        print(f"{what} over 5,000 boxes: {len(times)} frames, median {statistics.median(times):.1f} ms, "
              f"p95 {p95:.1f} ms")
    wait_saved(page)
    head = detail(served.url, served.name, image, headers)["annotation"]
    moved = head["xyxy"][2525]
    assert moved[0] == pytest.approx(xyxy[2525][0] + 150, abs=3) and moved[1] == pytest.approx(xyxy[2525][1] + 80, abs=3)
    assert len(head["xyxy"]) == len(xyxy)


def test_copy_previous_image_keeps_track_ids(page, served: Served) -> None:
    headers = token_of(served.url)
    prev = detail(served.url, served.name, 6, headers)
    tracked = {"type": "boxes", "xyxy": [[10, 10, 60, 60], [100, 100, 150, 160]],
               "class_id": prev["annotation"]["class_id"][:2], "track_id": [7, 9]}
    r = httpx.put(f"{served.url}{API}/projects/{served.name}/images/6/annotation", headers=headers,
                  json={"payload": tracked, "base_revision": prev["head_revision"]}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    cur = detail(served.url, served.name, 7, headers)
    r = httpx.put(f"{served.url}{API}/projects/{served.name}/images/7/annotation", headers=headers,
                  json={"payload": {"type": "boxes", "xyxy": [], "class_id": []},
                        "base_revision": cur["head_revision"]}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    open_editor(page, served.url, served.name, 7)
    page.wait_for_function("window.vlEditor.prevId === 6")
    page.keyboard.press("c")
    page.wait_for_function("window.vlEditor.history.current.xyxy.length === 2")
    wait_saved(page)
    head = detail(served.url, served.name, 7, headers)["annotation"]
    assert head["track_id"] == [7, 9] and head["xyxy"] == tracked["xyxy"]


def test_semantic_mask_brush_fill_and_eraser(new_page, task_projects: Served, shot) -> None:
    page, headers, classes = editor_on(new_page, task_projects, "cells-seg", 2)
    page.keyboard.press("m")  # an empty image may take a class mask instead of outlines, and back
    page.wait_for_function("window.vlEditor && window.vlEditor.mode === 'semantic' && window.vlEditor.history")
    page.click("[data-mode=instances]")
    page.wait_for_function("window.vlEditor && window.vlEditor.mode === 'instances' && window.vlEditor.history")
    page.click("[data-mode=semantic]")
    page.wait_for_function("window.vlEditor && window.vlEditor.mode === 'semantic' && window.vlEditor.history")
    page.keyboard.press("1")  # wbc
    for _ in range(3):
        page.keyboard.press("]")  # a larger brush
    drag(page, (100, 100), (300, 100), steps=12)
    page.keyboard.press("e")  # the eraser takes a bite out of the stroke
    drag(page, (200, 90), (200, 110), steps=3)
    page.keyboard.press("2")  # rbc: a closed frame painted, then filled inside
    page.keyboard.press("r")
    for a, b in [((400, 300), (500, 300)), ((500, 300), (500, 400)), ((500, 400), (400, 400)),
                 ((400, 400), (400, 300))]:
        drag(page, a, b, steps=6)
    page.keyboard.press("g")
    click(page, 450, 350)
    wait_saved(page)
    shot(page, "editor-semantic")
    from visionloop.core.annotations import annotation_from_payload

    head = detail(task_projects.url, "cells-seg", 2, headers)["annotation"]
    mask = annotation_from_payload(head).mask
    assert mask.shape == (480, 640)
    assert mask[100, 120] == classes["wbc"] and mask[100, 280] == classes["wbc"]
    assert mask[100, 200] == 255  # erased
    assert mask[350, 450] == classes["rbc"]  # filled inside the frame
    assert mask[10, 10] == 255 and mask[350, 600] == 255  # the rest stays unlabelled


def test_tagging_keys_toggle_tags(new_page, task_projects: Served, shot) -> None:
    page, headers, classes = editor_on(new_page, task_projects, "smear-tags", 1)
    assert "No tags" in page.inner_text(".ed-banner")
    for key in ["1", "3", "2", "1"]:  # blurry on, overexposed on, stained on, blurry off
        page.keyboard.press(key)
    assert page.inner_text(".ed-banner") == "stained · overexposed"
    wait_saved(page)
    shot(page, "editor-tagging")
    assert detail(task_projects.url, "smear-tags", 1, headers)["annotation"] == {
        "type": "tags", "class_ids": sorted([classes["stained"], classes["overexposed"]])}


def test_video_frames_keep_track_ids_and_play(new_page, task_projects: Served, shot) -> None:
    page, headers, _ = editor_on(new_page, task_projects, "street", 1)
    assert "street frame 0" in page.inner_text(".ed-pos")
    drag(page, (100, 100), (200, 180))
    drag(page, (300, 200), (380, 300))
    assert payload(page)["track_id"] == [1, 2]  # every box of a video frame has a track
    page.keyboard.press("d")
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 2 && window.vlEditor.prevId === 1")
    page.keyboard.press("c")  # the previous frame's boxes, tracks kept
    page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 2")
    click(page, 150, 140)  # select track 1's box
    drag(page, (150, 140), (170, 150))  # and move it: the object moved a little between the frames
    wait_saved(page)
    second = detail(task_projects.url, "street", 2, headers)["annotation"]
    assert second["track_id"] == [1, 2]
    assert second["xyxy"][0] == pytest.approx([120, 110, 220, 190], abs=2)
    shot(page, "editor-video-frame")
    page.keyboard.press("k")  # play: frames 3 and 4 follow on their own, and it stops at the last one
    page.wait_for_function("window.vlEditor && window.vlEditor.id === 4 && window.vlEditor.history")
    assert "street frame 3" in page.inner_text(".ed-pos")


def test_resize_by_handle_delete_undo_redo(page, served: Served) -> None:
    headers = token_of(served.url)
    image = 8
    open_editor(page, served.url, served.name, image)
    n0 = len(payload(page)["xyxy"])
    page.keyboard.press("f")  # fit (already fitted: nothing moves)
    drag(page, (40, 40), (140, 120))
    drag(page, (140, 120), (180, 160))  # the selected box's bottom-right handle
    got = payload(page)
    assert got["xyxy"][-1] == pytest.approx([40, 40, 180, 160], abs=2)
    page.keyboard.press("Delete")
    assert len(payload(page)["xyxy"]) == n0
    page.keyboard.press("Control+z")
    assert payload(page)["xyxy"][-1] == pytest.approx([40, 40, 180, 160], abs=2)
    page.keyboard.press("Control+y")
    assert len(payload(page)["xyxy"]) == n0
    page.keyboard.press("Control+Shift+z")  # nothing left to redo
    page.keyboard.press("Control+z")
    wait_saved(page)
    assert detail(served.url, served.name, image, headers)["annotation"]["xyxy"][-1] == pytest.approx(
        [40, 40, 180, 160], abs=2)


def test_viewer_sees_but_cannot_edit(new_page, served: Served, shot) -> None:
    served.add_user("vera", "viewer")
    page = new_page()
    sign_in(page, served.url, "vera", USER_PASSWORD)
    open_editor(page, served.url, served.name, 9)
    before = payload(page)
    assert "View only" in page.inner_text(".ed-bar")
    drag(page, (40, 40), (140, 120))
    page.keyboard.press("Delete")
    assert payload(page) == before
    assert not page.locator(".ed-status").is_visible()  # nothing to save
    shot(page, "editor-viewer")


@pytest.fixture(scope="module")
def large_image_project(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One 4800x3600 picture (a BCCD image enlarged 7.5x): larger than 4096 px, so it is served as tiles."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("large")
    source = folder.parent / f"{folder.name}-source"
    source.mkdir()
    small = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))[0]
    Image.open(small).resize((4800, 3600)).save(source / "large.jpg", quality=85)
    path = folder / "large"
    with Project.create(path, task="detection", name="large") as p:
        p.class_ids(["cell"])
        import_source(p, source, format="images", progress=False)
        ensure_admin(p, password=ADMIN_PASSWORD)
    with serve([path], projects_dir=folder) as server:
        yield Served(url=server.url, path=path, name="large", projects_dir=folder, server=server)


def test_a_large_image_opens_as_tiles(new_page, large_image_project: Served, shot) -> None:
    page = new_page()
    sign_in(page, large_image_project.url)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    headers = token_of(large_image_project.url)
    assert detail(large_image_project.url, "large", 1, headers)["tiles"] is not None
    open_editor(page, large_image_project.url, "large", 1)
    t = page.evaluate("window.vlEditor.timings")
    tiles = [u for u in asked if "/tiles/" in u]
    print(f"4800x3600 image as tiles: first view drawn {t['rendered'] - t['start']:.0f} ms after the editor started, "
          f"{len(tiles)} tiles")
    assert tiles and not any(u.endswith("/file") for u in asked)  # the full image is never downloaded
    drag(page, (1000, 1000), (3000, 2500))  # image pixels: the box is where it was drawn on the full resolution
    page.mouse.move(*screen(page, 2000, 1800))
    for _ in range(4):
        page.mouse.wheel(0, -300)  # zoom in: finer tiles come
    page.wait_for_function("window.vlEditor.canvas.map.getView().getResolution() < 4")
    page.wait_for_timeout(800)
    shot(page, "editor-large-zoomed")
    wait_saved(page)
    head = detail(large_image_project.url, "large", 1, headers)["annotation"]
    assert head["xyxy"] == [pytest.approx([1000, 1000, 3000, 2500], abs=20)]


def test_instance_mask_brush_and_eraser(new_page, task_projects: Served, shot) -> None:
    page, headers, classes = editor_on(new_page, task_projects, "cells-seg", 3)
    page.keyboard.press("2")  # rbc
    page.keyboard.press("r")  # the brush starts a new mask instance
    for _ in range(3):
        page.keyboard.press("]")
    drag(page, (100, 200), (300, 200), steps=12)
    page.keyboard.press("e")  # the eraser cuts the selected mask in two
    drag(page, (200, 180), (200, 220), steps=4)
    page.keyboard.press("r")
    drag(page, (400, 300), (420, 320), steps=3)  # the same instance grows a second blob
    page.wait_for_function("window.vlEditor.history.current && window.vlEditor.history.current.xyxy.length === 1")
    wait_saved(page)
    shot(page, "editor-instance-mask")
    from visionloop.core.annotations import annotation_from_payload

    head = detail(task_projects.url, "cells-seg", 3, headers)["annotation"]
    assert head["type"] == "instances" and head["class_id"] == [classes["rbc"]] and "rle" in head["segmentations"][0]
    mask = annotation_from_payload(head).mask(0, 480, 640)
    assert mask[200, 120] and mask[200, 280] and mask[310, 410]
    assert not mask[200, 200] and not mask[50, 50]
    ys, xs = mask.nonzero()
    assert head["xyxy"][0] == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=0.01)


def test_space_drag_pans_wheel_zooms_and_f_fits(page, served: Served) -> None:
    open_editor(page, served.url, served.name, 11)
    n0 = len(payload(page)["xyxy"])
    view = "window.vlEditor.canvas.map.getView()"
    page.keyboard.press("f")
    center = page.evaluate(f"{view}.getCenter()")
    page.keyboard.down(" ")
    drag(page, (300, 200), (200, 150))  # with Space held the box tool pans instead of drawing
    page.keyboard.up(" ")
    moved = page.evaluate(f"{view}.getCenter()")
    assert moved[0] > center[0] + 50 and len(payload(page)["xyxy"]) == n0
    resolution = page.evaluate(f"{view}.getResolution()")
    page.mouse.move(*screen(page, 320, 240))
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"{view}.getResolution() < {resolution} * 0.8 && !{view}.getAnimating()")
    page.wait_for_timeout(300)  # the wheel's zoom has settled
    page.keyboard.press("f")
    page.wait_for_function(f"Math.abs({view}.getResolution() - {resolution}) < 0.01")
    assert page.evaluate(f"{view}.getCenter()") == pytest.approx(center, abs=1)
