"""The torch-free runtime: ``Predictor(package)`` on onnxruntime (``pip install visionloop[runtime]``), and the one
prediction schema every predicting part answers in."""

from visionloop.core.package import Manifest, Package, PackageError, load_package
from visionloop.inference.predictor import (
    DEFAULT_SCORE_THRESHOLD,
    IMAGE_SUFFIXES,
    Predictor,
    Prepared,
    default_sessions,
    iter_images,
)
from visionloop.inference.results import (
    ClassScore,
    Detection,
    Prediction,
    mask_from_json,
    mask_to_json,
    prediction_row,
)

__all__ = [
    "DEFAULT_SCORE_THRESHOLD",
    "IMAGE_SUFFIXES",
    "ClassScore",
    "Detection",
    "Manifest",
    "Package",
    "PackageError",
    "Prediction",
    "Predictor",
    "Prepared",
    "default_sessions",
    "iter_images",
    "load_package",
    "mask_from_json",
    "mask_to_json",
    "prediction_row",
]
