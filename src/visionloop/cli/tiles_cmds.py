"""``visionloop tiles PROJECT``: build the tile pyramids a project's large images lack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.output import emit, err_console, handle_errors

__all__ = ["register", "tiles"]


@handle_errors
def tiles(
    project: Annotated[Path, typer.Argument(help="project directory")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Build the tile pyramid of every image larger than 4096 px on a side that has none (imported before pyramids
    existed, or interrupted); the browser then opens them tile by tile. Imports build them already."""
    from visionloop.core.errors import ImageError
    from visionloop.storage import Project
    from visionloop.storage.tiles import build_missing_pyramids

    def show(name: str, error: ImageError | None) -> None:
        if not as_json:
            err_console.print(f"tiles: {name}" + (f" [red]failed: {error.reason}[/red]" if error else ""))

    with Project.open(project) as p:
        built, failed = build_missing_pyramids(p, on_image=show)
    emit({"built": built, "failed": [{"image": name, "reason": reason} for name, reason in failed]},
         as_json=as_json, title="tiles")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("tiles")(tiles)
