"""Model registry (timm + torchvision classifiers by name, registered builders) and pretrained-weight resolution."""

from visionloop.models.registry import (
    Classifier,
    UnknownModelError,
    build_classifier,
    create_classifier,
    list_models,
    register_model,
)
from visionloop.models.weights import WeightsInfo, WeightsNotFoundError, pretrained_model

__all__ = [
    "Classifier",
    "UnknownModelError",
    "WeightsInfo",
    "WeightsNotFoundError",
    "build_classifier",
    "create_classifier",
    "list_models",
    "pretrained_model",
    "register_model",
]
