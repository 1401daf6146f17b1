"""Metrics per task, thresholds, calibration, and self-contained HTML reports."""

from visionloop.evaluation.calibration import expected_calibration_error, reliability_bins
from visionloop.evaluation.classification import classification_metrics, tagging_metrics, top_k_accuracy
from visionloop.evaluation.thresholds import choose_thresholds, threshold_for

__all__ = [
    "choose_thresholds",
    "classification_metrics",
    "expected_calibration_error",
    "reliability_bins",
    "tagging_metrics",
    "threshold_for",
    "top_k_accuracy",
]
