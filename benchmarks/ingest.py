"""Import throughput against the floor measured in the same run, and stats / image-page latency at 100k boxes.

Generates N 640x480 JPEGs with a COCO file of 10 boxes each, then measures:
- floor: a plain loop that reads each file, hashes it (sha256) and opens its header (Pillow) — the least any
  importer must do;
- ours: ``visionloop import`` of the COCO file into a fresh project (blobs, database, revisions, problem report);
- ``stats`` and one page (50) of the image list, on that project.
Goal: import at >= 50% of the floor; stats and one page under 200 ms. ``--smoke`` runs a tiny size for CI.

    python benchmarks/ingest.py [--images 10000] [--boxes-per-image 10] [--smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import timed, write_result  # noqa: E402


def generate(root: Path, n: int, boxes_per_image: int) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    base = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    images, anns = [], []
    for i in range(n):
        arr = np.roll(base, i, axis=1) ^ np.uint8(i % 251)
        im = Image.fromarray(arr).resize((640, 480), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        (root / "images" / f"{i:06d}.jpg").write_bytes(buf.getvalue())
        images.append({"id": i + 1, "file_name": f"{i:06d}.jpg", "width": 640, "height": 480})
        xy = rng.uniform(0, 560, (boxes_per_image, 2))
        wh = rng.uniform(8, 80, (boxes_per_image, 2))
        for j in range(boxes_per_image):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1 + (i + j) % 5,
                         "bbox": [round(xy[j, 0], 1), round(xy[j, 1] * 0.75, 1), round(wh[j, 0], 1),
                                  round(wh[j, 1], 1)], "area": 1.0, "iscrowd": 0})
    cats = [{"id": k, "name": f"class{k}"} for k in range(1, 6)]
    ann_file = root / "annotations.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return ann_file


def floor(images: list[Path]) -> int:
    for path in images:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(io.BytesIO(data)) as im:
            _ = im.size
    return len(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--boxes-per-image", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (no timing goals)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    n = 200 if args.smoke else args.images

    from visionloop.ingest import import_source
    from visionloop.storage import Project

    # next to the repo, not /tmp: on some machines /tmp is a much slower filesystem, which would measure the disk
    scratch = Path(__file__).resolve().parents[1] / "data"
    scratch.mkdir(exist_ok=True)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-ingest-", dir=scratch))
    try:
        t0 = time.perf_counter()
        ann_file = generate(work / "src", n, args.boxes_per_image)
        gen_s = time.perf_counter() - t0
        files = sorted((work / "src" / "images").iterdir())
        floor(files[:50])  # warm the page cache the same way for both
        floor_s, _ = timed(lambda: floor(files))
        project = Project.create(work / "project", task="detection")
        ours_s, report = timed(lambda: import_source(project, ann_file, format="coco"))
        assert report.images_added == n, report.problems[:5]
        stats_s, stats = timed(project.stats, repeat=5)
        page_s, page = timed(lambda: project.images(offset=n // 2, limit=50), repeat=5)
        api_page_s = None
        try:
            from fastapi.testclient import TestClient

            from visionloop.core.settings import Settings
            from visionloop.serving.projects_api.app import create_app
            from visionloop.storage.users import add_user, issue_token

            add_user(project, "bench", role="viewer")  # the API answers signed-in users only
            headers = {"Authorization": f"Bearer {issue_token(project, 'bench').secret}"}
            with TestClient(create_app([work / "project"], settings=Settings()), headers=headers) as client:
                name = project.name
                client.get(f"/api/v1/projects/{name}/images?offset=0&limit=50")
                api_page_s, resp = timed(
                    lambda: client.get(f"/api/v1/projects/{name}/images?offset={n // 2}&limit=50"), repeat=5)
                assert resp.status_code == 200, resp.text
        except ImportError:
            pass
        project.close()
        result = {
            "images": n, "boxes": stats["annotations"], "generate_s": round(gen_s, 2),
            "floor_s": round(floor_s, 3), "floor_images_per_s": round(n / floor_s, 1),
            "import_s": round(ours_s, 3), "import_images_per_s": round(n / ours_s, 1),
            "import_vs_floor": round(floor_s / ours_s, 3),
            "stats_ms": round(stats_s * 1000, 2), "page_ms": round(page_s * 1000, 2),
            "api_page_ms": None if api_page_s is None else round(api_page_s * 1000, 2),
            "goals": {"import_vs_floor": ">= 0.5", "stats_ms": "< 200", "page_ms": "< 200"},
        }
        path = write_result("ingest", result, smoke=args.smoke)
        print(json.dumps(result, indent=2))
        print(f"wrote {path}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
