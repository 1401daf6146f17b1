"""The ONNX adapter for promptable segmentation models (SAM family), on a random-weight model of the same contract
built with torch and run with onnxruntime (tests/inference/assist_models.py): coordinates, box, previous mask,
the embedding cache, windows of huge images, and models that do not fit the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.assist_models import export_sam_like
from visionloop.core.settings import Settings
from visionloop.inference.assist import Assistants, AssistModelError, Click, OnnxPromptModel, Prompt, assist


@pytest.fixture(scope="module")
def sam_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_sam_like(tmp_path_factory.mktemp("sam"))


@pytest.fixture
def model(sam_files: tuple[Path, Path]) -> OnnxPromptModel:
    return OnnxPromptModel(*sam_files, cache_entries=2)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_a_click_gives_a_mask_round_it_in_the_original_pixels(model: OnnxPromptModel) -> None:
    image = noise(300, 500)  # resized to 1024 x 614 and padded: the decoder's frame differs from the image's
    result = assist(model, image, Prompt(clicks=(Click(120, 80),)), key="a")
    assert result.mask.shape == (300, 500) and result.mask[80, 120]
    x1, y1, x2, y2 = result.bbox
    assert abs((x1 + x2) / 2 - 120) <= 1.5 and abs((y1 + y2) / 2 - 80) <= 1.5
    tall = assist(model, noise(600, 200), Prompt(clicks=(Click(150, 500),)), key="b")
    x1, y1, x2, y2 = tall.bbox
    assert abs((x1 + x2) / 2 - 150) <= 1.5 and abs((y1 + y2) / 2 - 500) <= 1.5


def test_a_box_gives_its_inside_and_a_negative_click_cuts_into_it(model: OnnxPromptModel) -> None:
    image = noise(300, 500)
    box = assist(model, image, Prompt(box=(200.0, 100.0, 300.0, 250.0)), key="a")
    assert box.bbox == pytest.approx((200, 100, 300, 250), abs=1.5)
    cut = assist(model, image, Prompt(box=(200.0, 100.0, 300.0, 250.0), clicks=(Click(250, 175, False),)), key="a")
    assert box.mask[175, 250] and not cut.mask[175, 250] and cut.area < box.area


def test_the_previous_mask_goes_to_the_decoder_as_mask_input(model: OnnxPromptModel) -> None:
    image = noise(300, 500)
    previous = np.zeros((300, 500), bool)
    previous[150:200, 300:400] = True
    inputs = model.decoder_inputs(Prompt(clicks=(Click(10, 10),), previous=previous), 500, 300,
                                  np.zeros((1, 8, 64, 64), np.float32))
    assert inputs["has_mask_input"].tolist() == [1.0] and inputs["mask_input"].shape == (1, 1, 256, 256)
    low = inputs["mask_input"][0, 0] > 0
    ys, xs = np.nonzero(low)  # 500 px -> 1024 -> 256: x4 / 8.192 ... in the padded frame, top-left aligned
    assert xs.min() == pytest.approx(300 * 1024 / 500 / 4, abs=1.5) and ys.max() == pytest.approx(200 * 1024 / 500 / 4,
                                                                                                   abs=1.5)
    assert inputs["point_labels"].tolist() == [[1.0, -1.0]]  # no box: SAM's padding point
    refined = assist(model, image, Prompt(clicks=(Click(10, 10),), previous=previous), key="a")
    fresh = assist(model, image, Prompt(clicks=(Click(10, 10),)), key="a")
    assert refined.area > fresh.area and refined.mask[175, 350] and not fresh.mask[175, 350]


def test_the_encoder_runs_once_per_image_and_the_cache_is_bounded(model: OnnxPromptModel) -> None:
    image = noise(300, 500)
    for x in (50, 100, 150):
        assist(model, image, Prompt(clicks=(Click(x, 100),)), key="one")
    assert model.encoded == 1
    assist(model, image, Prompt(clicks=(Click(60, 60),)))  # no key: the image's own sha256
    assist(model, noise(300, 500, seed=1), Prompt(clicks=(Click(60, 60),)))
    assert model.encoded == 3 and model.cached == 2  # cache_entries=2: the oldest went
    assist(model, image, Prompt(clicks=(Click(70, 70),)), key="one")
    assert model.encoded == 4


def test_a_huge_image_is_encoded_by_the_window_round_the_prompt(model: OnnxPromptModel) -> None:
    image = np.zeros((5000, 7000, 3), np.uint8)
    result = assist(model, image, Prompt(clicks=(Click(6100, 4200),)), key="huge")
    frame = model.frame(Prompt(clicks=(Click(6100, 4200),)), 7000, 5000)
    assert (frame.w, frame.h) == (2048, 2048) and frame.x0 <= 6100 < frame.x0 + 2048 and frame.y0 <= 4200
    x1, y1, x2, y2 = result.bbox
    assert abs((x1 + x2) / 2 - 6100) <= 3 and abs((y1 + y2) / 2 - 4200) <= 3
    assist(model, image, Prompt(clicks=(Click(6120, 4190),)), key="huge")
    assert model.encoded == 1  # a click nearby: the same window, the same embedding


def test_files_that_are_not_the_contract_are_refused_with_the_reason(sam_files: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    encoder, decoder = sam_files
    with pytest.raises(AssistModelError, match="no such file: set VISIONLOOP_ASSIST_ONNX_ENCODER"):
        OnnxPromptModel(tmp_path / "missing.onnx", decoder)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(AssistModelError, match="onnxruntime cannot load it"):
        OnnxPromptModel(junk, decoder)
    with pytest.raises(AssistModelError, match="a prompt decoder takes"):
        OnnxPromptModel(encoder, encoder)
    with pytest.raises(AssistModelError, match="an image encoder takes one"):
        OnnxPromptModel(decoder, decoder)


def test_the_registry_builds_the_operators_model_once(sam_files: tuple[Path, Path]) -> None:
    encoder, decoder = sam_files
    assistants = Assistants(Settings(assist_onnx_encoder=str(encoder), assist_onnx_decoder=str(decoder)))
    method = assistants.get("onnx")
    assert isinstance(method, OnnxPromptModel) and assistants.get("onnx") is method
    assert "ONNX" in assistants.describe()[-1].title
