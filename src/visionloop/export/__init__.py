"""Export: model packages (ONNX + manifest + model card), ONNX export per task, static int8 with an accuracy guard.

The package contract itself (Manifest, Package, load_package, write_package) lives in :mod:`visionloop.core.package`,
below export and inference alike, and is re-exported here; the exporters (torch, onnx) are loaded on first use.
"""

from __future__ import annotations

from typing import Any

from visionloop.core.package import Manifest, Package, PackageError, load_package, write_package

__all__ = [
    "AccuracyDropError",
    "Manifest",
    "Package",
    "PackageError",
    "export_model",
    "export_run",
    "load_package",
    "write_package",
]

_LAZY = {"export_model": "onnx_export", "export_run": "api", "AccuracyDropError": "quantize"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"visionloop.export.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'visionloop.export' has no attribute {name!r}")
