"""The one evaluation-time preprocessing, shared by training (validation/test), export and the torch-free runtime.

It is plain numpy + Pillow so that ``pip install visionloop[runtime]`` needs no torch. Training-time augmentation
(``data/``) ends with the same resize/normalise, so what the model sees in production equals what it saw in
validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

from visionloop.core.errors import AnnotationValidationError

ResizeMode = Literal["stretch", "shorter_crop", "letterbox", "none"]
Intensity = Literal["fixed", "per_image"]

LEVEL_PERCENTILES = (1.0, 99.8)
"""``per_image`` intensity: the grey levels (all channels pooled) stretched to 0..255, as microscopy tools do: a
faint fluorescence image (mean grey 4) and a bright one (mean 200) reach the model on the same scale."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True, kw_only=True)
class Preprocess:
    """How an RGB image becomes the model's input.

    - ``size``: (height, width) of the model input in pixels.
    - ``resize``: ``stretch`` to size; ``shorter_crop`` resizes the shorter side to size/crop_fraction and crops the
      centre (torchvision's classification recipe); ``letterbox`` keeps the aspect ratio and pads; ``none`` keeps the
      image size (detectors that resize internally).
    - ``mean``/``std``: per-channel, on the 0..1 scale; the output is (3, H, W) float32 ``(x/255 - mean) / std``.
    - ``intensity``: ``fixed`` takes the pixels as they are; ``per_image`` first stretches each image's own grey levels
      (:func:`stretch_levels`, on the image as decoded, before any resize), for data whose exposure varies a lot.
    """

    size: tuple[int, int] = (224, 224)
    resize: ResizeMode = "stretch"
    crop_fraction: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    intensity: Intensity = "fixed"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) <= 0:
            raise AnnotationValidationError("Preprocess.size", expected="(height, width) > 0", actual=self.size)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Preprocess:
        d = dict(d)
        d["size"] = tuple(d["size"])
        d["mean"] = tuple(d["mean"])
        d["std"] = tuple(d["std"])
        return cls(**d)

    def levels(self, im: Image.Image) -> Image.Image:
        """The decoded RGB image with ``intensity`` applied (the first step, before :meth:`geometry`)."""
        if self.intensity == "fixed":
            return im
        return Image.fromarray(stretch_levels(np.asarray(im.convert("RGB"))))

    def _resample(self) -> Image.Resampling:
        return {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[self.interpolation]

    def geometry(self, im: Image.Image) -> tuple[Image.Image, dict[str, float]]:
        """Resize/crop/pad; returns the image and the mapping back to original pixels (scale_x, scale_y, pad_x, pad_y).

        A point (u, v) in the model input maps to ((u - pad_x) / scale_x, (v - pad_y) / scale_y) in the original.
        """
        h, w = self.size
        W, H = im.size
        if self.resize == "none":
            return im, {"scale_x": 1.0, "scale_y": 1.0, "pad_x": 0.0, "pad_y": 0.0}
        if self.resize == "stretch":
            return im.resize((w, h), self._resample()), {"scale_x": w / W, "scale_y": h / H, "pad_x": 0.0, "pad_y": 0.0}
        if self.resize == "shorter_crop":
            short = min(h, w) / self.crop_fraction
            s = short / min(W, H)
            rw, rh = max(w, round(W * s)), max(h, round(H * s))
            im = im.resize((rw, rh), self._resample())
            left, top = (rw - w) // 2, (rh - h) // 2
            return im.crop((left, top, left + w, top + h)), {
                "scale_x": rw / W, "scale_y": rh / H, "pad_x": -float(left), "pad_y": -float(top)}
        s = min(w / W, h / H)
        rw, rh = max(1, round(W * s)), max(1, round(H * s))
        canvas = Image.new("RGB", (w, h), (114, 114, 114))
        px, py = (w - rw) // 2, (h - rh) // 2
        canvas.paste(im.resize((rw, rh), self._resample()), (px, py))
        return canvas, {"scale_x": rw / W, "scale_y": rh / H, "pad_x": float(px), "pad_y": float(py)}

    def normalize(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (3, H, W) float32 normalised."""
        x = rgb.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def __call__(self, im: Image.Image) -> np.ndarray:
        """RGB PIL image -> (3, H, W) float32 model input."""
        out, _ = self.geometry(self.levels(im))
        return self.normalize(np.asarray(out.convert("RGB")))


def stretch_levels(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 with its :data:`LEVEL_PERCENTILES` grey levels (all channels pooled) stretched to 0..255,
    clipped and rounded back to uint8; a flat image comes back unchanged."""
    lo, hi = np.percentile(rgb, LEVEL_PERCENTILES)
    if hi - lo < 1.0:
        return rgb
    out = (rgb.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
