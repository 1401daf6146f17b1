"""The model registry: every model a project can train, one :class:`ModelSpec` per name, listable by task and library.

The registry is a plain table built from the tables of the modules below it: our detectors and instance segmenters
(:data:`visionloop.models.detection.DETECTION_MODELS`), our semantic segmenters
(:data:`visionloop.models.segmentation.SEGMENTATION_MODELS`), every timm model and every torchvision classifier
(:mod:`visionloop.models.classifier`; their entries are made on demand, the name lists are long), and the builders a
user adds with :func:`register_model`. Those modules never import this one, and importing it registers nothing.

* :func:`get_spec` finds an entry (an unknown name raises :class:`UnknownModelError` with the closest names);
* :func:`list_specs` / :func:`list_models` list entries / names, ours first, optionally filtered by a substring,
  ``library`` and ``task``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from visionloop.models.classifier import (
    build_classifier,
    classifier_names,
    pretrained_input_size,
    resolve_library,
    suggest_names,
)
from visionloop.models.detection import DETECTION_MODELS
from visionloop.models.segmentation import SEGMENTATION_MODELS
from visionloop.models.spec import ModelKind, ModelSpec, UnknownModelError
from visionloop.models.weights import OFFLINE_SOURCES

__all__ = ["ModelSpec", "UnknownModelError", "get_spec", "list_models", "list_specs", "register_model"]

_USER: dict[str, ModelSpec] = {}


def register_model(
    name: str, *, kind: ModelKind, library: str = "user", description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: add ``builder`` to the registry under ``name`` (a model the project's own code defines)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _USER[name] = ModelSpec(name=name, kind=kind, builder=fn, library=library,
                                description=description or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return wrap


def _ours() -> dict[str, ModelSpec]:
    return {**DETECTION_MODELS, **SEGMENTATION_MODELS, **_USER}


@functools.cache
def _classifier_spec(name: str, library: str) -> ModelSpec:
    return ModelSpec(name=name, kind="classifier", builder=functools.partial(build_classifier, name=name,
                                                                                library=library),
                     library=library, default_pretrained="imagenet",
                     offline_pretrained=(library, name) in OFFLINE_SOURCES,
                     input_size=pretrained_input_size(name, library),
                     description=f"{library} classifier (backbone + linear head)")


def get_spec(name: str, *, library: str | None = None) -> ModelSpec:
    """The entry named ``name``; for a classifier name both timm and torchvision have, ``library`` chooses (timm
    by default)."""
    ours = _ours()
    if name in ours:
        return ours[name]
    try:
        lib = resolve_library(name, library)
    except UnknownModelError:
        raise UnknownModelError(name, suggest_names(name, set(ours))) from None
    return _classifier_spec(name, lib)


def list_specs(pattern: str | None = None, *, library: str | None = None, task: str | None = None) -> list[ModelSpec]:
    """Entries, ours first then timm's and torchvision's classifiers; ``pattern``: a substring of the name;
    ``task``: a project task (``detection``, ``segmentation``, ...) or ``instance_segmentation`` /
    ``semantic_segmentation``; ``library``: ``visionloop``, ``timm``, ``torchvision`` (or another entry's)."""
    specs = [s for s in _ours().values() if library in (None, s.library) and task in (None, *s.tasks)]
    if task in (None, "classification", "tagging") and library in (None, "timm", "torchvision"):
        lib_of = {n: "timm" for n in classifier_names("timm")} if library != "torchvision" else {}
        specs += [_classifier_spec(n, lib_of.get(n, "torchvision")) for n in classifier_names(library)]
    if pattern:
        specs = [s for s in specs if pattern.lower() in s.name.lower()]
    return specs


def list_models(pattern: str | None = None, *, library: str | None = None, task: str | None = None) -> list[str]:
    """The names of :func:`list_specs`."""
    return [s.name for s in list_specs(pattern, library=library, task=task)]
