"""MkDocs hook: the command-line reference is rendered at build time from the Typer app itself.

A page holding the line ``<!-- cli-reference -->`` gets one section per command (``visionloop version create``):
its help text, usage, arguments and options with their defaults, so the page can never drift from the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MARKER = "<!-- cli-reference -->"


def _commands(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """(command words, command) of every leaf command (Typer ships its own copy of click: duck typing)."""
    if hasattr(cmd, "list_commands"):
        ctx = cmd.context_class(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _commands(sub, [*path, name])
    else:
        yield path, cmd


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render() -> str:
    """Markdown for every command of ``visionloop``."""
    import typer

    from visionloop.cli.main import app

    root = typer.main.get_command(app)
    out: list[str] = []
    for path, cmd in _commands(root, ["visionloop"]):
        ctx = cmd.context_class(cmd, info_name=" ".join(path))
        out.append(f"## `{' '.join(path)}`\n")
        if cmd.help:
            out.append(cmd.help.strip() + "\n")
        out.append(f"```text\n{cmd.get_usage(ctx)}\n```\n")
        rows = []
        for p in cmd.params:
            record = p.get_help_record(ctx)  # what --help prints: names with type or choices, help with default
            if record is not None and p.name != "help":
                rows.append(f"| `{record[0]}` | {_cell(record[1])} |")
        if rows:
            out += ["| argument or option | description |", "|---|---|", *rows, ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs event: replace the marker with the rendered reference."""
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
