"""Assisted segmentation: a box or clicks give a mask, refined by more clicks, behind one interface
(:class:`AssistMethod`): GrabCut (OpenCV), superpixels with region selection (scikit-image), and an operator's
promptable segmentation model in ONNX (SAM family). :class:`Assistants` offers them by name."""

from visionloop.inference.assist.base import (
    MAX_CLICKS,
    MAX_WINDOW_PIXELS,
    AssistMethod,
    AssistPromptError,
    AssistResult,
    Click,
    Prompt,
    Window,
    assist,
    mask_polygon,
    prompt_region,
    prompt_window,
)
from visionloop.inference.assist.cache import LruCache
from visionloop.inference.assist.grabcut import GrabCut
from visionloop.inference.assist.onnx_prompt import AssistModelError, OnnxPromptModel
from visionloop.inference.assist.registry import CLASSICAL, DEFAULT_METHOD, Assistants, MethodInfo
from visionloop.inference.assist.superpixels import Superpixels

__all__ = [
    "CLASSICAL",
    "DEFAULT_METHOD",
    "MAX_CLICKS",
    "MAX_WINDOW_PIXELS",
    "AssistMethod",
    "AssistModelError",
    "AssistPromptError",
    "AssistResult",
    "Assistants",
    "Click",
    "GrabCut",
    "LruCache",
    "MethodInfo",
    "OnnxPromptModel",
    "Prompt",
    "Superpixels",
    "Window",
    "assist",
    "mask_polygon",
    "prompt_region",
    "prompt_window",
]
