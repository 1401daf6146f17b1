"""Typed reading of the fields of an annotation file: every value that comes from a data file is checked at the
boundary, and a wrong one becomes a :class:`FieldError` (a ``ValueError`` naming the field, what was expected and what
was found) that the format turns into a per-file problem.

``ITEM_ERRORS`` is what a format catches around one item (an image entry, a shape, a task): the errors a malformed
value can raise on its way through numpy, pycocotools or PIL. A format never lets one of them escape as a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from PIL import Image

from visionloop.core.errors import VisionloopError

__all__ = [
    "ITEM_ERRORS",
    "MAX_COORD",
    "MAX_MASK_PIXELS",
    "FieldError",
    "as_dict",
    "as_float",
    "as_int",
    "as_key",
    "as_list",
    "as_text",
    "check_canvas",
    "describe",
    "parse_json",
    "read_json_file",
]

MAX_COORD = 1e7
"""Largest pixel coordinate or size accepted (10 million pixels: far beyond any image that can be decoded)."""

MAX_MASK_PIXELS = 100_000_000
"""Largest canvas (height x width) a mask is drawn on, as the largest image that is decoded."""

ITEM_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError, ZeroDivisionError, RecursionError,
    MemoryError, OSError, Image.DecompressionBombError, VisionloopError,
)
"""Errors a malformed item can raise (OSError: a name too long for the file system, an unreadable image); caught
per item and reported as a problem."""


class FieldError(ValueError):
    """A field of a data file holds a value of the wrong type or range."""

    def __init__(self, field: str, expected: str, value: Any) -> None:
        self.field, self.expected, self.value = field, expected, value
        super().__init__(f"{field}: expected {expected}, got {describe(value)}")


def describe(value: Any, limit: int = 60) -> str:
    """A short, safe rendering of a value for a message (long strings and huge numbers cut)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        return f"an integer of {len(str(abs(value)))} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # ints of more than 4300 digits, deep structures
        text = f"a {type(value).__name__}"
    if len(text) <= limit:
        return text
    half = limit // 2  # the start and the end: a long path keeps its file name
    return f"{text[:half]}...{text[-half:]} ({type(value).__name__} of {len(text)} characters)"


def as_float(value: Any, field: str, *, lo: float = -MAX_COORD, hi: float = MAX_COORD) -> float:
    """A finite number in ``[lo, hi]`` (a numeric string is accepted, as several tools write them)."""
    if isinstance(value, bool):
        raise FieldError(field, "a number", value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise FieldError(field, "a number", value) from None
    elif isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise FieldError(field, f"a number in [{lo:g}, {hi:g}]", value) from None
    else:
        raise FieldError(field, "a number", value)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise FieldError(field, f"a finite number in [{lo:g}, {hi:g}]", value)
    return number


def as_int(value: Any, field: str, *, lo: int = 0, hi: int = int(MAX_COORD)) -> int:
    """An integer in ``[lo, hi]``; a float or string holding a whole number is accepted (``"640"``, ``640.0``)."""
    number = as_float(value, field, lo=lo, hi=hi)
    if number != int(number):
        raise FieldError(field, "a whole number", value)
    return int(number)


def as_dict(value: Any, field: str, *, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object (JSON dict); ``None`` gives ``default`` (an empty dict unless given)."""
    if value is None:
        return {} if default is None else default
    if not isinstance(value, dict):
        raise FieldError(field, "an object", value)
    return value


def as_list(value: Any, field: str) -> list[Any]:
    """A list; ``None`` gives an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(field, "a list", value)
    return value


def as_key(value: Any, field: str) -> Hashable:
    """An id: an integer or a string (what can key a dict and be compared)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldError(field, "an id (integer or string)", value)
    if isinstance(value, int) and abs(value) > 2**63:
        raise FieldError(field, "an id that fits in 64 bits", value)
    return value


def as_text(value: Any, field: str, *, max_chars: int = 4096) -> str:
    """A non-empty string of at most ``max_chars`` characters without NUL bytes."""
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field, "a non-empty string", value)
    if len(value) > max_chars or "\x00" in value:
        raise FieldError(field, f"a string of at most {max_chars} characters without NUL bytes", value)
    return value


def check_canvas(width: int, height: int, field: str) -> None:
    """FieldError when a mask of ``width`` x ``height`` pixels would be larger than any image decoded."""
    if width * height > MAX_MASK_PIXELS:
        raise FieldError(field, f"a mask of at most {MAX_MASK_PIXELS:,} pixels", f"{width}x{height}")


def parse_json(text: str) -> Any:
    """``json.loads`` whose every failure (syntax, nesting too deep, numbers too long) is a ``ValueError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply to be an annotation file") from None
    except (ValueError, OverflowError) as e:  # JSONDecodeError is a ValueError; so is int() of > 4300 digits
        raise ValueError(f"not valid JSON: {str(e)[:200]}") from None


def read_json_file(path: Path) -> Any:
    """Parse a JSON file (BOM tolerated); OSError when unreadable, ValueError when it is not valid JSON."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text: {e}") from None
    return parse_json(text)
