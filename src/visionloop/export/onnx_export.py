"""PyTorch model -> ONNX -> model package, for every task.

What goes into the graph, per task (``manifest.output_kind``):

- classification: ``images`` (N, 3, H, W) -> ``probs`` (N, C), softmax inside the graph
- tagging: ``images`` (N, 3, H, W) -> ``probs`` (N, C), sigmoid inside the graph
- detection (torchvision detectors: Faster R-CNN, RetinaNet, SSD, FCOS): ``image`` (3, H, W) in 0..1, any size ->
  ``boxes`` (K, 4) xyxy input pixels, ``labels`` (K,) 1..C, ``scores`` (K,); the detector's own resize, normalisation
  and NMS are in the graph
- instance segmentation (Mask R-CNN): as detection plus ``masks`` (K, 1, H, W) probabilities
- semantic segmentation (torchvision/smp-style models returning (N, C, H, W) logits or ``{"out": ...}``):
  ``images`` -> ``classes`` (N, H, W) int64 and ``confidence`` (N, H, W) softmax maximum

All exports use the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): the dynamo exporter fails
on torchvision detectors here (data-dependent shapes in the RPN's top-k/NMS and ``batched_nms`` have no dynamo ONNX
decomposition, and it needs ``onnxscript``, which this environment does not ship), while torchvision carries explicit
TorchScript-ONNX support for its detection heads, RoIAlign and NMS. One exporter for every task keeps the ONNX graphs
comparable.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionloop.core.errors import VisionloopError
from visionloop.core.package import ClassEntry, Manifest, TensorSpec, write_package
from visionloop.core.preprocess import Preprocess
from visionloop.core.task import Task
from visionloop.export.quantize import quantize_with_guard
from visionloop.models.predict import semantic_probs

__all__ = ["DEFAULT_OPSET", "ExportError", "OnnxModel", "build_manifest", "default_preprocess", "export_model",
           "graph_layout", "is_torchvision_detector", "to_onnx"]

DEFAULT_OPSET = 17


class ExportError(VisionloopError):
    """The model cannot be exported as asked."""


@dataclass(frozen=True)
class OnnxModel:
    model_bytes: bytes
    output_kind: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    opset: int
    batchable: bool
    label_offset: int


def is_torchvision_detector(model: nn.Module) -> bool:
    from torchvision.models.detection.fcos import FCOS
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
    from torchvision.models.detection.retinanet import RetinaNet
    from torchvision.models.detection.ssd import SSD

    return isinstance(model, GeneralizedRCNN | RetinaNet | SSD | FCOS)


def _has_masks(model: nn.Module) -> bool:
    roi = getattr(model, "roi_heads", None)
    return bool(roi is not None and hasattr(roi, "has_mask") and roi.has_mask())


def default_preprocess(model: nn.Module, task: Task | str) -> Preprocess:
    """Preprocessing for a model when the run does not say: detectors take 0..1 images at any size."""
    if is_torchvision_detector(model):
        return Preprocess(size=(320, 320), resize="none", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return Preprocess(size=(224, 224), resize="shorter_crop")


def _tensor_out(y: Any) -> torch.Tensor:
    if isinstance(y, torch.Tensor):
        return y
    if isinstance(y, dict):
        for key in ("out", "logits"):
            if key in y:
                return y[key]
    if isinstance(y, list | tuple) and y and isinstance(y[0], torch.Tensor):
        return y[0]
    raise ExportError(f"cannot export a model whose forward returns {type(y).__name__}; return a tensor of logits")


class _Probs(nn.Module):
    def __init__(self, model: nn.Module, *, sigmoid: bool) -> None:
        super().__init__()
        self.model, self.sigmoid = model, sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = _tensor_out(self.model(x))
        return torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, dim=1)


class _SemanticMap(nn.Module):
    """Class map and confidence of a semantic segmenter, with the run's test-time flips inside the graph."""

    def __init__(self, model: nn.Module, flips: Sequence[str] = ()) -> None:
        super().__init__()
        self.model, self.flips = model, tuple(flips)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        conf, classes = semantic_probs(lambda t: _tensor_out(self.model(t)), x, self.flips).max(dim=1)
        return classes, conf


def _export(module: nn.Module, args: tuple[Any, ...], *, input_names: list[str], output_names: list[str],
            dynamic_axes: dict[str, dict[int, str]], opset: int) -> bytes:
    buf = io.BytesIO()
    # The exporter restores the top module's train/eval mode afterwards, recursively: a fresh wrapper is in train mode
    # and would leave the wrapped model in train mode (BatchNorm on batch statistics). Export everything in eval.
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on torchvision's shape arithmetic are expected
        # dynamo=False: see the module docstring (dynamo fails on torchvision NMS/data-dependent shapes here).
        torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    return buf.getvalue()


def graph_layout(
    model: nn.Module, *, task: Task | str, preprocess: Preprocess, semantic: bool | None = None,
    n_classes: int | None = None, opset: int = DEFAULT_OPSET,
) -> OnnxModel:
    """The inputs, outputs and decoding (``output_kind``) of ``model``'s graph for its task, without exporting it
    (``model_bytes`` is empty): what :func:`to_onnx` writes, and what a run's TorchPredictor decodes.

    ``semantic`` picks semantic (True) or instance (False) segmentation; by default a torchvision detector with a mask
    head is instance segmentation, anything else semantic. ``n_classes``: outputs of a classifier (default: one
    forward pass tells).
    """
    task = Task(task)
    h, w = preprocess.size
    dyn_hw = preprocess.resize == "none"
    if task in (Task.DETECTION, Task.SEGMENTATION) and is_torchvision_detector(model) and not semantic:
        masks = task == Task.SEGMENTATION and _has_masks(model)  # a Mask R-CNN used as a detector: boxes only
        outs = [TensorSpec("boxes", ["detections", 4], "float32"), TensorSpec("labels", ["detections"], "int64"),
                TensorSpec("scores", ["detections"], "float32")]
        if masks:
            outs.append(TensorSpec("masks", ["detections", 1, "height", "width"], "float32"))
        return OnnxModel(b"", "torchvision_instance_segmentation" if masks else "torchvision_detection",
                         [TensorSpec("image", [3, "height", "width"], "float32")], outs, opset, False, 1)
    if task == Task.DETECTION:
        raise ExportError(f"detection export supports torchvision detectors (Faster R-CNN, RetinaNet, SSD, FCOS, "
                          f"Mask R-CNN); got {type(model).__name__}")
    inputs = [TensorSpec("images", ["batch", 3, "height" if dyn_hw else h, "width" if dyn_hw else w], "float32")]
    if task == Task.SEGMENTATION:
        return OnnxModel(b"", "semantic_map", inputs,
                         [TensorSpec("classes", ["batch", "height", "width"], "int64"),
                          TensorSpec("confidence", ["batch", "height", "width"], "float32")], opset, True, 0)
    if n_classes is None:
        with torch.no_grad():
            n_classes = int(_tensor_out(model.eval()(torch.rand(1, 3, h, w))).shape[1])
    return OnnxModel(b"", "tag_probs" if task == Task.TAGGING else "class_probs", inputs,
                     [TensorSpec("probs", ["batch", n_classes], "float32")], opset, True, 0)


def to_onnx(
    model: nn.Module, *, task: Task | str, preprocess: Preprocess, semantic: bool | None = None,
    opset: int = DEFAULT_OPSET,
) -> OnnxModel:
    """Export ``model`` (eval mode is set) to ONNX bytes with the graph layout of its task (see the module docstring
    and :func:`graph_layout`)."""
    layout = graph_layout(model, task=task, preprocess=preprocess, semantic=semantic, opset=opset)
    model = model.eval()
    h, w = preprocess.size
    names = [t.name for t in layout.outputs]
    if layout.output_kind.startswith("torchvision_"):
        dyn = {"image": {1: "height", 2: "width"}, **{n: {0: "detections"} for n in names}}
        if "masks" in names:
            dyn["masks"] = {0: "detections", 2: "height", 3: "width"}
        module = _BoxesOnly(model) if _has_masks(model) and "masks" not in names else model
        data = _export(module, ([torch.rand(3, h, w)],), input_names=["image"], output_names=names, dynamic_axes=dyn,
                       opset=opset)
        return replace(layout, model_bytes=data)
    in_dyn = {0: "batch", **({2: "height", 3: "width"} if preprocess.resize == "none" else {})}
    x = torch.rand(2, 3, h, w)
    if layout.output_kind == "semantic_map":
        flips = preprocess.extra.get("tta_flips", ())
        data = _export(_SemanticMap(model, flips), (x,), input_names=["images"], output_names=names,
                       dynamic_axes={"images": in_dyn, **{n: {0: "batch", 1: "height", 2: "width"} for n in names}},
                       opset=opset)
    else:
        data = _export(_Probs(model, sigmoid=layout.output_kind == "tag_probs"), (x,), input_names=["images"],
                       output_names=names, dynamic_axes={"images": in_dyn, "probs": {0: "batch"}}, opset=opset)
    return replace(layout, model_bytes=data)


class _BoxesOnly(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.model(images)[0]
        return r["boxes"], r["labels"], r["scores"]


def _class_entries(classes: Sequence[Any]) -> list[ClassEntry]:
    out = []
    for i, c in enumerate(classes):
        if isinstance(c, ClassEntry):
            out.append(c)
        elif isinstance(c, str):
            out.append(ClassEntry(id=i, name=c))
        elif isinstance(c, dict):
            out.append(ClassEntry(id=int(c["id"]), name=str(c["name"])))
        elif isinstance(c, tuple | list) and len(c) == 2:
            out.append(ClassEntry(id=int(c[0]), name=str(c[1])))
        elif hasattr(c, "id") and hasattr(c, "name"):
            out.append(ClassEntry(id=int(c.id), name=str(c.name)))
        else:
            raise ExportError(f"classes[{i}] = {c!r}: give names, (id, name) pairs or objects with .id and .name")
    return out


def build_manifest(
    onnx_model: OnnxModel, *, task: Task | str, classes: Sequence[Any], preprocess: Preprocess, name: str,
    thresholds: dict[str, Any] | None = None, metrics: dict[str, float] | None = None, main_metric: str | None = None,
    dataset_version: str | None = None, dataset_hash: str | None = None, config_hash: str | None = None,
    run_id: str | None = None, architecture: str | None = None, extra: dict[str, Any] | None = None,
) -> Manifest:
    entries = _class_entries(classes)
    n_out = onnx_model.outputs[0].shape[-1] if onnx_model.output_kind in {"class_probs", "tag_probs"} else None
    if n_out is not None and n_out != len(entries):
        raise ExportError(f"the model outputs {n_out} scores but {len(entries)} classes were given; pass the run's "
                          "class list in output order")
    return Manifest(
        name=name, task=Task(task), classes=entries, preprocess=preprocess.to_json(),
        output_kind=onnx_model.output_kind, inputs=onnx_model.inputs, outputs=onnx_model.outputs,
        opset=onnx_model.opset, batchable=onnx_model.batchable, label_offset=onnx_model.label_offset,
        thresholds=dict(thresholds or {}), metrics={k: float(v) for k, v in (metrics or {}).items()},
        main_metric=main_metric, dataset_version=dataset_version, dataset_hash=dataset_hash, config_hash=config_hash,
        run_id=run_id, architecture=architecture, extra=dict(extra or {}),
    )


def export_model(
    model: nn.Module, *, task: Task | str, classes: Sequence[Any], out: str | Path, preprocess: Preprocess | None = None,
    name: str | None = None, thresholds: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
    main_metric: str | None = None, dataset_version: str | None = None, dataset_hash: str | None = None,
    config_hash: str | None = None, run_id: str | None = None, architecture: str | None = None,
    semantic: bool | None = None, opset: int = DEFAULT_OPSET, int8: Any = None, overwrite: bool = False,
) -> Path:
    """Export ``model`` and write a package at ``out`` (directory, or .zip/.vlpkg archive); returns ``out``.

    ``int8`` is an optional :class:`visionloop.export.quantize.Int8Options`: the package then holds the static QDQ int8
    model, or :class:`~visionloop.export.quantize.AccuracyDropError` is raised when it loses more than allowed.
    """
    preprocess = preprocess or default_preprocess(model, task)
    onnx_model = to_onnx(model, task=task, preprocess=preprocess, semantic=semantic, opset=opset)
    manifest = build_manifest(
        onnx_model, task=task, classes=classes, preprocess=preprocess, name=name or Path(out).stem,
        thresholds=thresholds, metrics=metrics, main_metric=main_metric, dataset_version=dataset_version,
        dataset_hash=dataset_hash, config_hash=config_hash, run_id=run_id,
        architecture=architecture or type(model).__name__,
    )
    model_bytes = onnx_model.model_bytes
    if int8 is not None:
        model_bytes, manifest = quantize_with_guard(model_bytes, manifest, int8)
    return write_package(out, manifest=manifest, model_bytes=model_bytes, overwrite=overwrite)
