"""Large real-looking images for the tile pyramid tests: mosaics of real BCCD blood-smear photographs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyvips

__all__ = ["NAIVE", "STREAMING", "bccd_mosaic", "peak_memory"]


def bccd_mosaic(bccd_dir: Path, width: int, height: int, dest: Path, *, quality: int = 90) -> Path:
    """A ``width`` x ``height`` JPEG (or PNG, by ``dest``'s suffix) tiled from BCCD's 640x480 photographs, every other
    pass mirrored; written streaming, so it never holds the whole image."""
    photos = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))
    cols, rows = -(-width // 640), -(-height // 480)
    parts = []
    for i in range(cols * rows):
        im = pyvips.Image.new_from_file(str(photos[i % len(photos)]))
        parts.append(im.fliphor() if (i // len(photos)) % 2 else im)
    mosaic = pyvips.Image.arrayjoin(parts, across=cols).crop(0, 0, width, height)
    if dest.suffix.lower() in {".jpg", ".jpeg"}:
        mosaic.write_to_file(str(dest), Q=quality)
    else:
        mosaic.write_to_file(str(dest))
    return dest


_CHILD = """
import json, re, sys, time
from pathlib import Path
{imports}

def high_water_kb():  # VmHWM: this process's peak resident memory (ru_maxrss would count the parent's before exec)
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))

before = high_water_kb()
start = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - start, "rss_before_kb": before, "peak_kb": high_water_kb()}}))
"""

STREAMING = ("from visionloop.storage.tiles import build_pyramid",
             "build_pyramid(Path(sys.argv[1]), Path(sys.argv[2]))")
NAIVE = ("from PIL import Image\nfrom visionloop.core.imageio import decode",
         "im = decode(Path(sys.argv[1]), max_pixels=10**10)\n"
         "levels = [im] + [im.resize((-(-im.width // 2**z), -(-im.height // 2**z)), Image.Resampling.BOX)\n"
         "                 for z in range(1, 6)]")
"""The two ways of building a pyramid whose memory :func:`peak_memory` compares: ours, and the whole image decoded
and resized per level (tiles cut from those levels would add nothing to the peak)."""


def peak_memory(method: tuple[str, str], source: Path, dest: Path) -> dict[str, float]:
    """Run one build in a fresh Python process; its seconds, and its peak resident memory (VmHWM, Linux) above what
    the process held once its modules were imported, in MB."""
    imports, body = method
    out = subprocess.run([sys.executable, "-c", _CHILD.format(imports=imports, body=body), str(source), str(dest)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": got["seconds"], "peak_mb": got["peak_kb"] / 1024,
            "build_mb": (got["peak_kb"] - got["rss_before_kb"]) / 1024}

