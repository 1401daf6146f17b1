"""Deterministic mutations of annotation files, as a broken disk, a half-finished download or an attacker makes them.

Each mutation takes the file's bytes and a seeded ``random.Random`` and returns the new bytes and a short description
(for the reproducer printed on failure). Structured mutations parse JSON, XML and CSV, change one value and write the
file back; byte mutations work on any file (YAML, TXT, PNG masks).
"""

from __future__ import annotations

import csv
import io
import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

__all__ = ["JSON_VALUES", "TEXT_VALUES", "mutate"]

JSON_VALUES: list[Any] = [
    [1], {"a": {"b": 1}}, "x", "", None, True, -1, 0, 10**400, 1e308, -1e308, float("nan"), "1e999", "A" * 5000,
    "../../../outside.jpg", "/abs/path.jpg", [[[[[[[[[[1]]]]]]]]]], [], {}, [-5, 10, 20], "\u202e\u0000",
]
"""Values swapped in for a JSON field: wrong types, huge and negative numbers, long and escaping names."""

TEXT_VALUES = ["wide", "", "-1", "1e999", "nan", "9" * 400, "A" * 5000, "../../../x", "[1,2,3]", '{"a": 1}', "0",
               "-0.5", "1,2;3", "inf"]
"""Values swapped in for an XML attribute or text, a CSV cell or a text token."""

Mutation = Callable[[bytes, random.Random], tuple[bytes, str]]


def _flip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    n = rng.randint(1, 8)
    for _ in range(n):
        if buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    return bytes(buf), f"{n} byte(s) flipped"


def _truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data)) if data else 0
    return data[:at], f"truncated at byte {at} of {len(data)}"


def _empty(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    return b"", "emptied"


def _garbage(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    return rng.randbytes(rng.randint(1, 512)), "replaced by random bytes"


def _deep(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    depth = rng.choice([1_000, 50_000])
    text = data.decode("utf-8", errors="replace")
    at = max(text.find("{"), text.find("<"), 0) + 1
    filler = ('"zz": ' + "[" * depth + "]" * depth + ", ") if text.lstrip().startswith("{") else (
        "<a>" * depth + "</a>" * depth if "<" in text else "[" * depth)
    return (text[:at] + filler + text[at:]).encode(), f"{depth}-deep nesting inserted"


def _json_paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _json_paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:50]):
            out += _json_paths(v, (*path, i))
    return out


def _json_swap(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    doc = json.loads(data.decode("utf-8-sig"))
    paths = _json_paths(doc)
    if not paths:
        return _flip(data, rng)
    path = rng.choice(paths)
    value = rng.choice(JSON_VALUES)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    shown = repr(value) if len(repr(value)) < 40 else f"{type(value).__name__} of {len(repr(value))} chars"
    return json.dumps(doc).encode(), f"JSON {'/'.join(map(str, path))} = {shown}"


def _xml_swap(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    root = ET.fromstring(data)
    elements = list(root.iter())
    el = rng.choice(elements)
    value = rng.choice(TEXT_VALUES)
    if el.attrib and rng.random() < 0.7:
        key = rng.choice(sorted(el.attrib))
        el.set(key, value)
        what = f"<{el.tag} {key}>"
    elif rng.random() < 0.2 and el is not root:
        parent = next(p for p in elements if el in list(p))
        parent.remove(el)
        return ET.tostring(root), f"<{el.tag}> removed"
    else:
        el.text = value
        what = f"<{el.tag}> text"
    return ET.tostring(root), f"XML {what} = {value[:30]!r}"


def _csv_swap(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    cells = [(r, c) for r, row in enumerate(rows) for c in range(len(row))]
    if not cells:
        return _flip(data, rng)
    r, c = rng.choice(cells)
    value = rng.choice(TEXT_VALUES)
    rows[r][c] = value
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(), f"CSV row {r} column {c} = {value[:30]!r}"


def _token_swap(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    text = data.decode("utf-8", errors="replace")
    tokens = text.split(" ") if text else [""]
    i = rng.randrange(len(tokens))
    value = rng.choice(TEXT_VALUES)
    tokens[i] = value
    return " ".join(tokens).encode(), f"token {i} = {value[:30]!r}"


def _yaml_bomb(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for k in range(1, 9):
        lines.append(f"{chr(97 + k)}: &{chr(97 + k)} [" + ", ".join([f"*{chr(96 + k)}"] * 9) + "]")
    return ("\n".join(lines) + "\n" + data.decode("utf-8", errors="replace")).encode(), "YAML nested anchors"


_STRUCTURED: dict[str, list[Mutation]] = {
    ".json": [_json_swap, _json_swap, _json_swap, _deep],
    ".xml": [_xml_swap, _xml_swap, _xml_swap, _deep],
    ".csv": [_csv_swap, _csv_swap, _csv_swap],
    ".txt": [_token_swap, _token_swap],
    ".names": [_token_swap],
    ".data": [_token_swap],
    ".yaml": [_token_swap, _yaml_bomb],
    ".yml": [_token_swap, _yaml_bomb],
}
_BYTES: list[Mutation] = [_flip, _truncate, _empty, _garbage]


def mutate(data: bytes, suffix: str, rng: random.Random) -> tuple[bytes, str]:
    """One mutation of a file's bytes chosen by ``rng``: structured (by ``suffix``) two times in three."""
    structured = _STRUCTURED.get(suffix.lower(), [])
    choice = rng.choice(structured) if structured and rng.random() < 0.67 else rng.choice(_BYTES)
    try:
        return choice(data, rng)
    except (ValueError, ET.ParseError, csv.Error, UnicodeDecodeError, RecursionError):
        return _flip(data, rng)  # the sample itself does not parse as its suffix says: mutate its bytes
