"""The assisted-segmentation methods by name: the classical ones always, the operator's ONNX model when configured.

``Assistants(settings)`` holds one instance of each method, made on first use (an ONNX model is loaded once, with
its cache of image embeddings), and lists what is available for the API and the editor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from visionloop.core.errors import NotFoundError
from visionloop.core.settings import Settings
from visionloop.inference.assist.base import AssistMethod
from visionloop.inference.assist.grabcut import GrabCut
from visionloop.inference.assist.onnx_prompt import OnnxPromptModel
from visionloop.inference.assist.superpixels import Superpixels

__all__ = ["CLASSICAL", "DEFAULT_METHOD", "Assistants", "MethodInfo"]

CLASSICAL: dict[str, Callable[[], AssistMethod]] = {
    "grabcut": GrabCut,
    "slic": lambda: Superpixels("slic"),
    "felzenszwalb": lambda: Superpixels("felzenszwalb"),
}
"""Builders of the methods that need no model, by name."""
DEFAULT_METHOD = "grabcut"


@dataclass(frozen=True)
class MethodInfo:
    name: str
    title: str
    model: bool
    """True for a learnt model (the operator's ONNX files)."""


class Assistants:
    """The methods a server offers under ``settings`` (``assist_onnx_encoder`` and ``assist_onnx_decoder``
    add ``"onnx"``), each built once when first asked for."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, AssistMethod] = {}
        self._lock = threading.Lock()

    def builders(self) -> dict[str, Callable[[], AssistMethod]]:
        found = dict(CLASSICAL)
        s = self.settings
        if s.assist_onnx_encoder and s.assist_onnx_decoder:
            found["onnx"] = lambda: OnnxPromptModel(s.assist_onnx_encoder or "", s.assist_onnx_decoder or "",
                                                    cache_entries=s.assist_embedding_cache)
        return found

    def names(self) -> list[str]:
        return list(self.builders())

    def describe(self) -> list[MethodInfo]:
        """Every method offered, the default first."""
        titles = {"grabcut": GrabCut.title, "onnx": OnnxPromptModel.title}
        return [MethodInfo(name, titles.get(name) or self.get(name).title, name == "onnx") for name in self.names()]

    def get(self, name: str) -> AssistMethod:
        """The method ``name`` (built on first use); :class:`NotFoundError` listing the others otherwise."""
        builders = self.builders()
        if name not in builders:
            hint = "" if "onnx" in builders or name != "onnx" else (
                "the onnx method needs the operator's model: set VISIONLOOP_ASSIST_ONNX_ENCODER and "
                "VISIONLOOP_ASSIST_ONNX_DECODER")
            raise NotFoundError("assist method", name, choices=list(builders), hint=hint)
        with self._lock:
            method = self._built.get(name)
            if method is None:
                method = self._built[name] = builders[name]()
        return method
