"""Printing results: JSON for scripts (``--json``), rich tables for people; errors as one clear line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from visionloop.core.errors import VisionloopError

console = Console()
err_console = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def emit(data: Any, *, as_json: bool, title: str = "") -> None:
    """Print ``data`` as JSON (one document on stdout) or as a readable table."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, dict):
        table = Table(title=title or None, show_header=False)
        for k, v in data.items():
            if isinstance(v, dict | list) and v:
                v = json.dumps(v, default=str) if len(json.dumps(v, default=str)) < 200 else f"({len(v)} entries)"
            table.add_row(str(k), str(v))
        console.print(table)
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        table = Table(title=title or None)
        for k in data[0]:
            table.add_column(str(k))
        for row in data:
            table.add_row(*(str(row.get(k, "")) for k in data[0]))
        console.print(table)
    else:
        console.print(data)


def handle_errors(fn: F) -> F:
    """Turn VisionloopError into a one-line message and exit code 1 (no traceback for user errors)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VisionloopError as e:
            err_console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from e

    return wrapper  # type: ignore[return-value]
