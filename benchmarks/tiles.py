"""Tile pyramid benchmark: a 16000x12000 image (a mosaic of real BCCD blood-smear photographs, 576 MB as RGB), our
streaming build against the naive one, in the same run on this machine.

1. streaming (ours, ``visionloop.storage.tiles.build_pyramid``: libvips reads the JPEG from top to bottom once and
   makes every level from the strips as they pass);
2. naive: the whole image decoded (Pillow, or libvips past Pillow's ~179 Mpx hard limit), each level resized from it
   (box filter), every tile cut and encoded (Pillow WebP, the same quality and effort).

Each build runs in a fresh Python process; its peak resident memory (VmHWM) is reported whole and above what the
process held once its modules were imported (``build_mb``), with the wall time. Then the first view of the whole
image on a 1920x1080 screen: the bytes of the tiles of the level that fits it against the original file, and in
Chromium (an empty cache each time, the image imported into a project and served over real HTTP) the time until those
tiles are loaded, decoded and drawn on a canvas of the view's size, against the same for the whole original file
(``--no-browser`` leaves this out).

Results: benchmarks/results/tiles.json (``--smoke``: a 5000x3750 image, tiles.smoke.json).

    nice -n 10 python benchmarks/tiles.py [--smoke]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from common import SHARED, write_result  # noqa: E402
from tests.tile_images import STREAMING, bccd_mosaic, peak_memory  # noqa: E402

from visionloop.storage.tiles import TILE_EFFORT, TILE_QUALITY, TILE_SIZE, PyramidInfo  # noqa: E402

NAIVE_TILES = (
    "from PIL import Image\nfrom visionloop.core.imageio import decode\n"
    f"from visionloop.storage.tiles import PyramidInfo\nT, Q, M = {TILE_SIZE}, {TILE_QUALITY}, {TILE_EFFORT}",
    """
full = decode(Path(sys.argv[1]), max_pixels=10**10)
info = PyramidInfo(full.width, full.height, T)
out = Path(sys.argv[2])
for z in range(info.levels):
    level = full if z == 0 else full.resize(info.level_size(z), Image.Resampling.BOX)
    (out / str(z)).mkdir(parents=True)
    cols, rows = info.grid(z)
    for y in range(rows):
        for x in range(cols):
            tile = Image.new("RGB", (T, T))
            tile.paste(level.crop((x * T, y * T, min((x + 1) * T, level.width), min((y + 1) * T, level.height))))
            tile.save(out / str(z) / f"{x}_{y}.webp", quality=Q, method=M)
""",
)
"""The naive build: full decode, a resize per level from it, tiles cut and encoded."""
SCREEN = (1920, 1080)
CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium package, as the browser tests use it."""


def first_view_level(info: PyramidInfo, screen: tuple[int, int] = SCREEN) -> int:
    """The level a viewer shows the whole image fitted to ``screen`` from: the one whose downsampling (``2**z``)
    is the largest not above the fit's (so it is never shown enlarged)."""
    fit = max(info.width / screen[0], info.height / screen[1])
    return min(info.levels - 1, max(0, math.floor(math.log2(fit)))) if fit > 1 else 0


_SHOW = """async ({urls, places, view}) => {
  const start = performance.now();
  const images = await Promise.all(urls.map(async (url) => {
    const im = new Image(); im.src = url; await im.decode(); return im;
  }));
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = view;
  document.body.replaceChildren(canvas);
  const ctx = canvas.getContext("2d");
  images.forEach((im, i) => ctx.drawImage(im, ...places[i]));
  ctx.getImageData(0, 0, 1, 1);  // the pixels are on the canvas
  return performance.now() - start;
}"""
"""Load and decode the images, draw them onto a canvas of the view's size, read a pixel back: what showing the
first view costs the page."""


def browser_first_view(source: Path, work: Path, *, repeat: int) -> dict[str, Any]:
    """Import ``source`` into a project (its pyramid built by the import), serve it over real HTTP, and time in
    Chromium, with an empty cache each time, until the first view is decoded: the tiles of its fitted level, against
    the whole original file (what a viewer without tiles downloads and decodes)."""
    from playwright.sync_api import sync_playwright
    from tests.serving.conftest import bearer_headers

    from visionloop.core.settings import Settings
    from visionloop.ingest import import_source
    from visionloop.serving.projects_api.server import ServerThread
    from visionloop.storage import Project
    from visionloop.storage.users import Role

    folder = work / "source"
    folder.mkdir()
    (folder / source.name).symlink_to(source)
    with Project.create(work / "projects" / "big", task="detection", max_image_pixels=250_000_000) as project:
        start = time.perf_counter()
        report = import_source(project, folder / source.name, format="images")
        import_seconds = time.perf_counter() - start
        assert report.images_added == 1 and not report.problems, report.to_json()
        headers = bearer_headers(project, Role.VIEWER)
        image_id = project.images()[0].id
    with ServerThread(work / "projects", settings=Settings()) as server, sync_playwright() as pw:
        detail = httpx.get(f"{server.url}/api/v1/projects/big/images/{image_id}", headers=headers).json()
        tiles = detail["tiles"]
        info = PyramidInfo(tiles["width"], tiles["height"], tiles["tile_size"])
        z = first_view_level(info)
        cols, rows = info.grid(z)
        tile_urls = [server.url + tiles["url_template"].format(z=z, x=x, y=y) for y in range(rows) for x in range(cols)]
        fit = max(info.width / SCREEN[0], info.height / SCREEN[1], 1.0)
        view = [round(info.width / fit), round(info.height / fit)]
        step = info.tile_size * 2**z / fit  # a tile's side on the screen
        shows = {"tiles": {"urls": tile_urls, "view": view,
                           "places": [[x * step, y * step, step, step] for y in range(rows) for x in range(cols)]},
                 "full_image": {"urls": [server.url + detail["url"]], "view": view, "places": [[0, 0, *view]]}}
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        timings: dict[str, list[float]] = {"tiles": [], "full_image": []}
        try:
            for _ in range(repeat):
                for kind, show in shows.items():
                    context = browser.new_context(extra_http_headers=headers)  # a fresh, empty cache
                    page = context.new_page()
                    page.goto(f"{server.url}/health")
                    timings[kind].append(page.evaluate(_SHOW, show))
                    context.close()
        finally:
            browser.close()
    return {"import_seconds_with_pyramid": round(import_seconds, 2), "screen": list(SCREEN), "view": view, "level": z,
            "level_size": list(info.level_size(z)), "tiles": len(tile_urls),
            "tiles_ms": [round(t) for t in timings["tiles"]], "full_image_ms": [round(t) for t in timings["full_image"]],
            "tiles_median_ms": round(statistics.median(timings["tiles"])),
            "full_image_median_ms": round(statistics.median(timings["full_image"]))}


def run(smoke: bool, *, browser: bool) -> dict[str, Any]:
    width, height = (5000, 3750) if smoke else (16000, 12000)
    with tempfile.TemporaryDirectory(prefix="vl-tiles-bench-") as tmp:
        work = Path(tmp)
        source = bccd_mosaic(SHARED / "datasets" / "bccd", width, height, work / "mosaic.jpg")
        ours = peak_memory(STREAMING, source, work / "ours")
        naive = peak_memory(NAIVE_TILES, source, work / "naive")
        info = PyramidInfo(width, height)
        tiles = list((work / "ours").rglob("*.webp"))
        z = first_view_level(info)
        view = [work / "ours" / str(z) / f"{x}_{y}.webp" for x in range(info.grid(z)[0]) for y in range(info.grid(z)[1])]
        result: dict[str, Any] = {
            "image": {"width": width, "height": height, "decoded_rgb_mb": round(width * height * 3 / 2**20, 1),
                      "jpeg_bytes": source.stat().st_size, "made_of": "BCCD JPEGImages, tiled"},
            "pyramid": {**info.to_json(), "tiles": len(tiles), "bytes": sum(p.stat().st_size for p in tiles),
                        "format": "webp", "quality": TILE_QUALITY, "effort": TILE_EFFORT},
            "streaming": {k: round(v, 2) for k, v in ours.items()},
            "naive_full_decode": {k: round(v, 2) for k, v in naive.items()},
            "first_view_bytes": {"screen": list(SCREEN), "level": z, "tiles": len(view),
                                 "bytes": sum(p.stat().st_size for p in view),
                                 "original_file_bytes": source.stat().st_size},
        }
        if browser:
            result["first_view_in_chromium"] = browser_first_view(source, work, repeat=1 if smoke else 3)
    result["memory_ratio_naive_over_streaming"] = round(naive["build_mb"] / ours["build_mb"], 1)
    result["streaming_build_mb_over_decoded"] = round(ours["build_mb"] / result["image"]["decoded_rgb_mb"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 5000x3750 image: a quick check that it runs")
    parser.add_argument("--no-browser", action="store_true", help="leave out the first view timed in Chromium")
    args = parser.parse_args()
    result = run(args.smoke, browser=not args.no_browser)
    path = write_result("tiles", result, smoke=args.smoke)
    print(path.read_text())


if __name__ == "__main__":
    main()
