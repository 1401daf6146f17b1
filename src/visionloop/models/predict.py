"""Predictions of a model over a dataset, in order: what validation during training and evaluation both use.

* :func:`predict_arrays`: a classifier over an ``ImageDataset`` -> (probabilities (N, C), targets);
* :func:`predict_dataset`: a detector / instance or semantic segmenter over a ``DetectionDataset`` or
  ``SemanticDataset`` -> one ``Boxes``/``Instances`` (model labels 1..K) or (H, W) class map per sample;
* :func:`outputs_to_annotations`: one torchvision detection output -> ``Boxes`` or ``Instances``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from visionloop.core.annotations import RLE, Boxes, Instances

__all__ = ["FLIPS", "outputs_to_annotations", "predict_arrays", "predict_dataset", "semantic_probs"]


@torch.no_grad()
def predict_arrays(model: nn.Module, dataset: Any, *, task: str, batch_size: int = 64,
                   device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, C), targets) over ``dataset``: softmax for classification, sigmoid for tagging."""
    model.eval()
    outs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0):
        logits = model(x.to(device)).float()
        outs.append((logits.softmax(1) if task == "classification" else logits.sigmoid()).cpu().numpy())
        ys.append(y.numpy())
    if not outs:
        return np.zeros((0, 0), np.float32), np.zeros(0)
    return np.concatenate(outs), np.concatenate(ys)


def outputs_to_annotations(
    output: dict[str, torch.Tensor], *, class_ids: Sequence[int] | None = None, mask_threshold: float = 0.5,
) -> Boxes | Instances:
    """One torchvision detection output -> Boxes (or Instances when it has masks); labels stay model labels 1..K
    unless ``class_ids`` (project ids in model order) is given."""
    labels = output["labels"].cpu().numpy().astype(np.int64)
    if class_ids is not None:
        labels = np.asarray([class_ids[int(v) - 1] for v in labels], dtype=np.int64)
    boxes = Boxes(output["boxes"].detach().cpu().numpy().astype(np.float64), labels,
                  output["scores"].detach().cpu().numpy().astype(np.float64).clip(0, 1))
    if "masks" not in output:
        return boxes
    masks = (output["masks"][:, 0] > mask_threshold).cpu().numpy()
    return Instances(boxes, [RLE.encode(m) for m in masks])


FLIPS = {"h": (-1,), "v": (-2,)}
"""Flips a semantic segmenter's test-time augmentation may average over: horizontal (the width axis) and vertical."""


def semantic_probs(model: Callable[[torch.Tensor], Any], x: torch.Tensor, flips: Sequence[str] = ()) -> torch.Tensor:
    """Class probabilities (N, K, H, W) of a semantic segmenter at the size of ``x`` (N, 3, H, W): the softmax of its
    logits (resized to ``x`` when the model answers smaller), averaged with the softmax of each flipped copy of ``x``
    flipped back (``flips``: keys of :data:`FLIPS`; test-time augmentation). The evaluation, the torch predictor and
    the exported ONNX graph all compute this."""
    total = None
    for flip in ("", *flips):
        dims = FLIPS[flip] if flip else ()
        logits = model(x.flip(dims) if dims else x)
        logits = logits["out"] if isinstance(logits, dict) else logits
        if logits.shape[-2:] != x.shape[-2:]:
            logits = nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        probs = torch.softmax(logits, dim=1)
        probs = probs.flip(dims) if dims else probs
        total = probs if total is None else total + probs
    assert total is not None
    return total / (1 + len(flips))


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: Any, *, kind: str, batch_size: int = 2,
                    semantic_size: tuple[int, int] | None = None, flips: Sequence[str] = ()) -> list[Any]:
    """Predictions for every sample of ``dataset`` in order: Boxes/Instances (model labels) or (H, W) class maps
    (``flips``: a semantic segmenter's test-time flips, see :func:`semantic_probs`)."""
    model.eval()
    out: list[Any] = []
    for start in range(0, len(dataset), batch_size):
        samples = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
        images = [s[0] for s in samples]
        if kind == "semantic":
            for img in images:
                h, w = img.shape[-2:]
                x = img[None]
                if semantic_size is not None:
                    x = nn.functional.interpolate(x, size=semantic_size, mode="bilinear", align_corners=False)
                probs = semantic_probs(model, x, flips)
                probs = nn.functional.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
                out.append(probs.argmax(1)[0].cpu().numpy().astype(np.int32))
        else:
            for o in model(images):
                out.append(outputs_to_annotations(o))
    return out
