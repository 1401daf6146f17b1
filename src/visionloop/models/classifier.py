"""Classifiers: every timm model and torchvision classification model by its own name, split into backbone and head.

* :func:`create_classifier` returns a :class:`Classifier` (``backbone`` -> pooled features, ``head`` -> logits) with
  pretrained weights resolved by :mod:`visionloop.models.weights`, and the :class:`WeightsInfo` saying where they came
  from. An unknown name raises :class:`UnknownModelError` with the closest names (difflib).
* Names that exist in both libraries (``resnet50``) resolve to timm unless ``library="torchvision"``.

The split into backbone and head is what the strategies need: a frozen backbone, cached features + a linear model
(whose weights become the head), or full fine-tuning all produce the same module type, so export and
:func:`visionloop.models.runs.load_run` never care how a model was trained.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionloop.models.spec import UnknownModelError
from visionloop.models.weights import WeightsInfo, pretrained_model

__all__ = [
    "DEFAULT_MODEL",
    "Classifier",
    "build_classifier",
    "classifier_names",
    "create_classifier",
    "pretrained_input_size",
    "resolve_library",
    "suggest_names",
]

DEFAULT_MODEL = "tf_efficientnet_lite0"


@functools.cache
def timm_names() -> frozenset[str]:
    import timm

    return frozenset(timm.list_models())


@functools.cache
def torchvision_names() -> frozenset[str]:
    import torchvision.models as tvm

    return frozenset(tvm.list_models(module=tvm))


def pretrained_input_size(name: str, library: str) -> int | None:
    """The input side (pixels) a classifier's published weights were trained at, from timm's pretrained config or
    torchvision's weights transforms; None when there are no published weights."""
    try:
        if library == "timm":
            import timm

            cfg = timm.models.get_pretrained_cfg(name)
            return int(cfg.input_size[-1]) if cfg is not None else None
        import torchvision.models as tvm

        transforms = tvm.get_model_weights(name).DEFAULT.transforms
        return int(getattr(transforms, "keywords", {}).get("crop_size", 0)) or None
    except (ValueError, KeyError, RuntimeError, AttributeError):
        return None


def classifier_names(library: str | None = None) -> list[str]:
    """Classifier names, timm's then torchvision's (a name both have is listed once, as timm's, unless
    ``library="torchvision"``)."""
    names: list[str] = []
    if library in (None, "timm"):
        names += sorted(timm_names())
    if library in (None, "torchvision"):
        names += sorted(n for n in torchvision_names() if library == "torchvision" or n not in timm_names())
    return names


def suggest_names(name: str, extra: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Up to five known names close to ``name`` (``extra``: more names to consider, e.g. detectors)."""
    pool = set(extra) | timm_names() | torchvision_names()
    close = difflib.get_close_matches(name, pool, n=5, cutoff=0.5)
    return close or sorted(n for n in pool if name.lower() in n.lower())[:5]


def resolve_library(name: str, library: str | None = None) -> str:
    """``"timm"`` or ``"torchvision"`` for a classification model name (timm wins ties unless told otherwise)."""
    if library == "torchvision" and name in torchvision_names():
        return "torchvision"
    if library in (None, "timm") and name in timm_names():
        return "timm"
    if library is None and name in torchvision_names():
        return "torchvision"
    raise UnknownModelError(name, suggest_names(name))


class Classifier(nn.Module):
    """``backbone``: (N, 3, H, W) -> (N, D) pooled features; ``head``: (N, D) -> (N, C) logits.

    ``forward`` returns logits (softmax for classification, sigmoid for tagging happens outside).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, *, num_features: int) -> None:
        super().__init__()
        self.backbone, self.head, self.num_features = backbone, head, num_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def _split_torchvision(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """Replace the last Linear of the classifier attribute with Identity; return (backbone, that Linear)."""
    for attr in ("fc", "classifier", "heads", "head"):
        part = getattr(model, attr, None)
        if part is None:
            continue
        if isinstance(part, nn.Linear):
            setattr(model, attr, nn.Identity())
            return model, part
        linears = [(n, m) for n, m in part.named_modules() if isinstance(m, nn.Linear)]
        if linears:
            path, last = linears[-1]
            parent = part
            *parents, leaf = path.split(".")
            for p in parents:
                parent = getattr(parent, p)
            setattr(parent, leaf, nn.Identity())
            return model, last
    raise UnknownModelError(type(model).__name__, ["a torchvision classifier with fc/classifier/heads/head"])


def _split(model: nn.Module, library: str) -> tuple[nn.Module, nn.Module, int]:
    if library == "timm":
        head = model.get_classifier()
        head = head if isinstance(head, nn.Module) else nn.Identity()
        model.reset_classifier(0)
        return model, head, int(model.num_features)
    backbone, head = _split_torchvision(model)
    return backbone, head, int(head.in_features)


def build_classifier(
    *, name: str, library: str | None = None, num_classes: int | None = None, drop_rate: float = 0.0,
) -> Classifier:
    """The architecture without pretrained weights (what :func:`visionloop.models.runs.load_run` calls).

    ``num_classes=None`` keeps the original (ImageNet) head; otherwise a new Linear head with that many outputs.
    """
    lib = resolve_library(name, library)
    if lib == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
    else:
        import torchvision.models as tvm

        model = tvm.get_model(name, weights=None)
    return _assemble(model, lib, num_classes, drop_rate)


def _assemble(model: nn.Module, lib: str, num_classes: int | None, drop_rate: float) -> Classifier:
    backbone, head, d = _split(model, lib)
    if num_classes is not None:
        head = nn.Linear(d, num_classes)
        if drop_rate > 0:
            head = nn.Sequential(nn.Dropout(drop_rate), head)
    return Classifier(backbone, head, num_features=d)


def create_classifier(
    name: str,
    *,
    num_classes: int | None,
    library: str | None = None,
    pretrained: bool = True,
    weights: str | Path | None = None,
    allow_download: bool = True,
    drop_rate: float = 0.0,
) -> tuple[Classifier, WeightsInfo, dict[str, Any]]:
    """A classifier named ``name`` with pretrained weights; returns (model, weights info, model config).

    The model config ``{"name", "kwargs"}`` (JSON, saved in the run's config) rebuilds the same architecture via
    :func:`visionloop.models.runs.build_from_config`.
    """
    lib = resolve_library(name, library)
    if pretrained or weights is not None:
        full, info = pretrained_model(name, library=lib, weights=weights, allow_download=allow_download)
    else:
        full = build_classifier(name=name, library=lib, num_classes=None)
        info = WeightsInfo(source="none", detail="random initialisation (--no-pretrained)")
        model = full if num_classes is None else _assemble_from(full, num_classes, drop_rate)
        return model, info, _spec(name, lib, num_classes, drop_rate)
    return _assemble(full, lib, num_classes, drop_rate), info, _spec(name, lib, num_classes, drop_rate)


def _assemble_from(model: Classifier, num_classes: int, drop_rate: float) -> Classifier:
    head: nn.Module = nn.Linear(model.num_features, num_classes)
    if drop_rate > 0:
        head = nn.Sequential(nn.Dropout(drop_rate), head)
    return Classifier(model.backbone, head, num_features=model.num_features)


def _spec(name: str, lib: str, num_classes: int | None, drop_rate: float) -> dict[str, Any]:
    return {"name": name,
            "kwargs": {"name": name, "library": lib, "num_classes": num_classes, "drop_rate": drop_rate}}
