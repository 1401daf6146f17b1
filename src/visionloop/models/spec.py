"""The one shape of a model registry entry, shared by classifiers, detectors and segmenters.

This module sits below every table of models (``models.detection``, ``models.segmentation``, ``models.classifier``)
and below the registry that lists them (``models.registry``), so the tables never import the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from visionloop.core.errors import NotFoundError

__all__ = ["KIND_TASKS", "ModelKind", "ModelSpec", "UnknownModelError"]

ModelKind = Literal["classifier", "detection", "instance", "semantic"]

KIND_TASKS: dict[str, tuple[str, ...]] = {
    "classifier": ("classification", "tagging"),
    "detection": ("detection",),
    "instance": ("segmentation", "instance_segmentation"),
    "semantic": ("segmentation", "semantic_segmentation"),
}
"""The tasks (project tasks, and the finer segmentation kinds) that each kind of model serves."""


class UnknownModelError(NotFoundError):
    """No model of that name; ``choices`` are the closest known names."""

    def __init__(self, name: str, choices: list[str]) -> None:
        super().__init__("model", name, choices=choices or ["see: visionloop models"])


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A registry entry: ``builder(**kwargs) -> nn.Module`` with keyword-only options.

    ``kind``: ``classifier`` (:class:`visionloop.models.classifier.Classifier`: backbone + head), ``detection`` and
    ``instance`` (torchvision's detection contract), ``semantic`` (``{"out": (B, K, H, W) logits}``).
    ``library``: who implements the architecture (``timm``, ``torchvision``, ``visionloop``, ...).
    ``default_pretrained``: where the starting weights come from by default (``imagenet``, ``coco``, ``none``);
    ``offline_pretrained``: those weights ship in an installed package (no network needed).
    ``input_size``: the default input side in pixels (None: chosen from the data at training time).
    """

    name: str
    kind: ModelKind
    builder: Callable[..., nn.Module]
    library: str = "visionloop"
    default_pretrained: str = "none"
    offline_pretrained: bool = False
    input_size: int | None = None
    description: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        return KIND_TASKS[self.kind]

    @property
    def masks(self) -> bool:
        """True for instance segmenters (Mask R-CNN): their outputs carry masks."""
        return self.kind == "instance"

    def build(self, **kwargs: object) -> nn.Module:
        return self.builder(**kwargs)
