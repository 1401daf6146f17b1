"""Printing a prediction listing, the same for ``predict`` (a training run) and ``predict-package`` (a package)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from visionloop.cli.output import err_console

__all__ = ["print_predictions"]


def print_predictions(results: Iterable[tuple[Path, Any]], *, as_json: bool) -> None:
    """``(image, Prediction or error)`` pairs: one JSON line per image with ``as_json`` (``{"image", "prediction"}``
    or ``{"image", "error"}``, see :func:`visionloop.inference.prediction_row`), else one readable line each."""
    from visionloop.inference import prediction_row

    for path, res in results:
        if as_json:
            typer.echo(json.dumps(prediction_row(path, res)))
        elif isinstance(res, BaseException):
            err_console.print(f"[red]{path}[/red]: {res}")
        else:
            typer.echo(f"{path}: {res.summary()}")
