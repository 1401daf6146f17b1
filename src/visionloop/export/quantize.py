"""Static int8 (QDQ) quantisation with an accuracy guard.

The fp32 ONNX model is calibrated on training images (MinMax activation ranges, per-channel int8 weights, uint8
activations), then both models run through the same :class:`~visionloop.inference.Predictor` on the validation split
and are scored with the package's main metric by the evaluation code itself (:mod:`visionloop.export.metrics`: the
pycocotools mAP, scikit-learn balanced accuracy / average precision, mIoU), so the guard's fp32 number is the number
``evaluate`` and the manifest give for that split. If the main metric drops by more than ``max_drop`` (absolute,
0.01 = one point) the int8 model is refused with an :class:`AccuracyDropError` carrying both numbers; ``force=True``
keeps it and records the loss in the manifest.

Dynamic int8 is not offered: on conv nets it quantises activations at run time per call and is slower than fp32 on
this CPU; static QDQ folds into int8 kernels (VNNI) instead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.errors import VisionloopError
from visionloop.core.package import Int8Record, Manifest, Package
from visionloop.export.metrics import main_metric
from visionloop.inference.predictor import ImageInput, Predictor

__all__ = ["AccuracyDropError", "Int8Options", "evaluate_model", "judge_int8", "quantize_static_qdq",
           "quantize_with_guard"]


class AccuracyDropError(VisionloopError):
    """The int8 model loses more of the main metric than allowed; ``record`` holds what was measured."""

    def __init__(self, *, metric: str, fp32: float, int8: float, max_drop: float,
                 record: Int8Record | None = None) -> None:
        self.metric, self.fp32, self.int8, self.max_drop, self.record = metric, fp32, int8, max_drop, record
        self.drop = fp32 - int8
        super().__init__(
            f"int8 quantisation refused: {metric} fell from {fp32:.4f} (fp32) to {int8:.4f} (int8), a drop of "
            f"{self.drop:.4f} > the allowed {max_drop:.4f}. Export fp32 (drop --int8), calibrate on more/representative "
            "training images, raise max_drop, or pass --force to write it anyway with the loss recorded"
        )


@dataclass(kw_only=True)
class Int8Options:
    """Inputs to the guard: calibration images (training split) and (image, annotation) validation pairs (core
    annotations in project class ids); ``max_dets``: detections per image in the COCO mAP, as evaluation counts them."""

    calibration: Sequence[ImageInput]
    validation: Sequence[tuple[ImageInput, Any]]
    max_drop: float = 0.01
    force: bool = False
    max_calibration_images: int = 128
    per_channel: bool = True
    sessions: int | None = None
    max_dets: int = 100


class _Reader:
    """onnxruntime CalibrationDataReader over preprocessed images."""

    def __init__(self, arrays: Iterator[dict[str, np.ndarray]]) -> None:
        self._it = arrays

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_static_qdq(
    model_bytes: bytes, calibration_inputs: Sequence[np.ndarray], *, input_name: str, batched: bool,
    per_channel: bool = True,
) -> bytes:
    """fp32 ONNX bytes -> static QDQ int8 ONNX bytes, calibrated on preprocessed (3, H, W) float32 inputs."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration_inputs:
        raise VisionloopError("int8 calibration needs at least one training image; the training split is empty")

    class Reader(_Reader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="visionloop-int8-") as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(model_bytes)
        try:  # shape inference + fusions make better QDQ graphs; detectors' dynamic shapes can defeat it
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=not batched)
        except Exception:  # noqa: BLE001 - optional optimisation; fall back to the raw graph
            pre = src
        feeds = ({input_name: x[None] if batched else x} for x in calibration_inputs)
        quantize_static(
            str(pre), str(dst), Reader(feeds), quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=None if batched else ["Conv", "MatMul", "Gemm"],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        return dst.read_bytes()


def evaluate_model(package: Package, validation: Sequence[tuple[ImageInput, Any]], *,
                   sessions: int | None = None, max_dets: int = 100) -> tuple[str, float]:
    """(main metric key, value) of a package on (image, annotation) pairs, scored as evaluation scores a run: every
    class's score, every detection the model keeps (no score threshold)."""
    with Predictor(package, sessions=sessions, top_k=len(package.manifest.classes), score_threshold=0.0) as pred:
        preds = pred.predict_batch([im for im, _ in validation])
    return main_metric(package.manifest, preds, [t for _, t in validation], max_dets=max_dets)


def judge_int8(*, metric: str, fp32: float, int8: float, max_drop: float, force: bool, method: str,
               calibration_images: int, validation_images: int) -> Int8Record:
    """The guard's decision on measured numbers: the record of an int8 model that may be written (``forced`` when
    it only may because of ``force``), or :class:`AccuracyDropError` (carrying the same record) when it loses more
    than ``max_drop`` of ``metric``."""
    drop = fp32 - int8
    record = Int8Record(method=method, metric=metric, fp32=fp32, int8=int8, drop=drop, max_drop=max_drop,
                        forced=bool(drop > max_drop), calibration_images=calibration_images,
                        validation_images=validation_images)
    if record.forced and not force:
        raise AccuracyDropError(metric=metric, fp32=fp32, int8=int8, max_drop=max_drop, record=record)
    return record


def quantize_with_guard(model_bytes: bytes, manifest: Manifest, options: Int8Options) -> tuple[bytes, Manifest]:
    """Quantise, evaluate fp32 and int8 on the validation pairs, refuse or record; returns (int8 bytes, manifest)."""
    if not options.validation:
        raise VisionloopError("the int8 accuracy guard needs a validation split with annotations; the split is empty")
    fp32_pkg = Package(path=Path("<fp32>"), manifest=manifest, model_bytes=model_bytes)
    with Predictor(fp32_pkg, sessions=1) as p:
        calib = [p.prepare(im).x for im in list(options.calibration)[: options.max_calibration_images]]
        input_name = p.input_name
    int8_bytes = quantize_static_qdq(model_bytes, calib, input_name=input_name, batched=manifest.batchable,
                                     per_channel=options.per_channel)
    int8_pkg = Package(path=Path("<int8>"), manifest=manifest, model_bytes=int8_bytes)
    metric, fp32_value = evaluate_model(fp32_pkg, options.validation, sessions=options.sessions,
                                        max_dets=options.max_dets)
    _, int8_value = evaluate_model(int8_pkg, options.validation, sessions=options.sessions, max_dets=options.max_dets)
    record = judge_int8(metric=metric, fp32=fp32_value, int8=int8_value, max_drop=options.max_drop,
                        force=options.force,
                        method="static-qdq-minmax-u8s8" + ("-per-channel" if options.per_channel else ""),
                        calibration_images=len(calib), validation_images=len(options.validation))
    metrics = {**manifest.metrics, f"{metric}_fp32_export": fp32_value, f"{metric}_int8_export": int8_value}
    return int8_bytes, replace(manifest, int8=record, metrics=metrics)
