"""The model server documents predictions with ``PredictionOut``; answers are ``Prediction.to_json``, the one
prediction schema. Every task's JSON must fit the documented shape exactly (unknown keys are refused)."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.core.annotations import RLE
from visionloop.core.task import Task
from visionloop.inference.results import ClassScore, Detection, Prediction
from visionloop.serving.model_server.schemas import BatchOut, PredictionOut

A, B = ClassScore(1, "a", 0.75), ClassScore(2, "b", 0.25)


def mask(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[2:5, 1:4] = True
    return m


PREDICTIONS = {
    "classification": Prediction(Task.CLASSIFICATION, 8, 6, label=A, scores=[A, B]),
    "tagging": Prediction(Task.TAGGING, 8, 6, tags=[A], scores=[A, B]),
    "detection": Prediction(Task.DETECTION, 8, 6, detections=[Detection((1.0, 2.0, 5.5, 6.0), 1, "a", 0.9)]),
    "instances": Prediction(Task.SEGMENTATION, 8, 6, detections=[
        Detection((1.0, 2.0, 4.0, 5.0), 2, "b", 0.8, mask=RLE.encode(mask(6, 8)))]),
    "semantic": Prediction(Task.SEGMENTATION, 8, 6, scores=[A],
                           class_map=np.where(mask(6, 8), 1, 0).astype(np.int32)),
}


@pytest.mark.parametrize("kind", PREDICTIONS)
def test_every_prediction_fits_the_documented_shape(kind: str) -> None:
    data = PREDICTIONS[kind].to_json()
    out = PredictionOut.model_validate(data)
    assert out.model_dump(exclude_none=True) == data
    assert Prediction.from_json(data).to_json() == data
    BatchOut.model_validate({"model": "m", "results": [
        {"index": 0, "filename": "x.jpg", "ok": True, "prediction": data, "error": None}]})


def test_unknown_keys_are_refused() -> None:
    data = PREDICTIONS["detection"].to_json()
    data["detections"][0]["extra"] = 1
    with pytest.raises(ValueError, match="extra"):
        PredictionOut.model_validate(data)
