"""Web platform benchmark: the figures of the browser app, each beside the naive approach it replaced, measured in
the same run, in Debian's Chromium (Playwright) against a real server on 127.0.0.1 (``PlatformThread``).

1. ``open_5000_boxes``: a BCCD image with a synthetic 5,000-box annotation (saved through the API) opened in the
   editor (a page load: navigation start to the editor's ``rendercomplete``, ``vlEditor.timings.rendered``), against
   a naive page (``ui_pages/svg_boxes.html``) that draws the same image and boxes as one SVG ``<rect>`` node each.
   ``drag_5000_boxes``: the p95 of requestAnimationFrame deltas while the mouse drags one box among them, in both.
2. ``next_image``: the editor's Next button to the next image drawn, with the prefetch (the next image's detail and
   bytes fetched while the person works on this one), against an in-app jump to an image nobody prefetched (the
   browser's HTTP cache off), and a cold page load of that image (HTTP cache off) as a second baseline.
3. ``first_grid_page``: a 100,000-image project (rows by SQL bulk insert, ``tests/serving/big_projects.py``; the
   first images' blobs are real BCCD photographs) from the projects page to the images page's first page of cards and
   its count (HTTP cache off); then the visible thumbnails loaded. Naive: a grid that loads the whole list of ids
   before it shows anything (the requests alone). ``deep_page_keyset_vs_offset``: a page 95 % into the list fetched
   with ``OFFSET`` against the same page by keyset (``after=``), from the page, unfiltered and filtered by a class.
4. ``large_image_first_view``: a 16000x12000 mosaic of BCCD photographs (``tests/tile_images.bccd_mosaic``, as
   ``benchmarks/tiles.py``) imported with its pyramid, opened in the editor (HTTP cache off) until its tiles are
   drawn, against downloading, decoding and drawing the whole file (``tiles._SHOW``). With the peak memory of the
   pyramid build, from ``results/tiles.json`` (the same image and code) or measured here.
5. ``save_round_trip``: one edit (one box moved by a pixel) saved from the page through the editor's own path
   (``offline.enqueue``: IndexedDB, then ``PUT .../annotation``) until the server's answer, on a BCCD image with its
   real boxes, against the naive whole-state save: the same one-box edit sent as the full 5,000-box annotation.
6. ``--time-to-value``: the newcomer's path on the sample project (``examples/bccd-sample``, as ``visionloop demo``
   makes it): sign in, train with the defaults from the train page, export a package and deploy it from the models
   page, see its prediction on an image; each step's time. Minutes of CPU: only with the flag
   (``--only-time-to-value`` adds it to the figures already in results/ui.json; a run of the figures alone keeps
   the one there, marked ``kept_from``).

Results: benchmarks/results/ui.json (``--smoke``: fewer repeats, saves and mouse moves, a 10,000-image grid, a 5000x3750
large image, ui.smoke.json). Each figure holds ``ours``, ``naive``, what the naive approach is, and ``ratio`` = naive /
ours. No figure passes or fails.

    nice -n 10 python benchmarks/ui.py [--smoke] [--time-to-value | --only-time-to-value]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from common import RESULTS, SHARED, write_result  # noqa: E402
from tests.serving.big_projects import fill_listing_project  # noqa: E402
from tests.tile_images import STREAMING, bccd_mosaic, peak_memory  # noqa: E402
from tests.web.conftest import ADMIN_PASSWORD, make_bccd_project, sign_in  # noqa: E402
from tiles import _SHOW, CHROMIUM, NAIVE_TILES  # noqa: E402

from visionloop.core.settings import Settings  # noqa: E402
from visionloop.ingest import import_source  # noqa: E402
from visionloop.storage import Project  # noqa: E402
from visionloop.storage.users import ensure_admin  # noqa: E402
from visionloop.web import PlatformThread  # noqa: E402

API = "/api/v1"
SCREEN = {"width": 1920, "height": 1080}
BOXES = (100, 50)
"""5,000 boxes: a grid of 100 x 50 over the image."""
DRAGGED = 2525
"""The box dragged (mid-image)."""
SVG_PAGE = ROOT / "ui_pages" / "svg_boxes.html"
BENCH_PATH = "/bench/svg_boxes.html"
WAIT_MS = 300_000
"""A page may take long on a loaded machine; nothing waits that long when it goes well."""

SAVED = "document.querySelector('.ed-status').dataset.state === 'saved'"
_SCREEN_OF = """([x, y]) => {
  if (window.vlScreen) return window.vlScreen(x, y);
  const ed = window.vlEditor;
  const [px, py] = ed.canvas.map.getPixelFromCoordinate(ed.canvas.toMap([x, y]));
  const r = ed.canvas.map.getTargetElement().getBoundingClientRect();
  return [r.left + px, r.top + py];
}"""
_FRAMES_START = """() => { window.vlFrames = []; window.vlStop = false; let last = performance.now();
  const tick = (now) => { window.vlFrames.push(now - last); last = now; if (!window.vlStop) requestAnimationFrame(tick); };
  requestAnimationFrame(tick); }"""
_SAVE = """async ({project, id, payload, base, queue}) => {
  const offline = await import('/static/js/offline.js');
  const start = performance.now();
  if (!queue) {
    const r = await fetch(`/api/v1/projects/${project}/images/${id}/annotation`, {method: 'PUT',
      headers: {'Content-Type': 'application/json', Authorization: `Bearer ${sessionStorage.getItem('vl_token')}`},
      body: JSON.stringify({payload, base_revision: base})});
    const body = await r.json();
    return {ms: performance.now() - start, revision: body.revision, status: r.status};
  }
  const saved = new Promise((resolve) => {
    const on = (e) => { if (e.detail.imageId === id) { offline.events.removeEventListener('saved', on); resolve(e.detail.revision); } };
    offline.events.addEventListener('saved', on);
  });
  await offline.enqueue(project, id, payload, base);
  const revision = await saved;
  return {ms: performance.now() - start, revision, status: 200};
}"""


def median(xs: list[float]) -> float:
    return round(statistics.median(xs), 1)


def p95(xs: list[float]) -> float:
    return round(statistics.quantiles(xs, n=20)[18] if len(xs) >= 20 else max(xs), 1)


def figure(ours: float, naive: float, *, unit: str, naive_is: str, goal: float | None = None,
           **extra: Any) -> dict[str, Any]:
    """One figure: ours, the naive approach's, and naive / ours."""
    return {"ours": ours, "naive": naive, "unit": unit, "ratio": round(naive / ours, 2) if ours else math.inf,
            "naive_is": naive_is, "goal": goal, **extra}


# ---- the projects -----------------------------------------------------------------------------------------------


def five_thousand_boxes(width: int, height: int, class_id: int) -> dict[str, Any]:
    cols, rows = BOXES
    xyxy = [[round(i * width / cols + 1, 2), round(j * height / rows + 1, 2), round((i + 1) * width / cols - 1, 2),
             round((j + 1) * height / rows - 1, 2)] for j in range(rows) for i in range(cols)]
    return {"type": "boxes", "xyxy": xyxy, "class_id": [class_id] * len(xyxy)}


def big_project(folder: Path, images: int, bccd_jpegs: list[Path], real: int) -> tuple[Path, float]:
    """A detection project of ``images`` rows made by SQL bulk insert; the first ``real`` hold BCCD photographs."""
    path = folder / "big"
    with Project.create(path, task="detection", name="big") as p:
        start = time.perf_counter()
        fill_listing_project(p, images=images)
        seconds = time.perf_counter() - start
        for i in range(1, real + 1):  # the rows' blob names, with real photographs (640x480, as the rows say)
            p.blobs.put(bccd_jpegs[(i - 1) % len(bccd_jpegs)].read_bytes(), sha=f"{i:064x}")
        ensure_admin(p, password=ADMIN_PASSWORD)
    return path, seconds


def large_image_project(folder: Path, work: Path, size: tuple[int, int]) -> tuple[Path, Path, float]:
    """A project holding one ``size`` BCCD mosaic imported with its pyramid; returns (project, the JPEG, seconds)."""
    (work / "mosaic").mkdir()
    source = bccd_mosaic(SHARED / "datasets" / "bccd", *size, work / "mosaic" / "mosaic.jpg")
    path = folder / "huge"
    with Project.create(path, task="detection", name="huge", max_image_pixels=250_000_000) as p:
        start = time.perf_counter()
        report = import_source(p, source.parent, format="images")
        seconds = time.perf_counter() - start
        assert report.images_added == 1 and not report.problems, report.to_json()
        ensure_admin(p, password=ADMIN_PASSWORD)
    return path, source, seconds


# ---- the browser ------------------------------------------------------------------------------------------------


@contextmanager
def browser_page(url: str) -> Iterator[Any]:
    """A signed-in page of a fresh context at the screen's size, the naive SVG page routed at ``BENCH_PATH``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            # the benchmark's own predicates are eval'd in the page, which the app's CSP forbids
            context = browser.new_context(viewport=SCREEN, bypass_csp=True)
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.on("pageerror", lambda e: print(f"[page error] {e}"))
            page.route(f"{url}{BENCH_PATH}*", lambda route: route.fulfill(
                status=200, content_type="text/html", body=SVG_PAGE.read_text()))
            sign_in(page, url)
            page.cdp = context.new_cdp_session(page)
            yield page
        finally:
            browser.close()


SHOTS: list[Path] = []
"""Where ``--screenshots`` keeps a picture of each measured view (empty: none taken)."""


def shot(page: Any, name: str) -> None:
    if SHOTS:
        SHOTS[0].mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS[0] / f"ui-{name}.png"))


def http_cache(page: Any, *, on: bool) -> None:
    page.cdp.send("Network.enable")
    page.cdp.send("Network.setCacheDisabled", {"cacheDisabled": not on})


def bearer(page: Any) -> dict[str, str]:
    """The signed-in page's credentials, for the benchmark's own API calls."""
    return {"Authorization": f"Bearer {page.evaluate('sessionStorage.getItem(`vl_token`)')}"}


def editor_url(url: str, project: str, image: int) -> str:
    return f"{url}/#/p/{project}/annotate/{image}"


def load_editor(page: Any, url: str, project: str, image: int) -> dict[str, float]:
    """A page load of the editor on ``image``: ms from navigation start to each of the editor's timings."""
    page.goto("about:blank")
    page.goto(editor_url(url, project, image))
    page.wait_for_function(f"window.vlEditor && window.vlEditor.id === {image} && window.vlEditor.timings.rendered")
    return page.evaluate("window.vlEditor.timings")


def in_app(page: Any, action: str, until: str) -> float:
    """ms from running ``action`` (JS) in the page until ``until`` (a JS condition, checked on every frame)."""
    page.evaluate(f"() => {{ window.vlT0 = performance.now(); window.vlT1 = undefined; {action}; }}")
    page.wait_for_function(f"() => {{ if (!({until})) return false; window.vlT1 ??= performance.now(); return true; }}")
    return page.evaluate("window.vlT1 - window.vlT0")


def editor_shown(project: str, image: int) -> str:
    return (f"window.vlEditor && window.vlEditor.project === '{project}' && window.vlEditor.id === {image} "
            "&& window.vlEditor.timings.rendered")


def drag_frames(page: Any, x: float, y: float, dx: float, dy: float, steps: int) -> list[float]:
    """rAF deltas (ms) while the mouse presses at image pixel (x, y), moves by (dx, dy) in ``steps`` and releases."""
    a = page.evaluate(_SCREEN_OF, [x, y])
    b = page.evaluate(_SCREEN_OF, [x + dx, y + dy])
    page.mouse.move(a[0] - 30, a[1] - 30)  # the pointer comes to the box (a page just loaded has seen none)
    page.mouse.move(*a, steps=3)
    page.mouse.down()
    page.evaluate(_FRAMES_START)
    page.mouse.move(*b, steps=steps)
    page.evaluate("window.vlStop = true")
    page.mouse.up()
    return page.evaluate("window.vlFrames")[2:]


# ---- the figures ------------------------------------------------------------------------------------------------


def load_svg(page: Any, url: str, image: int) -> float:
    """A page load of the naive SVG page on ``image``: ms from navigation start to the image and boxes drawn."""
    page.goto("about:blank")
    page.goto(f"{url}{BENCH_PATH}?project=bccd&image={image}")
    page.wait_for_function("window.vlDone !== undefined")
    return page.evaluate("window.vlDone")


def boxes_figures(page: Any, url: str, image: int, boxes: dict[str, Any], repeat: int, *,
                  steps: int = 90) -> dict[str, Any]:
    """Open and drag, editor (OpenLayers canvas) against every box an SVG node, taken in turns (A, B, A, B...) so
    both meet the same load of the machine."""
    load_editor(page, url, "bccd", image)  # the files of both pages in the browser's cache, as for a returning user
    load_svg(page, url, image)
    opens, svg_opens = [], []
    for _ in range(repeat):
        opens.append(load_editor(page, url, "bccd", image))
        svg_opens.append(load_svg(page, url, image))
    assert page.evaluate("document.querySelectorAll('rect').length") == len(boxes["xyxy"])
    shot(page, "svg-5000-boxes")

    x1, y1, x2, y2 = boxes["xyxy"][DRAGGED]
    dx, dy = 150, 80
    ours, naive = [], []
    for i in range(repeat):
        sign = 1 if i % 2 == 0 else -1  # the editor's box stays where it was saved: back again every other drag
        at = (x1 + x2) / 2 + (0 if sign > 0 else dx), (y1 + y2) / 2 + (0 if sign > 0 else dy)
        load_editor(page, url, "bccd", image)
        assert len(page.evaluate("window.vlEditor.history.current").get("xyxy", [])) == len(boxes["xyxy"])
        page.keyboard.press("v")  # select tool: a press inside a box selects it and a drag moves it
        page.mouse.click(*page.evaluate(_SCREEN_OF, list(at)))
        page.wait_for_load_state("networkidle")  # the neighbours' prefetch is done
        page.wait_for_timeout(500)  # the selection drawn
        ours += drag_frames(page, *at, sign * dx, sign * dy, steps)
        moved = page.evaluate(f"window.vlEditor.history.current.xyxy[{DRAGGED}]")
        assert abs(moved[0] - at[0] + (x2 - x1) / 2 - sign * dx) < 4, (moved, at)
        if i == 0:
            shot(page, "editor-5000-boxes")
        page.wait_for_function(SAVED)  # the drag is saved before the page is left
        load_svg(page, url, image)
        page.wait_for_timeout(500)
        page.evaluate(f"window.vlRaise({DRAGGED})")  # on top, as the editor draws the selected box
        before = page.evaluate(f"window.vlBox({DRAGGED})")  # where the editor's last save left it
        naive += drag_frames(page, (before[0] + before[2]) / 2, (before[1] + before[3]) / 2, sign * dx, sign * dy,
                             steps)
        moved = page.evaluate(f"window.vlBox({DRAGGED})")
        assert abs(moved[0] - before[0] - sign * dx) < 4 and abs(moved[1] - before[1] - sign * dy) < 4, moved
    page.goto(f"{url}/#/p/bccd/images")
    page.wait_for_selector("[data-testid=browse-page]")
    page.wait_for_load_state("networkidle")  # the thumbnails are in
    in_app_ms = in_app(page, f"location.hash = '#/p/bccd/annotate/{image}'", editor_shown("bccd", image))
    t = opens[-1]
    svg = "the same image and boxes as one SVG <rect> node each (ui_pages/svg_boxes.html)"
    return {
        "open_5000_boxes": figure(
            median([o["rendered"] for o in opens]), median(svg_opens), unit="ms", goal=1000,
            naive_is=f"{svg}: page load to drawn (a bare page: no app around it)",
            runs_ours=[round(o["rendered"]) for o in opens], runs_naive=[round(v) for v in svg_opens],
            in_app_ms=round(in_app_ms),
            in_app_is="the editor opened from the images page (hash navigation, the app already loaded)",
            editor_steps_ms={k: round(t[k] - t["start"]) for k in ("fetched", "features", "loaded", "shown", "rendered")},
            editor_steps_are="ms from the editor's start (after the app's own start) to each step, last page load"),
        "drag_5000_boxes_p95_frame": figure(
            p95(ours), p95(naive), unit="ms", goal=33, naive_is=f"{svg}, the dragged rect's attributes set per move",
            frames_ours=len(ours), frames_naive=len(naive), moves=steps * repeat,
            drag_ms_ours=round(sum(ours)), drag_ms_naive=round(sum(naive)), median_ours=median(ours),
            median_naive=median(naive), max_ours=round(max(ours), 1), max_naive=round(max(naive), 1),
            browser="headless Chromium without a GPU: canvases and SVG are rastered in software"),
    }


def next_image_figure(page: Any, url: str, repeat: int) -> dict[str, Any]:
    """Next with the prefetch, against a jump to an image not prefetched and a cold page load (HTTP cache off).

    Of the project's 12 BCCD images, 6 -> 7 -> 8 -> 9 go by Next (each one's neighbours are prefetched); the jumps
    go to 11, 1 and 3, none of them visited or a neighbour of one visited before; the cold loads are of 2 and 4."""
    load_editor(page, url, "bccd", 6)
    ours = []
    for nxt in range(7, 7 + repeat):
        page.wait_for_load_state("networkidle")  # the prefetch of the next image is done
        ours.append(in_app(page, "document.querySelector('.ed-bar button[title^=\"Next\"]').click()",
                           editor_shown("bccd", nxt)))
    http_cache(page, on=False)
    try:
        jumps = [in_app(page, f"location.hash = '#/p/bccd/annotate/{target}'", editor_shown("bccd", target))
                 for target in (11, 1, 3)[:repeat]]
        cold = [load_editor(page, url, "bccd", target)["rendered"] for target in (2, 4)[:repeat]]
    finally:
        http_cache(page, on=True)
    return {"next_image": figure(
        median(ours), median(jumps), unit="ms", goal=300,
        naive_is="the editor opening an image nobody prefetched (in-app navigation, HTTP cache off)",
        runs_ours=[round(v) for v in ours], runs_naive=[round(v) for v in jumps],
        cold_page_load_ms=median(cold), cold_ratio=round(median(cold) / median(ours), 2),
        cold_is="a page load of the editor on the image with the HTTP cache off")}


_GRID_SHOWN = ("document.querySelectorAll('#thumb-grid .thumb').length >= {n} && "
               "!['…', ''].includes(document.querySelector('#match-count').textContent)")
_THUMBS_SHOWN = """[...document.querySelectorAll('#thumb-grid .thumb img')].filter((im) => {
  const r = im.getBoundingClientRect(); return r.top < innerHeight && r.bottom > 0; })
  .every((im) => im.complete && im.naturalWidth > 0)"""
_FETCH_MS = """async (paths) => { const out = [];
  for (const path of paths) { const t = performance.now();
    const r = await fetch('/api/v1/projects/big/' + path,
                          {headers: {Authorization: `Bearer ${sessionStorage.getItem('vl_token')}`}});
    const body = await r.json(); out.push([performance.now() - t, body.items.map((i) => i.id)]); }
  return out; }"""
_ALL_IDS_MS = """async () => { const start = performance.now(); const ids = []; let after = null;
  do { const q = after === null ? '' : `&after=${after}`;
    const r = await fetch('/api/v1/projects/big/images?limit=500' + q,
                          {headers: {Authorization: `Bearer ${sessionStorage.getItem('vl_token')}`}});
    const page = await r.json(); ids.push(...page.items.map((i) => i.id)); after = page.next_after;
  } while (after !== null);
  return [performance.now() - start, ids.length]; }"""


def grid_figures(page: Any, url: str, images: int, repeat: int) -> dict[str, Any]:
    """The images page's first page at ``images`` images; OFFSET against keyset deep in the list."""
    page.goto(f"{url}/#/")
    page.wait_for_selector("[data-testid=projects-page]")
    cards, thumbs = [], []
    http_cache(page, on=False)  # every thumbnail fetched again (the server's cache of them is warm after the first)
    try:
        for _ in range(repeat + 1):
            cards.append(in_app(page, "location.hash = '#/p/big/images'", _GRID_SHOWN.format(n=60)))
            thumbs.append(in_app(page, "", _THUMBS_SHOWN) + cards[-1])
            shot(page, "grid-100k")
            page.evaluate("location.hash = '#/'")
            page.wait_for_selector("[data-testid=projects-page]")
    finally:
        http_cache(page, on=True)
    depth, limit = images - images // 20, 60  # 95% into the list: page 1,584 of 60 at 100,000 images
    b_before = sum(1 for i in range(1, depth + 1) if i % 4 == 3)  # class b: the ids 3 mod 4 (big_projects.py)
    pairs = {"unfiltered": (f"images?offset={depth}&limit={limit}", f"images?after={depth}&limit={limit}"),
             "class_b": (f"images?class=b&offset={b_before}&limit={limit}",
                         f"images?class=b&after={depth}&limit={limit}")}
    all_ids_ms, n = page.evaluate(_ALL_IDS_MS)
    assert n == images, n
    deep = {}
    for name, (offset, keyset) in pairs.items():
        runs = page.evaluate(_FETCH_MS, [offset, keyset] * (3 * repeat + 2))[2:]
        assert runs[0][1] == runs[1][1] and runs[0][1], name  # the same page of ids both ways
        deep[name] = figure(median([r[0] for r in runs[1::2]]), median([r[0] for r in runs[0::2]]), unit="ms",
                            naive_is=f"the same {limit} images fetched with OFFSET {offset.split('offset=')[1].split('&')[0]}")
    return {
        "first_grid_page": figure(
            median(cards[1:]), round(all_ids_ms, 1), unit="ms", goal=300, images=images,
            naive_is=f"a grid that loads the whole list first: the {images:,} ids in pages of 500 (keyset; "
                     "the requests alone, nothing drawn)",
            first_visit_ms=round(cards[0]), runs_ours=[round(v) for v in cards],
            visible_thumbnails_ms=median(thumbs[1:]), visible_thumbnails_first_visit_ms=round(thumbs[0])),
        "deep_page_keyset_vs_offset": deep["unfiltered"],
        "deep_page_keyset_vs_offset_class_filter": deep["class_b"],
    }


def large_image_figure(page: Any, url: str, source: Path, import_s: float, repeat: int) -> dict[str, Any]:
    """The editor's first view of the large image (tiles) against the whole file downloaded and drawn."""
    detail = httpx.get(f"{url}{API}/projects/huge/images/1", headers=bearer(page), timeout=120).json()
    assert detail["tiles"], "the large image has no pyramid"
    page.goto(f"{url}/#/")
    page.wait_for_selector("[data-testid=projects-page]")
    ours, naive, tiles = [], [], []
    page.evaluate("performance.setResourceTimingBufferSize(100000)")
    http_cache(page, on=False)
    try:
        for _ in range(repeat):
            page.evaluate("performance.clearResourceTimings()")
            ours.append(in_app(page, "location.hash = '#/p/huge/annotate/1'", editor_shown("huge", 1)))
            canvas = page.evaluate("window.vlEditor.canvas.map.getSize()")
            shot(page, "large-image-first-view")
            tiles.append(page.evaluate(
                "performance.getEntriesByType('resource').filter((e) => e.name.includes('/tiles/')).length"))
            page.evaluate("location.hash = '#/'")
            page.wait_for_selector("[data-testid=projects-page]")
        w, h = detail["width"], detail["height"]
        fit = max(w / canvas[0], h / canvas[1], 1.0)  # the whole image in the editor's canvas
        view = [round(w / fit), round(h / fit)]
        for _ in range(repeat):
            page.goto(f"{url}/health")
            naive.append(page.evaluate(_SHOW, {"urls": [url + detail["url"]], "view": view, "places": [[0, 0, *view]]}))
    finally:
        http_cache(page, on=True)
    memory = pyramid_memory(source, detail["width"], detail["height"])
    return {"large_image_first_view": figure(
        median(ours), median(naive), unit="ms", goal=1000, width=w, height=h,
        naive_is=f"the whole {source.stat().st_size / 2**20:.0f} MiB JPEG downloaded, decoded and drawn on a "
                 f"{view[0]}x{view[1]} canvas (HTTP cache off)",
        runs_ours=[round(v) for v in ours], runs_naive=[round(v) for v in naive],
        tiles_requested=tiles, editor_canvas=canvas, import_with_pyramid_s=round(import_s, 1)),
        "pyramid_build_peak_memory": memory}


def pyramid_memory(source: Path, width: int, height: int) -> dict[str, Any]:
    """The pyramid build's memory (MiB above the process's imports), streaming against the naive full decode: from
    benchmarks/results/tiles*.json when it measured this size, else measured here."""
    for name in ("tiles.json", "tiles.smoke.json"):
        path = RESULTS / name
        if path.exists():
            res = json.loads(path.read_text())
            if (res["image"]["width"], res["image"]["height"]) == (width, height):
                return figure(res["streaming"]["build_mb"], res["naive_full_decode"]["build_mb"], unit="MiB",
                              naive_is="the whole image decoded, each level resized from it", source=f"results/{name}",
                              peak_process_mb_ours=res["streaming"]["peak_mb"],
                              peak_process_mb_naive=res["naive_full_decode"]["peak_mb"])
    with tempfile.TemporaryDirectory(prefix="vl-ui-pyramid-") as tmp:
        ours = peak_memory(STREAMING, source, Path(tmp) / "ours")
        naive = peak_memory(NAIVE_TILES, source, Path(tmp) / "naive")
    return figure(round(ours["build_mb"], 1), round(naive["build_mb"], 1), unit="MiB", source="measured here",
                  naive_is="the whole image decoded, each level resized from it",
                  peak_process_mb_ours=round(ours["peak_mb"], 1), peak_process_mb_naive=round(naive["peak_mb"], 1))


def save_figure(page: Any, url: str, small: int, big: int, repeat: int) -> dict[str, Any]:
    """One box moved by a pixel and saved from the page: a real BCCD annotation, against the 5,000-box one."""
    page.goto(f"{url}/#/")
    page.wait_for_selector("[data-testid=projects-page]")
    out: dict[str, dict[str, list[float]]] = {}
    sizes = {}
    for image in (small, big):
        d = httpx.get(f"{url}{API}/projects/bccd/images/{image}", headers=bearer(page), timeout=120).json()
        payload, base = d["annotation"], d["head_revision"]
        sizes[image] = (len(payload["xyxy"]), len(json.dumps({"payload": payload, "base_revision": base})))
        for queue in (True, False):
            runs = out.setdefault(f"{image}-{queue}", [])
            for i in range(repeat + 1):
                payload["xyxy"][0][0] += 1 if i % 2 == 0 else -1
                r = page.evaluate(_SAVE, {"project": "bccd", "id": image, "payload": payload, "base": base,
                                          "queue": queue})
                assert r["status"] == 200 and r["revision"] == base + 1, r
                base = r["revision"]
                runs.append(r["ms"])
    ours, naive = out[f"{small}-True"][1:], out[f"{big}-True"][1:]
    return {"save_round_trip": figure(
        median(ours), median(naive), unit="ms", goal=100,
        naive_is=f"the same one-box edit saved as the whole state: the {sizes[big][0]:,}-box annotation "
                 f"({sizes[big][1] / 1024:.0f} KiB) through the same path",
        boxes_ours=sizes[small][0], request_bytes_ours=sizes[small][1], request_bytes_naive=sizes[big][1],
        put_alone_ms_ours=median(out[f"{small}-False"][1:]), put_alone_ms_naive=median(out[f"{big}-False"][1:]),
        path="offline.enqueue: IndexedDB, PUT .../annotation, the server's answer")}


# ---- time to value ----------------------------------------------------------------------------------------------


def time_to_value(work: Path) -> dict[str, Any]:
    """The newcomer's path on the sample project, as ``visionloop demo`` makes it, step by step in the browser."""
    from playwright.sync_api import sync_playwright

    from visionloop.cli.project_cmds import demo

    steps: dict[str, Any] = {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        steps[name] = round(time.perf_counter() - start - sum(steps.values()), 1)
        print(f"  time to value: {name} {steps[name]} s (total {sum(steps.values()):.0f} s)", flush=True)

    project = work / "demo" / "sample-bccd"
    # the newcomer trains from the page here, so the first-start model (a job ahead of it) is left out
    demo(project=project, source=ROOT.parent / "examples" / "bccd-sample", no_serve=True, train=False)
    with Project.open(project) as p:
        ensure_admin(p, password=ADMIN_PASSWORD)
    lap("create the sample project (visionloop demo)")
    with PlatformThread([project], settings=Settings()) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_context(viewport=SCREEN, bypass_csp=True).new_page()
        page.set_default_timeout(WAIT_MS)
        try:
            summary = newcomer(page, server.url, project.name, lap)
        except Exception as e:  # noqa: BLE001  the steps done so far are kept with the error
            summary = None
            steps["failed"] = repr(e)[:500]
        browser.close()
        model = trained_model(server.url, project.name)
    done = [v for v in steps.values() if isinstance(v, float)]
    return {"steps_s": steps, "total_s": round(sum(done), 1), "goal_s": 600, "prediction": summary, "model": model,
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
            "first_page_is": "the server and the browser started, the sign-in page shown",
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def trained_model(url: str, name: str) -> dict[str, Any]:
    """The newcomer's run as the API lists it: what the defaults chose and the metrics it reached."""
    token = httpx.post(f"{url}{API}/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD},
                       timeout=120).json()["access_token"]
    runs = httpx.get(f"{url}{API}/projects/{name}/runs", headers={"Authorization": f"Bearer {token}"},
                     timeout=120).json()
    if not runs:
        return {}
    run = runs[0]
    config = httpx.get(f"{url}{API}/projects/{name}/runs/{run['id']}", headers={"Authorization": f"Bearer {token}"},
                       timeout=120).json().get("config", {})
    return {"run": run["id"], "epochs": run.get("epochs"), "eval_size": config.get("extra", {}).get("eval_size"),
            "metrics": {k: v for k, v in (run.get("metrics") or {}).items() if "map" in k}}


def newcomer(page: Any, url: str, name: str, lap: Callable[[str], None]) -> str:
    """Sign in, train, export, deploy, predict: the pages a newcomer uses; returns the prediction's summary."""
    page.goto(url + "/")
    page.wait_for_selector("#signin-user")
    lap("first page")
    sign_in(page, url)
    lap("sign in")
    page.goto(f"{url}/#/p/{name}/train")
    page.wait_for_selector("#train-version")
    if not page.evaluate("document.querySelector('#train-version').value"):  # no version yet: make one
        page.click("#version-create")
        page.wait_for_function("document.querySelector('#train-version').value !== ''")
    page.wait_for_selector(".auto-choice")
    assert page.is_checked("#train-deploy")  # the default: evaluated, packaged and deployed when trained
    page.click("#train-start")
    page.wait_for_selector(".train-live .done-box", timeout=3_600_000)
    lap("train with the defaults (train page)")
    page.wait_for_selector("#train-try", timeout=1_800_000)
    lap("evaluate, export and deploy it (queued by the train page)")
    page.click("#train-try")
    page.wait_for_selector("#packages tr.deployed .badge")
    image = sorted((ROOT.parent / "examples" / "bccd-sample").rglob("*.jpg"))[0]
    page.set_input_files("#try-file", str(image))
    summary = page.wait_for_selector("#try-summary", timeout=600_000).inner_text()
    lap("first prediction on an image (models page: try an image)")
    return summary


# ---- the run ----------------------------------------------------------------------------------------------------


def run(smoke: bool, *, ttv: bool) -> dict[str, Any]:
    repeat = 1 if smoke else 3
    images = 10_000 if smoke else 100_000
    size = (5000, 3750) if smoke else (16000, 12000)
    bccd = SHARED / "datasets" / "bccd"
    result: dict[str, Any] = {"screen": SCREEN, "boxes": BOXES[0] * BOXES[1],
                              "load_average_at_start": [round(x, 1) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="vl-ui-bench-") as tmp:
        work = Path(tmp)
        folder = work / "projects"
        folder.mkdir()
        t = time.perf_counter()
        small = make_bccd_project(bccd, folder, n=12, name="bccd")
        jpegs = sorted((bccd / "BCCD" / "JPEGImages").glob("*.jpg"))
        big, fill_s = big_project(folder, images, jpegs, real=120)
        huge, source, import_s = large_image_project(folder, work, size)
        result["setup"] = {"seconds": round(time.perf_counter() - t, 1), "bulk_insert_s": round(fill_s, 1),
                           "grid_images": images}
        with PlatformThread([small, big, huge], settings=Settings(), projects_dir=folder) as server:
            url = server.url
            token = httpx.post(f"{url}{API}/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD},
                               timeout=120).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            image = 5
            d = httpx.get(f"{url}{API}/projects/bccd/images/{image}", headers=headers, timeout=120).json()
            classes = httpx.get(f"{url}{API}/projects/bccd/classes", headers=headers, timeout=120).json()
            boxes = five_thousand_boxes(d["width"], d["height"], min(c["id"] for c in classes))
            r = httpx.put(f"{url}{API}/projects/bccd/images/{image}/annotation", headers=headers, timeout=120,
                          json={"payload": boxes, "base_revision": d["head_revision"]})
            r.raise_for_status()
            figures: dict[str, Any] = {}
            with browser_page(url) as page:
                figures |= boxes_figures(page, url, image, boxes, repeat, steps=30 if smoke else 90)
                figures |= next_image_figure(page, url, repeat)
                figures |= grid_figures(page, url, images, repeat)
                figures |= large_image_figure(page, url, source, import_s, repeat)
                figures |= save_figure(page, url, 7, image, 1 if smoke else 5)
        result["figures"] = figures
        result["load_average_at_end"] = [round(x, 1) for x in os.getloadavg()]
        result["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        if ttv:
            result["time_to_value"] = time_to_value(work)
    return result


def table(result: dict[str, Any]) -> str:
    rows = [f"{'figure':42} {'ours':>13} {'naive':>13} {'ratio':>7}  goal"]
    for name, f in result.get("figures", {}).items():
        goal = f"< {f['goal']:g} {f['unit']}" if f.get("goal") else ""
        rows.append(f"{name:42} {f['ours']:>9g} {f['unit']:<3} {f['naive']:>9g} {f['unit']:<3} {f['ratio']:>6g}x  {goal}")
    if "time_to_value" in result:
        for step, s in result["time_to_value"]["steps_s"].items():
            rows.append(f"time to value: {step:58} {s} s")
        rows.append(f"time to value: total {result['time_to_value']['total_s']} s (goal < 600 s)")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="fewer repeats and smaller data: a check that it runs")
    parser.add_argument("--time-to-value", action="store_true", help="also the newcomer's path (minutes of CPU)")
    parser.add_argument("--only-time-to-value", action="store_true",
                        help="only the newcomer's path, added to the figures already in results/ui.json")
    parser.add_argument("--screenshots", type=Path, help="keep a picture of each measured view in this folder")
    args = parser.parse_args()
    if args.screenshots:
        SHOTS.append(args.screenshots)
    if args.only_time_to_value:
        previous = RESULTS / "ui.json"
        result = json.loads(previous.read_text()) if previous.exists() else {}
        result = {k: v for k, v in result.items() if k not in ("benchmark", "smoke", "machine")}
        with tempfile.TemporaryDirectory(prefix="vl-ui-ttv-") as tmp:
            result["time_to_value"] = time_to_value(Path(tmp))
        smoke = False
    else:
        result = run(args.smoke, ttv=args.time_to_value)
        smoke = args.smoke
        previous = RESULTS / "ui.json"
        if not smoke and "time_to_value" not in result and previous.exists():  # kept: minutes of CPU to redo
            kept = json.loads(previous.read_text()).get("time_to_value")
            if kept:
                result["time_to_value"] = {**kept, "kept_from": kept.get("measured_at", "an earlier run")}
    path = write_result("ui", result, smoke=smoke)
    print(table(result))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
