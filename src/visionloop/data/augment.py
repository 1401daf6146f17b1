"""Label-safe augmentation with torchvision.transforms.v2, chosen from the ontology's class flags, for every task.

The policy is data, not code: one :class:`AugmentPolicy` is saved with every run (``config.json``) and shown in the
report, with the reason for every switch that the ontology turned off. One rule for every task: a class that is
``orientation_sensitive`` turns off flips (horizontal and vertical) and rotation; a class that is ``colour_sensitive``
turns off hue, saturation and grayscale changes (brightness and contrast stay).

Classification (:func:`train_transform`) ends in the same geometry and normalisation as the evaluation-time
:class:`visionloop.core.preprocess.Preprocess` (output size and mean/std), so what the model sees in training matches
validation, export and production. Detection and segmentation apply the same policy to the image, its boxes and its
masks together (:func:`visionloop.data.detection.build_transforms`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

from visionloop.core.ontology import Ontology
from visionloop.core.preprocess import Preprocess

__all__ = ["AugmentPolicy", "eval_transform", "train_transform"]


@dataclass(frozen=True, kw_only=True)
class AugmentPolicy:
    """What training may do to an image without changing its label.

    ``crop_scale``: RandomResizedCrop area range (classification; None: plain resize). ``scale_jitter``: random zoom
    range applied half the time (detection and segmentation keep the native resolution otherwise; None: no zoom).
    ``hflip``/``vflip``: random flips. ``rotation``: max degrees either way (classification; rotated boxes would
    loosen). ``brightness``/``contrast``/``saturation``/``hue``: colour jitter strengths (0 = off). ``grayscale``:
    probability (classification). ``reasons``: why switches are off (e.g. ``"no flips or rotation: class 'left' is
    orientation_sensitive"``).
    """

    crop_scale: tuple[float, float] | None = (0.6, 1.0)
    scale_jitter: tuple[float, float] | None = (0.75, 1.25)
    hflip: bool = True
    vflip: bool = False
    rotation: float = 10.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    grayscale: float = 0.05
    reasons: tuple[str, ...] = ()

    @classmethod
    def from_ontology(cls, ontology: Ontology, *, base: AugmentPolicy | None = None, **overrides: Any,
                      ) -> AugmentPolicy:
        """``base`` (default policy) with ``overrides`` (e.g. ``vflip=True`` for top-down imagery), then the flags:
        no flips and no rotation when a class is ``orientation_sensitive``, no hue, saturation or grayscale change
        when a class is ``colour_sensitive``."""
        policy = replace(base or cls(), **overrides)
        reasons = list(policy.reasons)
        orient = [c.name for c in ontology.active if c.orientation_sensitive]
        colour = [c.name for c in ontology.active if c.colour_sensitive]
        if orient:
            policy = replace(policy, hflip=False, vflip=False, rotation=0.0)
            reasons.append(f"no flips or rotation: {', '.join(orient)} orientation_sensitive (mirroring or turning "
                           "changes the class)")
        if colour:
            policy = replace(policy, saturation=0.0, hue=0.0, grayscale=0.0)
            reasons.append(f"no colour jitter or grayscale: {', '.join(colour)} colour_sensitive")
        return replace(policy, reasons=tuple(reasons))

    @property
    def colour_changes(self) -> bool:
        """Whether hue or saturation may change (off for colour-sensitive classes)."""
        return bool(self.saturation or self.hue)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["crop_scale"] = list(self.crop_scale) if self.crop_scale else None
        d["scale_jitter"] = list(self.scale_jitter) if self.scale_jitter else None
        d["reasons"] = list(self.reasons)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AugmentPolicy:
        """Read :meth:`to_json`, and the older detection layout (``horizontal_flip``, ``photometric``, ``crop``)."""
        d = dict(d)
        legacy = {"horizontal_flip": "hflip", "vertical_flip": "vflip"}
        for old, new in legacy.items():
            if old in d:
                d[new] = d.pop(old)
        if d.pop("photometric", True) is False:
            d.update(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale=0.0)
        if d.pop("crop", True) is False:
            d["scale_jitter"] = None
        for key in ("crop_scale", "scale_jitter"):
            if key in d:
                d[key] = tuple(d[key]) if d[key] else None
        d["reasons"] = tuple(d.get("reasons", ()))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self) -> list[str]:
        """Human-readable lines for the report."""
        out = []
        out.append(f"random resized crop, area {self.crop_scale[0]:.0%}-{self.crop_scale[1]:.0%}"
                   if self.crop_scale else "resize only (no random crop)")
        if self.scale_jitter:
            out.append(f"detection/segmentation: random zoom {self.scale_jitter[0]:g}x-{self.scale_jitter[1]:g}x")
        out.append("horizontal flip" if self.hflip else "no horizontal flip")
        if self.vflip:
            out.append("vertical flip")
        out.append(f"rotation within ±{self.rotation:g}°" if self.rotation else "no rotation")
        out.append(f"brightness ±{self.brightness:g}, contrast ±{self.contrast:g}")
        out.append(f"colour jitter saturation ±{self.saturation:g}, hue ±{self.hue:g}"
                   if self.saturation or self.hue else "no colour jitter")
        out.append(f"grayscale p={self.grayscale:g}" if self.grayscale else "no grayscale")
        return out + list(self.reasons)


_INTERP = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
           "nearest": InterpolationMode.NEAREST}


def train_transform(policy: AugmentPolicy, preprocess: Preprocess) -> Callable[[Image.Image | np.ndarray], torch.Tensor]:
    """RGB image (PIL or (H, W, 3) uint8) -> (3, H, W) float32 normalised like ``preprocess``, randomly augmented.

    Uses the global torch RNG (the loader seeds it per sample).
    """
    size = list(preprocess.size)
    interp = _INTERP.get(preprocess.interpolation, InterpolationMode.BILINEAR)
    steps: list[Any] = [v2.ToImage()]
    if policy.rotation:
        steps.append(v2.RandomRotation(policy.rotation, interpolation=InterpolationMode.BILINEAR))
    if policy.crop_scale:
        steps.append(v2.RandomResizedCrop(size, scale=policy.crop_scale, interpolation=interp, antialias=True))
    else:
        steps.append(v2.Resize(size, interpolation=interp, antialias=True))
    if policy.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if policy.vflip:
        steps.append(v2.RandomVerticalFlip())
    if policy.brightness or policy.contrast or policy.saturation or policy.hue:
        steps.append(v2.ColorJitter(brightness=policy.brightness, contrast=policy.contrast,
                                    saturation=policy.saturation, hue=policy.hue))
    if policy.grayscale:
        steps.append(v2.RandomGrayscale(p=policy.grayscale))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(preprocess.mean), list(preprocess.std))]
    return v2.Compose(steps)


def eval_transform(preprocess: Preprocess) -> Callable[[Image.Image | np.ndarray], torch.Tensor]:
    """Exactly :class:`Preprocess` (numpy/PIL, the code export and the runtime use) as a torch tensor.

    Accepts a PIL image, or an (H, W, 3) uint8 array that is *already* through ``preprocess.geometry`` (the eval
    cache stores those, so normalising them again gives the same numbers as preprocessing the original).
    """

    def apply(im: Image.Image | np.ndarray) -> torch.Tensor:
        if isinstance(im, np.ndarray):
            return torch.from_numpy(preprocess.normalize(im))
        return torch.from_numpy(preprocess(im))

    return apply
