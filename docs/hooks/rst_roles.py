"""MkDocs hook: docstrings use Sphinx roles (``:class:`~visionloop.core.Boxes```); in the rendered pages a role shows
as plain code (``Boxes``), as Sphinx would show it, instead of the raw ``:class:`` prefix."""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|exc|obj|const|py:\w+):(<code>)(~?)([^<]*)(</code>)")


def _short(m: re.Match[str]) -> str:
    name = m.group(3).rsplit(".", 1)[-1] if m.group(2) else m.group(3)
    return f"{m.group(1)}{name}{m.group(4)}"


def on_page_content(html: str, **_: Any) -> str:
    """MkDocs event: ``:role:<code>~a.b.C</code>`` -> ``<code>C</code>``."""
    return ROLE.sub(_short, html)
