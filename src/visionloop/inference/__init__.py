"""The torch-free runtime: ``Predictor(package)`` on onnxruntime (``pip install visionloop[runtime]``)."""

from visionloop.inference.predictor import IMAGE_SUFFIXES, Predictor, Prepared, default_sessions, iter_images
from visionloop.inference.results import ClassScore, Detection, Prediction, rle_decode, rle_encode

__all__ = [
    "IMAGE_SUFFIXES",
    "ClassScore",
    "Detection",
    "Prediction",
    "Predictor",
    "Prepared",
    "default_sessions",
    "iter_images",
    "rle_decode",
    "rle_encode",
]
