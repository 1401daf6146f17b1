"""Tile pyramid benchmark: a 16000x12000 image (a mosaic of real BCCD blood-smear photographs, 576 MB as RGB), our
streaming build against the naive one, in the same run on this machine.

1. streaming (ours, ``visionloop.storage.tiles.build_pyramid``: libvips reads the JPEG from top to bottom once and
   makes every level from the strips as they pass);
2. naive: the whole image decoded (Pillow, or libvips past Pillow's ~179 Mpx hard limit), each level resized from it
   (box filter), every tile cut and encoded (Pillow WebP, the same quality and effort).

Each build runs in a fresh Python process; its peak resident memory (VmHWM) is reported whole and above what the
process held once its modules were imported (``build_mb``), with the wall time. Also: what the first view of a
1920x1080 screen costs to download, the tiles of the level that fits it against the whole original file.

Results: benchmarks/results/tiles.json (``--smoke``: a 5000x3750 image, tiles.smoke.json).

    nice -n 10 python benchmarks/tiles.py [--smoke]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def first_view(info: PyramidInfo, pyramid: Path, screen: tuple[int, int] = (1920, 1080)) -> dict[str, Any]:
    """The tiles a viewer fetches to show the whole image fitted to ``screen``: the level whose downsampling
    (``2**z``) is the largest not above the fit's (so it is never shown enlarged), all of it."""
    fit = max(info.width / screen[0], info.height / screen[1])
    z = min(info.levels - 1, max(0, math.floor(math.log2(fit)))) if fit > 1 else 0
    cols, rows = info.grid(z)
    sizes = [(pyramid / str(z) / f"{x}_{y}.webp").stat().st_size for y in range(rows) for x in range(cols)]
    return {"level": z, "level_size": list(info.level_size(z)), "tiles": len(sizes), "bytes": sum(sizes)}


def run(smoke: bool) -> dict[str, Any]:
    width, height = (5000, 3750) if smoke else (16000, 12000)
    with tempfile.TemporaryDirectory(prefix="vl-tiles-bench-") as tmp:
        work = Path(tmp)
        source = bccd_mosaic(SHARED / "datasets" / "bccd", width, height, work / "mosaic.jpg")
        ours = peak_memory(STREAMING, source, work / "ours")
        naive = peak_memory(NAIVE_TILES, source, work / "naive")
        info = PyramidInfo(width, height)
        tiles = list((work / "ours").rglob("*.webp"))
        view = first_view(info, work / "ours")
        result = {
            "image": {"width": width, "height": height, "decoded_rgb_mb": round(width * height * 3 / 2**20, 1),
                      "jpeg_bytes": source.stat().st_size, "made_of": "BCCD JPEGImages, tiled"},
            "pyramid": {**info.to_json(), "tiles": len(tiles), "bytes": sum(p.stat().st_size for p in tiles),
                        "format": "webp", "quality": TILE_QUALITY, "effort": TILE_EFFORT},
            "streaming": {k: round(v, 2) for k, v in ours.items()},
            "naive_full_decode": {k: round(v, 2) for k, v in naive.items()},
            "first_view_1920x1080": {**view, "original_file_bytes": source.stat().st_size},
        }
    result["memory_ratio_naive_over_streaming"] = round(naive["build_mb"] / ours["build_mb"], 1)
    result["streaming_build_mb_over_decoded"] = round(ours["build_mb"] / result["image"]["decoded_rgb_mb"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a 5000x3750 image: a quick check that it runs")
    args = parser.parse_args()
    result = run(args.smoke)
    path = write_result("tiles", result, smoke=args.smoke)
    print(path.read_text())


if __name__ == "__main__":
    main()
