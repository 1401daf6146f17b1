"""Assisted segmentation on real DSB2018 nuclei (one PNG mask per nucleus): the mask from the true box beats the box
itself (GrabCut, the default; the superpixel methods are about even with it), and refining clicks of a simulated
annotator make the masks better on average (the full figures, every method: benchmarks/assist.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.inference.assist import CLASSICAL, Prompt, assist
from visionloop.inference.assist.simulate import centre_click, iou, refine

SAMPLES = (3, 4, 6, 9)
"""DSB2018 training images (in sorted order): fluorescence and stained tissue, 256 to 320 px."""
PER_IMAGE = 5


@pytest.fixture(scope="module")
def nuclei(dsb_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    folders = sorted((dsb_dir / "stage1_train").iterdir())
    out = []
    for i in SAMPLES:
        image = np.asarray(Image.open(next((folders[i] / "images").glob("*.png"))).convert("RGB"))
        for f in sorted((folders[i] / "masks").glob("*.png"))[:PER_IMAGE]:
            out.append((image, np.asarray(Image.open(f)) > 0))
    return out


def box_of(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


@pytest.mark.slow
@pytest.mark.ci
def test_a_box_prompt_beats_the_box_itself_on_real_nuclei(nuclei) -> None:  # noqa: ANN001
    method = CLASSICAL["grabcut"]()
    trivial, got = [], []
    for image, truth in nuclei:
        box = box_of(truth)
        as_mask = np.zeros_like(truth)
        as_mask[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = True
        trivial.append(iou(as_mask, truth))
        got.append(iou(assist(method, image, Prompt(box=box)).mask, truth))
    print(f"grabcut: box prompt IoU {np.mean(got):.3f}, the box itself {np.mean(trivial):.3f}")
    assert np.mean(got) > 0.82 > np.mean(trivial) + 0.04, (np.mean(got), np.mean(trivial))  # measured 0.869, 0.765


@pytest.mark.slow
@pytest.mark.ci
def test_refining_clicks_do_not_make_masks_worse_on_average(nuclei) -> None:  # noqa: ANN001
    method = CLASSICAL["grabcut"]()
    first, last = [], []
    for image, truth in nuclei:
        session = refine(method, image, truth, Prompt(clicks=(centre_click(truth),)), rounds=3)
        first.append(session.ious[0])
        last.append(session.ious[-1])
    print(f"grabcut: one click {np.mean(first):.3f} -> 3 refining rounds {np.mean(last):.3f}")
    # measured 0.759 -> 0.842
    assert np.mean(last) > np.mean(first) + 0.04 and np.mean(last) > 0.78, (np.mean(first), np.mean(last))
