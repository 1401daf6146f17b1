"""Datasets and label-safe augmentation for detection and segmentation over a dataset version.

Samples are ``(image, target)`` in torchvision's detection format: ``image`` a ``tv_tensors.Image`` (3, H, W) float in
0..1; ``target`` a dict with ``boxes`` (``tv_tensors.BoundingBoxes`` xyxy pixels), ``labels`` (N,) int64 in 1..K
(model order; 0 is background), ``masks`` (``tv_tensors.Mask`` (N, H, W) uint8, instance segmentation only) and
``image_id``. Semantic segmentation samples have ``target = {"mask": tv_tensors.Mask (H, W) int64}`` with classes
0..K-1 and 255 for unlabelled pixels, and an ImageNet-normalised image (torchvision's segmenters do not normalise).

Augmentation uses ``torchvision.transforms.v2``: each transform samples its parameters once and applies them to the
image, its boxes and its masks alike (by tv_tensor type); :class:`~torchvision.transforms.v2.SanitizeBoundingBoxes`
then drops boxes (and their masks and labels) that left the image or became degenerate. The policy is the one
:class:`~visionloop.data.augment.AugmentPolicy` of every task, following the ontology: no flips when a class is
``orientation_sensitive``, no hue or saturation change when a class is ``colour_sensitive``. Multi-scale training is done by the detector itself (a tuple of ``min_size`` values, one drawn
per batch), so the dataset keeps the native resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from visionloop.core.annotations import Boxes, Instances, SemanticMask
from visionloop.core.errors import AnnotationValidationError
from visionloop.core.imageio import decode
from visionloop.core.ontology import Ontology
from visionloop.core.preprocess import IMAGENET_MEAN, IMAGENET_STD, Intensity, stretch_levels
from visionloop.data.augment import AugmentPolicy

__all__ = [
    "DetectionDataset",
    "SemanticDataset",
    "build_transforms",
    "detection_collate",
    "label_map",
    "semantic_classes",
]


def label_map(ontology: Ontology) -> dict[int, int]:
    """Project class id -> model label 1..K, in ``ontology.active`` order (0 is the detector's background)."""
    return {c.id: i + 1 for i, c in enumerate(ontology.active)}


def semantic_classes(ontology: Ontology) -> tuple[dict[int, int], list[tuple[int, str]]]:
    """Semantic maps: project class id -> model class index, and (project id, name) per model class.

    When the ontology has no class with id 0, pixel value 0 is the implicit ``background`` (model class 0) and the
    active classes follow as 1..K; a class named ``background`` (as mask exports of other tools name index 0) is that
    model class 0 too, not a second one. With a class of id 0, the active classes are 0..K-1 in order.
    """
    active = ontology.active
    if any(c.id == 0 for c in active):
        return {c.id: i for i, c in enumerate(active)}, [(c.id, c.name) for c in active]
    bg = next((c for c in active if c.name.lower() in ("background", "_background_")), None)
    others = [c for c in active if c is not bg]
    mapping = {0: 0} | ({bg.id: 0} if bg else {}) | {c.id: i + 1 for i, c in enumerate(others)}
    return mapping, [(bg.id if bg else 0, bg.name if bg else "background")] + [(c.id, c.name) for c in others]


def build_transforms(policy: AugmentPolicy | None, *, train: bool, semantic: bool = False) -> Callable[..., Any]:
    """transforms.v2 pipeline; evaluation (``train=False`` or no policy) only converts to float.

    Training follows ``policy`` (the same :class:`~visionloop.data.augment.AugmentPolicy` classification uses):
    torchvision's photometric distortion when hue/saturation may change, else brightness/contrast only; a random
    zoom in ``scale_jitter`` half the time; flips. ``semantic``: the target is one class map (pixels moved in from
    outside become 255, unlabelled) without boxes.
    """
    ops: list[Any] = []
    if train and policy is not None:
        if policy.colour_changes:
            ops.append(v2.RandomPhotometricDistort(p=0.5, hue=(-policy.hue, policy.hue)))
        elif policy.brightness or policy.contrast:
            ops.append(v2.RandomApply([v2.ColorJitter(brightness=policy.brightness, contrast=policy.contrast)], p=0.5))
        if policy.scale_jitter:
            lo, hi = policy.scale_jitter
            fill: Any = {tv_tensors.Mask: 255, "others": 0} if semantic else 0
            ops.append(v2.RandomApply([v2.RandomAffine(degrees=0.0, scale=(lo, hi), fill=fill)], p=0.5))
        if policy.hflip:
            ops.append(v2.RandomHorizontalFlip(0.5))
        if policy.vflip:
            ops.append(v2.RandomVerticalFlip(0.5))
    ops.append(v2.ToDtype(torch.float32, scale=True))
    if semantic:  # torchvision's segmenters take normalised input (its detectors normalise themselves)
        ops.append(v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)))
    if train and policy is not None and not semantic:
        ops.append(v2.ClampBoundingBoxes())
        ops.append(v2.SanitizeBoundingBoxes(min_size=2.0))
    return v2.Compose(ops)


def detection_collate(batch: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    """Lists of images and targets (detectors take images of different sizes)."""
    images, targets = zip(*batch, strict=True) if batch else ((), ())
    return list(images), list(targets)


class DetectionDataset(torch.utils.data.Dataset):
    """Boxes or instance masks of version items; ``items`` are ``VersionItem``-like (``.image``, ``.annotation``).

    ``image_source(sha256)`` gives what :func:`~visionloop.core.imageio.decode` reads: a local file or the bytes of a
    blob (``project.blobs.source``, which works on local and fsspec stores alike). ``masks=True`` adds instance masks.
    Boxes of classes that are not active are dropped; boxes under 1 px are dropped (zero-size source boxes).
    """

    def __init__(
        self,
        items: Sequence[Any],
        *,
        ontology: Ontology,
        image_source: Callable[[str], Any],
        transforms: Callable[..., Any] | None = None,
        masks: bool = False,
    ) -> None:
        self.items, self.image_source, self.masks = list(items), image_source, masks
        self.labels = label_map(ontology)
        self.transforms = transforms or build_transforms(None, train=False)

    def __len__(self) -> int:
        return len(self.items)

    def _kept(self, ann: Any) -> tuple[Boxes, list[int]]:
        if ann is None:
            return Boxes.empty(), []
        boxes = ann.boxes if isinstance(ann, Instances) else ann
        if not isinstance(boxes, Boxes):
            raise AnnotationValidationError(
                "annotation", expected="Boxes or Instances", actual=type(ann).__name__,
                hint="detection and instance segmentation train on boxes or instance masks",
            )
        wh = boxes.xyxy[:, 2:] - boxes.xyxy[:, :2]
        keep = [i for i, c in enumerate(boxes.class_id.tolist()) if c in self.labels and wh[i].min() >= 1]
        return boxes, keep

    def ground_truth(self, index: int) -> Boxes | Instances:
        """The evaluation ground truth of ``index`` in model labels (no image decode, no augmentation)."""
        ann = self.items[index].annotation
        boxes, keep = self._kept(ann)
        ids = np.asarray([self.labels[int(boxes.class_id[i])] for i in keep], dtype=np.int64)
        out = Boxes(boxes.xyxy[keep], ids)
        if isinstance(ann, Instances):
            return Instances(out, [ann.segmentations[i] for i in keep])
        return out

    def size(self, index: int) -> tuple[int, int]:
        """(height, width) of image ``index``."""
        return self.items[index].image.height, self.items[index].image.width

    def raw(self, index: int) -> tuple[Image.Image, np.ndarray, np.ndarray, np.ndarray | None]:
        """PIL image, (N, 4) xyxy, (N,) model labels, (N, H, W) uint8 masks or None, before any transform."""
        item = self.items[index]
        im = decode(self.image_source(item.image.sha256))
        ann = item.annotation
        boxes, keep = self._kept(ann)
        xyxy = boxes.xyxy[keep].astype(np.float32).reshape(-1, 4)
        labels = np.asarray([self.labels[int(boxes.class_id[i])] for i in keep], dtype=np.int64)
        masks = None
        if self.masks:
            h, w = im.height, im.width
            if isinstance(ann, Instances):
                masks = np.stack([ann.mask(i, h, w) for i in keep]).astype(np.uint8) if keep else None
            if masks is None:
                masks = np.zeros((0, h, w), dtype=np.uint8)
        return im, xyxy, labels, masks

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        im, xyxy, labels, masks = self.raw(index)
        image = tv_tensors.Image(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(xyxy).reshape(-1, 4), format="XYXY",
                                              canvas_size=(im.height, im.width)),
            "labels": torch.from_numpy(labels),
            "image_id": index,
        }
        if masks is not None:
            target["masks"] = tv_tensors.Mask(torch.from_numpy(masks))
        image, target = self.transforms(image, target)
        target["boxes"] = target["boxes"].as_subclass(torch.Tensor).float()
        if "masks" in target:
            target["masks"] = target["masks"].as_subclass(torch.Tensor)
        return image.as_subclass(torch.Tensor), target


class SemanticDataset(torch.utils.data.Dataset):
    """Semantic masks of version items; classes map as :func:`semantic_classes` says, other values to 255.

    ``intensity="per_image"`` stretches each decoded image's grey levels before ``transforms``
    (:func:`~visionloop.core.preprocess.stretch_levels`, as :meth:`Preprocess.levels` does in packages).
    """

    def __init__(
        self,
        items: Sequence[Any],
        *,
        ontology: Ontology,
        image_source: Callable[[str], Any],
        transforms: Callable[..., Any] | None = None,
        intensity: Intensity = "fixed",
    ) -> None:
        self.items, self.image_source, self.intensity = list(items), image_source, intensity
        self.labels, self.classes = semantic_classes(ontology)
        self.transforms = transforms or build_transforms(None, train=False, semantic=True)

    def __len__(self) -> int:
        return len(self.items)

    def target_mask(self, index: int, height: int, width: int) -> np.ndarray:
        """(H, W) int64 classes 0..K-1, 255 unlabelled."""
        ann = self.items[index].annotation
        out = np.full((height, width), 255, dtype=np.int64)
        if isinstance(ann, SemanticMask):
            for cid, idx in self.labels.items():
                out[ann.mask == cid] = idx
        elif isinstance(ann, Instances):  # instances as a semantic map: unmasked pixels are class 0
            out[:] = 0
            for i, cid in enumerate(ann.boxes.class_id.tolist()):
                if cid in self.labels:
                    out[ann.mask(i, height, width)] = self.labels[cid]
        return out

    def __getitem__(self, index: int) -> tuple[Any, dict[str, Any]]:
        item = self.items[index]
        im = decode(self.image_source(item.image.sha256))
        rgb = np.asarray(im)
        rgb = stretch_levels(rgb) if self.intensity == "per_image" else rgb.copy()
        image = tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(self.target_mask(index, im.height, im.width)))
        image, mask = self.transforms(image, mask)
        return image.as_subclass(torch.Tensor), {"mask": mask.as_subclass(torch.Tensor), "image_id": index}
