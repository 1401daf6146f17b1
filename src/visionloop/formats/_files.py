"""File helpers shared by the CVAT, Label Studio, LabelMe, VIA and mask formats: cheap sniffing and image sizes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

__all__ = ["candidate_files", "head", "image_size", "read_json"]

_SWAPS_AXES = {5, 6, 7, 8}


def head(path: Path, size: int = 65536) -> str:
    """The first ``size`` bytes of a file as text ('' when unreadable); for detection without parsing big files."""
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    except OSError:
        return ""


def candidate_files(path: Path, suffix: str, *, limit: int = 50) -> list[Path]:
    """``path`` itself when it is a ``suffix`` file, else up to ``limit`` such files directly inside the folder."""
    if path.is_file():
        return [path] if path.suffix.lower() == suffix else []
    if not path.is_dir():
        return []
    out = []
    for p in sorted(path.iterdir()):
        if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith("."):
            out.append(p)
            if len(out) >= limit:
                break
    return out


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8-sig") as f:
        return json.load(f)


def image_size(path: Path | None) -> tuple[int, int] | None:
    """(width, height) after EXIF orientation from the header, None when it is not a readable image."""
    if path is None:
        return None
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = int(im.getexif().get(0x0112, 1) or 1) if im.format in {"JPEG", "TIFF", "WEBP", "PNG"} else 1
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
    return (h, w) if orientation in _SWAPS_AXES else (w, h)
