"""Assisted segmentation on real data: how close a box, one click and a few refining clicks get to the truth.

DSB2018 nuclei (one PNG mask per nucleus): for every classical method (``visionloop.inference.assist``), the mean
IoU with the true mask of the mask from

- (a) the true box as the prompt, beside the trivial answer (the box itself as the mask) measured in the same run;
- (b) one positive click at the nucleus's centre (its pixel farthest from the edge);
- (c) then 3 rounds of refinement by a simulated annotator: a positive click in the largest region the mask misses
  and a negative click in the largest region it wrongly holds, the previous mask given back
  (``inference.assist.simulate``); the IoU after each round is reported.

Also the IoU of the outline the editor keeps (the polygon of the box prompt's answer, rasterised) and the time per
request. BCCD has boxes only: a click at each cell's box centre gives a mask whose box is compared with the true box
(IoU of boxes), beside a box of the class's median size centred on the click (what a click could give without
looking at the image).

Results: benchmarks/results/assist.json (24 DSB images, up to 6 nuclei each; 12 BCCD images. ``--smoke``: 3 nuclei of 2 DSB images and 4 cells
of 2 BCCD images, assist.smoke.json).

    nice -n 10 python benchmarks/assist.py [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from common import SHARED, write_result  # noqa: E402

from visionloop.inference.assist import CLASSICAL, Click, Prompt, assist  # noqa: E402
from visionloop.inference.assist.simulate import centre_click, iou, refine  # noqa: E402

ROUNDS = 3


def dsb_objects(samples: range | list[int], per_image: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, mask) of up to ``per_image`` nuclei of each of the DSB2018 training images at indexes ``samples``
    (in sorted order)."""
    out = []
    folders = sorted((SHARED / "datasets" / "dsb2018-nuclei" / "stage1_train").iterdir())
    for sample in (folders[i] for i in samples):
        image = np.asarray(Image.open(next((sample / "images").glob("*.png"))).convert("RGB"))
        for f in sorted((sample / "masks").glob("*.png"))[:per_image]:
            mask = np.asarray(Image.open(f)) > 0
            if mask.sum() >= 9:
                out.append((image, mask))
    return out


def box_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = True
    return m


def polygon_mask(ring: list[float], shape: tuple[int, int]) -> np.ndarray:
    if len(ring) < 6:
        return np.zeros(shape, bool)
    return mask_utils.decode(mask_utils.frPyObjects([ring], *shape))[..., 0].astype(bool)


def mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4) if values else float("nan")


def measure_dsb(objects: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    trivial = [iou(box_mask(m.shape, box_of(m)), m) for _, m in objects]
    methods: dict[str, Any] = {}
    for name, build in CLASSICAL.items():
        method = build()
        box_ious, polygon_ious, rounds, ms = [], [], [[] for _ in range(ROUNDS + 1)], []
        for k, (image, truth) in enumerate(objects):
            t = time.perf_counter()
            answer = assist(method, image, Prompt(box=box_of(truth)), key=str(k))
            ms.append((time.perf_counter() - t) * 1000)
            box_ious.append(iou(answer.mask, truth))
            polygon_ious.append(iou(polygon_mask(answer.polygon, truth.shape), truth))
            session = refine(method, image, truth, Prompt(clicks=(centre_click(truth),)), rounds=ROUNDS, key=str(k))
            for r, value in enumerate(session.ious):
                rounds[r].append(value)
        refined = [mean(r) for r in rounds]
        methods[name] = {
            "box_iou": mean(box_ious), "box_polygon_iou": mean(polygon_ious), "click_iou": refined[0],
            "refined_iou_per_round": refined, "refined_iou": refined[-1],
            "refinement_gain": round(refined[-1] - refined[0], 4),
            "refinement_worse_share": round(float(np.mean(np.asarray(rounds[-1]) < np.asarray(rounds[0]) - 1e-9)), 4),
            "box_vs_trivial": round(mean(box_ious) - mean(trivial), 4), "ms_per_box_request": round(mean(ms), 1),
        }
        print(f"DSB {name:13s} box {methods[name]['box_iou']:.3f} (trivial {mean(trivial):.3f}) click "
              f"{refined[0]:.3f} -> refined {refined[-1]:.3f}  {methods[name]['ms_per_box_request']:.0f} ms",
              file=sys.stderr)
    return {"objects": len(objects), "trivial_box_iou": mean(trivial), "methods": methods}


def bccd_objects(n_images: int, per_image: int = 1000) -> list[tuple[np.ndarray, str, tuple[float, float, float, float]]]:
    voc = SHARED / "datasets" / "bccd" / "BCCD"
    out = []
    for xml in sorted((voc / "Annotations").glob("*.xml"))[:n_images]:
        image = np.asarray(Image.open(voc / "JPEGImages" / f"{xml.stem}.jpg").convert("RGB"))
        h, w = image.shape[:2]
        for obj in list(ET.parse(xml).getroot().iter("object"))[:per_image]:
            b = obj.find("bndbox")
            x1, y1, x2, y2 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
            if x2 - x1 >= 4 and y2 - y1 >= 4:
                out.append((image, obj.findtext("name"), (x1, y1, x2, y2)))
    return out


def box_iou(a: tuple[float, ...] | None, b: tuple[float, ...]) -> float:
    if a is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def measure_bccd(objects: list[tuple[np.ndarray, str, tuple[float, float, float, float]]]) -> dict[str, Any]:
    sizes: dict[str, tuple[float, float]] = {}
    for cls in {c for _, c, _ in objects}:
        boxes = [b for _, c, b in objects if c == cls]
        sizes[cls] = (statistics.median(b[2] - b[0] for b in boxes), statistics.median(b[3] - b[1] for b in boxes))
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for _, _, b in objects]
    median_box = [box_iou((x - sizes[c][0] / 2, y - sizes[c][1] / 2, x + sizes[c][0] / 2, y + sizes[c][1] / 2), b)
                  for (x, y), (_, c, b) in zip(centres, objects, strict=True)]
    methods: dict[str, Any] = {}
    for name, build in CLASSICAL.items():
        method = build()
        click, boxed = [], []
        for k, ((x, y), (image, _, b)) in enumerate(zip(centres, objects, strict=True)):
            click.append(box_iou(assist(method, image, Prompt(clicks=(Click(x, y),)), key=str(k)).bbox, b))
            boxed.append(box_iou(assist(method, image, Prompt(box=b), key=str(k)).bbox, b))
        methods[name] = {"click_box_iou": mean(click), "box_prompt_box_iou": mean(boxed)}
        print(f"BCCD {name:13s} click -> box IoU {mean(click):.3f} (median-size box {mean(median_box):.3f}); "
              f"box prompt -> box IoU {mean(boxed):.3f}", file=sys.stderr)
    return {"objects": len(objects), "median_size_box_iou": mean(median_box), "methods": methods}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few images, to prove the script works")
    args = parser.parse_args()
    dsb = dsb_objects([3, 4], 3) if args.smoke else dsb_objects(range(24), 6)
    bccd = bccd_objects(2, 4) if args.smoke else bccd_objects(12)
    start = time.perf_counter()
    result = {"dsb2018": measure_dsb(dsb), "bccd": measure_bccd(bccd), "rounds": ROUNDS,
              "seconds": round(time.perf_counter() - start, 1)}
    path = write_result("assist", result, smoke=args.smoke)
    print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
