"""Models: one registry of builders (classifiers, detectors, segmenters), pretrained-weight resolution, run models."""

from visionloop.models.classifier import Classifier, build_classifier, create_classifier
from visionloop.models.registry import get_spec, list_models, list_specs, register_model
from visionloop.models.spec import ModelSpec, UnknownModelError
from visionloop.models.weights import WeightsInfo, WeightsNotFoundError, pretrained_model

__all__ = [
    "Classifier",
    "ModelSpec",
    "UnknownModelError",
    "WeightsInfo",
    "WeightsNotFoundError",
    "build_classifier",
    "create_classifier",
    "get_spec",
    "list_models",
    "list_specs",
    "pretrained_model",
    "register_model",
]
