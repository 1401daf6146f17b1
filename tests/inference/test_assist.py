"""Assisted segmentation: the prompt's checks, the window on large images, the outline and RLE of an answer, and
every classical method on a synthetic object (real data: test_assist_real.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from visionloop.core.errors import NotFoundError
from visionloop.core.settings import Settings
from visionloop.inference.assist import (
    CLASSICAL,
    MAX_WINDOW_PIXELS,
    Assistants,
    AssistPromptError,
    Click,
    GrabCut,
    LruCache,
    Prompt,
    assist,
    mask_polygon,
    prompt_window,
)
from visionloop.inference.assist.simulate import centre_click, iou, refine, region_click


def blob_image(h: int = 240, w: int = 320, *, centre: tuple[int, int] = (150, 110), r: int = 40,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy dark image with a bright elliptic object; the image and the object's mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    truth = ((xx - centre[0]) / r) ** 2 + ((yy - centre[1]) / (0.7 * r)) ** 2 <= 1
    image = rng.normal(40, 12, (h, w, 3))
    image[truth] = rng.normal([200, 120, 90], 12, (int(truth.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def test_a_prompt_needs_a_box_or_a_positive_click_inside_the_image() -> None:
    with pytest.raises(AssistPromptError, match="a box or at least one positive click"):
        Prompt(clicks=(Click(5, 5, False),)).check(100, 80)
    with pytest.raises(AssistPromptError, match="click 0: expected a point inside the 100x80 image"):
        Prompt(clicks=(Click(101, 5),)).check(100, 80)
    with pytest.raises(AssistPromptError, match="box: expected xyxy inside the 100x80 image"):
        Prompt(box=(10, 10, 90, 81)).check(100, 80)
    with pytest.raises(AssistPromptError, match="x2 > x1"):
        Prompt(box=(10, 10, 11, 50)).check(100, 80)
    with pytest.raises(AssistPromptError, match="clicks: expected at most 3"):
        Prompt(clicks=tuple(Click(1, 1) for _ in range(4))).check(100, 80, max_clicks=3)
    with pytest.raises(AssistPromptError, match="previous mask: expected the image's size"):
        Prompt(box=(1, 1, 50, 50), previous=np.zeros((10, 10), bool)).check(100, 80)
    Prompt(box=(0, 0, 100, 80), clicks=(Click(100, 80, False),)).check(100, 80)  # edges are inside


def test_the_window_of_a_huge_image_is_bounded_and_maps_back() -> None:
    lone = prompt_window(Prompt(clicks=(Click(30000, 20000),)), 40000, 30000)
    assert lone.w * lone.h * lone.scale**2 <= MAX_WINDOW_PIXELS * 1.01
    assert lone.x0 <= 30000 <= lone.x0 + lone.w and lone.y0 <= 20000 <= lone.y0 + lone.h
    big_box = prompt_window(Prompt(box=(1000, 1000, 21000, 16000)), 40000, 30000)
    assert big_box.scale < 0.1 and big_box.w >= 20000
    local = np.ones((round(big_box.h * big_box.scale), round(big_box.w * big_box.scale)), bool)
    back = big_box.paste(local, 30000, 2 * 20000)
    assert back.shape == (30000, 40000) and back.sum() == big_box.w * big_box.h
    assert not back[:big_box.y0].any() and back[big_box.y0, big_box.x0]


def test_grabcut_on_a_large_image_works_on_a_window_only() -> None:
    image = np.full((6000, 8000, 3), 40, np.uint8)
    small, truth_small = blob_image(seed=3)
    image[3000:3240, 5000:5320] = small
    truth = np.zeros(image.shape[:2], bool)
    truth[3000:3240, 5000:5320] = truth_small
    result = assist(GrabCut(), image, Prompt(clicks=(Click(5150, 3110),)))
    assert result.mask.shape == truth.shape and iou(result.mask, truth) > 0.85
    assert result.bbox is not None and 5100 < result.bbox[0] < 5150 and 5150 < result.bbox[2] < 5200


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_every_classical_method_finds_the_object_from_a_box_and_from_a_click(name: str) -> None:
    method = CLASSICAL[name]()
    image, truth = blob_image()
    from_box = assist(method, image, Prompt(box=(105.0, 77.0, 196.0, 144.0))).mask
    from_click = assist(method, image, Prompt(clicks=(centre_click(truth),))).mask
    box_only = np.zeros_like(truth)
    box_only[77:144, 105:196] = True
    assert iou(from_box, truth) > 0.85 > iou(box_only, truth) + 0.05, (iou(from_box, truth), iou(box_only, truth))
    assert iou(from_click, truth) > 0.85


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_a_negative_click_takes_its_place_out_of_the_mask(name: str) -> None:
    method = CLASSICAL[name]()
    image, truth = blob_image()
    first = assist(method, image, Prompt(clicks=(Click(150, 110),))).mask
    assert first[110, 182] and first[110, 150]
    fixed = assist(method, image, Prompt(clicks=(Click(150, 110), Click(182, 110, False)), previous=first)).mask
    assert not fixed[110, 182] and fixed[110, 150] and fixed.sum() < first.sum()


def test_the_answer_holds_an_outline_an_rle_and_the_box_of_the_mask() -> None:
    image, truth = blob_image()
    result = assist(GrabCut(), image, Prompt(box=(105.0, 77.0, 196.0, 144.0)))
    assert np.array_equal(result.rle.decode(), result.mask) and result.area == int(result.mask.sum())
    ys, xs = np.nonzero(result.mask)
    assert result.bbox == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    ring = result.polygon
    assert len(ring) % 2 == 0 and 6 <= len(ring) < 200  # simplified
    drawn = mask_utils.decode(mask_utils.frPyObjects([ring], *truth.shape)).astype(bool)[..., 0]
    assert iou(drawn, result.mask) > 0.95
    body = result.to_json()
    assert body["rle"] == {"size": [240, 320], "counts": result.rle.counts} and body["method"] == "grabcut"


def test_the_outline_is_the_largest_part_and_empty_for_an_empty_mask() -> None:
    mask = np.zeros((50, 60), bool)
    mask[5:10, 5:10] = True
    mask[20:40, 20:50] = True
    ring = np.asarray(mask_polygon(mask)).reshape(-1, 2)
    assert ring[:, 0].min() == pytest.approx(20, abs=0.3) and ring[:, 0].max() == pytest.approx(50, abs=0.3)
    assert ring[:, 1].min() == pytest.approx(20, abs=0.3) and ring[:, 1].max() == pytest.approx(40, abs=0.3)
    assert mask_polygon(np.zeros((5, 5), bool)) == []


def test_the_simulated_annotator_clicks_inside_what_is_missed_and_what_is_wrong() -> None:
    image, truth = blob_image()
    c = centre_click(truth)
    assert c is not None and truth[int(c.y), int(c.x)] and c.positive
    missed = truth.copy()
    missed[:, :150] = False
    fn = region_click(truth & ~missed, positive=True)
    assert fn is not None and fn.x < 150 and truth[int(fn.y), int(fn.x)]
    assert region_click(np.zeros_like(truth), positive=False) is None
    session = refine(GrabCut(), image, truth, Prompt(clicks=(c,)), rounds=2)
    assert len(session.ious) == 3 and session.ious[-1] >= session.ious[0] - 0.02


def test_the_registry_offers_the_classical_methods_and_onnx_only_when_configured() -> None:
    plain = Assistants(Settings())
    assert plain.names() == ["grabcut", "slic", "felzenszwalb"]
    assert [m.name for m in plain.describe()] == plain.names() and not any(m.model for m in plain.describe())
    assert plain.get("slic") is plain.get("slic")
    with pytest.raises(NotFoundError, match="VISIONLOOP_ASSIST_ONNX_ENCODER"):
        plain.get("onnx")
    with pytest.raises(NotFoundError, match="known: grabcut, slic, felzenszwalb"):
        plain.get("watershed")
    configured = Assistants(Settings(assist_onnx_encoder="e.onnx", assist_onnx_decoder="d.onnx"))
    assert configured.names()[-1] == "onnx" and configured.describe()[-1].model


def test_the_lru_cache_keeps_the_most_recent_entries_and_makes_each_once() -> None:
    cache: LruCache[int] = LruCache(2)
    made: list[str] = []

    def maker(key: str):  # noqa: ANN202
        return lambda: made.append(key) or len(made)

    assert cache.get_or_make("a", maker("a")) == 1 and cache.get_or_make("b", maker("b")) == 2
    assert cache.get_or_make("a", maker("a")) == 1  # kept, and now the most recent
    cache.get_or_make("c", maker("c"))  # b goes
    assert len(cache) == 2 and made == ["a", "b", "c"] and cache.misses == 3
    assert cache.get_or_make("b", maker("b")) == 4 and made[-1] == "b"
