"""Self-contained HTML reports: escaped text, tables, matplotlib figures and images embedded as base64 data URIs.

Generic on purpose (classification, tagging and detection reports all use it). A report is one file with no external
resource, so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["esc", "figure", "gallery", "image_uri", "kv_table", "page", "png_uri", "section", "table", "write_page"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 4px} h2{font-size:1.2em;margin:0 0 12px;border-bottom:1px solid #e3e6eb;padding-bottom:6px}
.sub{color:#5b6478;margin-bottom:20px}
section{background:#fff;border:1px solid #e3e6eb;border-radius:8px;padding:16px 20px;margin:16px 0}
table{border-collapse:collapse;font-size:.92em;margin:6px 0} th,td{padding:4px 10px;border-bottom:1px solid #eef0f3;text-align:left}
th{background:#f2f4f7;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b42318;font-weight:600} .good{color:#067647;font-weight:600}
.figs{display:flex;flex-wrap:wrap;gap:12px} .figs img{max-width:100%;height:auto;border:1px solid #eef0f3}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.card{border:1px solid #e3e6eb;border-radius:6px;padding:6px;font-size:.82em;background:#fcfcfd}
.card img{width:100%;height:140px;object-fit:contain;background:#222;border-radius:4px}
ul.tips li{margin:4px 0}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f'<td class="num">{v:.4f}</td>'
    if isinstance(v, int) and not isinstance(v, bool):
        return f'<td class="num">{v}</td>'
    if isinstance(v, RawHTML):
        return f"<td>{v}</td>"
    return f"<td>{esc('' if v is None else v)}</td>"


class RawHTML(str):
    """A string that :func:`table` inserts without escaping (build it from escaped parts only)."""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_table(data: Mapping[str, Any]) -> str:
    return table(["", ""], [(k, v) for k, v in data.items()])


def png_uri(fig: Any, *, dpi: int = 110) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_uri(im: Image.Image, *, max_side: int = 256, quality: int = 85) -> str:
    """A PIL image, shrunk to ``max_side``, as a JPEG data URI."""
    im = im.convert("RGB")
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(fig: Any, *, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="{png_uri(fig)}">'


def gallery(cards: Iterable[tuple[str, str]]) -> str:
    """``cards``: (image data URI, caption HTML already escaped)."""
    inner = "".join(f'<div class="card"><img src="{uri}" alt="">{caption}</div>' for uri, caption in cards)
    return f'<div class="gallery">{inner}</div>'


def section(title: str, body: str, *, anchor: str = "") -> str:
    a = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{a}><h2>{esc(title)}</h2>{body}</section>"


def page(title: str, body: str, *, subtitle: str = "") -> str:
    sub = f'<div class="sub">{esc(subtitle)}</div>' if subtitle else ""
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{_CSS}</style></head>"
            f"<body><main><h1>{esc(title)}</h1>{sub}{body}</main></body></html>")


def write_page(path: Path, title: str, body: str, *, subtitle: str = "") -> Path:
    path = Path(path)
    path.write_text(page(title, body, subtitle=subtitle), encoding="utf-8")
    return path
