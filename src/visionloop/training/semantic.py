"""What semantic segmentation training does differently from detection: object sizes, loss, optimiser, metric keys.

:func:`visionloop.training.detection.train_detection` trains all three kinds with the shared loop; for semantic masks
it takes these pieces from here:

* :func:`semantic_object_fractions`: the objects of a class map are its connected regions (``scipy.ndimage``), so
  the object-size rule that picks the input size for detectors applies to masks too (tiny nuclei are not shrunk
  away by stretching large images to a small square);
* :func:`semantic_loss`: cross-entropy + Dice (``segmentation_models_pytorch.losses``), Dice keeping a small
  foreground class from drowning in the background pixels (DSB2018: nuclei are ~13 % of the pixels);
* :data:`SEMANTIC_HPARAMS`: AdamW at 1e-3 (one-cycle: warm-up, cosine decay), the usual U-Net recipe;
* :func:`semantic_val_metrics`: the validation keys ``val_miou``, ``val_pixel_accuracy`` and ``val_iou/<class>``;
* :func:`semantic_intensity`: whether images reach the model with their own grey levels stretched (``per_image``),
  chosen from how much their brightness varies (microscopy: DSB2018 fluorescence images have a mean grey of 4 to 40,
  its brightfield ones above 200).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from visionloop.core.annotations import SemanticMask
from visionloop.evaluation.keys import MIOU, PIXEL_ACCURACY, split_key

__all__ = [
    "SEMANTIC_DEFAULT_MODEL",
    "SEMANTIC_HPARAMS",
    "SEMANTIC_MIN_OBJECT_PX",
    "semantic_epochs",
    "semantic_hparams",
    "semantic_intensity",
    "semantic_loss",
    "semantic_object_fractions",
    "semantic_val_metrics",
]

SEMANTIC_DEFAULT_MODEL = "unet_mobilenet_v2"

SEMANTIC_MIN_OBJECT_PX = 16
"""Shorter side the median object should have at the input size: four cells of the U-Net's stride-4 features. A
U-Net predicts at full resolution, so it needs less than a detector's anchors (24 px); the cost grows with the input
side squared (DSB2018 test nucleus IoU after 12 epochs: 0.727 at 256 px, 0.746 at 320; 0.732 at 384 after 16)."""

INTENSITY_SPREAD = 4.0
"""``per_image`` intensity when the 90th percentile of the training images' mean grey levels is at least this many
times the 10th (everyday photographs: about 2 to 3)."""
INTENSITY_SAMPLE = 200
"""Training images read to measure the spread (evenly spaced over the split)."""

SEMANTIC_HPARAMS: dict[str, Any] = {"optimizer": "adamw", "lr": 1e-3 / 4, "batch_size": 4, "weight_decay": 1e-4,
                                    "epochs": 0, "warmup_steps": 20, "crop_size": 160}
"""Defaults for semantic runs where :class:`~visionloop.training.detection.DetectionHParams` holds detector ones:
AdamW at a step lr of 1e-3 (``lr`` is per image, as there), batches of 4 random 160 px crops of the resized images
(a U-Net sees objects at their evaluation scale for a fraction of the cost of whole images); the epochs (0) are
chosen by :func:`semantic_epochs`."""

SEMANTIC_STEPS = 750
"""Optimiser steps a semantic run should take at least when its epochs are left to :func:`semantic_epochs`."""


def semantic_epochs(n_train: int, batch_size: int, *, low: int = 12, high: int = 48) -> tuple[int, str]:
    """Epochs for ``n_train`` training images in batches of ``batch_size``, and why: enough for
    :data:`SEMANTIC_STEPS` optimiser steps, within ``low``..``high``. Random crops show a different part of each
    image at every pass, so a small set keeps gaining from more of them (DSB2018, 84 images: test nucleus IoU 0.723
    and 0.755 after 12 epochs, 252 steps; 0.763 after 36, 756 steps)."""
    per_epoch = max(1, math.ceil(n_train / max(1, batch_size)))
    wanted = math.ceil(SEMANTIC_STEPS / per_epoch)
    epochs = int(min(max(wanted, low), high))
    return epochs, (f"{n_train} training images: {epochs} epochs of {per_epoch} steps "
                    f"(the aim: {SEMANTIC_STEPS} steps, {low} to {high} epochs)")


def semantic_hparams(hp: Any) -> Any:
    """``hp`` (a :class:`~visionloop.training.detection.DetectionHParams`) with every field still at its detector
    default replaced by the semantic one of :data:`SEMANTIC_HPARAMS`; fields set by the user are kept (those that
    differ from the default, and those named in ``hp.extra["set_by_user"]``, such as ``--batch-size 2``), and so is
    the step lr the user set."""
    default = type(hp)()
    kept = set(hp.extra.get("set_by_user", ())) | {k for k in SEMANTIC_HPARAMS if getattr(hp, k) != getattr(default, k)}
    out = dataclasses.replace(hp, **{k: v for k, v in SEMANTIC_HPARAMS.items() if k not in kept})
    if "lr" in kept:  # the user's step lr (``lr * batch_size``) stays what it was, whatever the batch size
        out.lr = hp.lr * hp.batch_size / out.batch_size
    return out


def semantic_object_fractions(items: Sequence[Any], labels: Mapping[int, int]) -> np.ndarray:
    """The shorter side of every connected region of a foreground class, as a fraction of its image's shorter side.

    ``items`` have ``.annotation`` (:class:`SemanticMask`; others are skipped) and ``.image`` (``width``,
    ``height``); ``labels`` maps mask values to model classes (:func:`visionloop.data.detection.semantic_classes`):
    model class 0 is the background, values not in it are unlabelled. Regions are 4-connected.
    """
    from scipy import ndimage

    out: list[float] = []
    for it in items:
        ann = it.annotation
        if not isinstance(ann, SemanticMask):
            continue
        short = min(it.image.width, it.image.height)
        for value in np.unique(ann.mask):
            if labels.get(int(value), 0) == 0:
                continue
            regions, _ = ndimage.label(ann.mask == value)
            for sl in ndimage.find_objects(regions):
                if sl is not None:
                    out.append(min(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) / short)
    return np.asarray(out, dtype=np.float64)


@functools.cache
def _dice() -> nn.Module:
    import segmentation_models_pytorch as smp

    return smp.losses.DiceLoss("multiclass", ignore_index=255)


def semantic_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy + Dice on ``out`` (255 ignored), plus 0.5 x cross-entropy on ``aux`` when the model has one.

    ``batch``: (list of (3, H, W) images, list of ``{"mask": (H, W)}`` targets), all of one size.
    """
    images, targets = batch
    x = torch.stack(images)
    y = torch.stack([t["mask"] for t in targets]).long()
    out = model(x)
    ce = nn.functional.cross_entropy(out["out"], y, ignore_index=255)
    dice = _dice()(out["out"], y)
    loss = ce + dice
    logs = {"loss_ce": float(ce.detach()), "loss_dice": float(dice.detach())}
    if "aux" in out:
        aux = nn.functional.cross_entropy(out["aux"], y, ignore_index=255)
        loss = loss + 0.5 * aux
        logs["loss_aux"] = float(aux.detach())
    return loss, logs


def semantic_val_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Validation keys from :func:`visionloop.evaluation.detection.semantic_metrics`: ``val_miou``,
    ``val_pixel_accuracy`` and ``val_iou/<class name>`` (classes absent from ground truth and prediction left out)."""
    out = {split_key("val", MIOU): float(metrics[MIOU]),
           split_key("val", PIXEL_ACCURACY): float(metrics[PIXEL_ACCURACY])}
    for name, row in metrics["per_class"].items():
        if row["iou"] is not None:
            out[f"val_iou/{name}"] = float(row["iou"])
    return out


def semantic_intensity(items: Sequence[Any], image_source: Any) -> tuple[str, str]:
    """(``fixed`` | ``per_image``, the reason) from the mean grey levels of up to :data:`INTENSITY_SAMPLE` of
    ``items`` (``.image.sha256``, read through ``image_source`` as :func:`~visionloop.core.imageio.decode` takes it)."""
    from visionloop.core.imageio import decode

    step = max(1, len(items) // INTENSITY_SAMPLE)
    means = [float(np.asarray(decode(image_source(it.image.sha256)).convert("L").reduce(4)).mean())
             for it in list(items)[::step][:INTENSITY_SAMPLE]]
    if not means:
        return "fixed", "no training image to measure"
    lo, hi = np.percentile(means, [10, 90])
    spread = float(hi / max(lo, 1.0))
    if spread >= INTENSITY_SPREAD:
        return "per_image", (f"per-image grey levels: image brightness varies {spread:.0f}x across the training images "
                             f"(mean grey {lo:.0f} at the 10th percentile, {hi:.0f} at the 90th)")
    return "fixed", f"fixed grey levels: image brightness varies only {spread:.1f}x across the training images"
