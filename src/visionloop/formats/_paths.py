"""File helpers shared by the formats of this package: safe names (import and export), image sizes, split names,
finding images, peeking files, reading JSON and YAML within limits, finding a layout's folders.

Folders are walked with :func:`walk_files` (and :func:`candidate_files`): a symbolic link is followed only while it
stays inside the folder being read; one that leads outside it is never read, and the walker hands it back so the
caller reports it as a per-file problem.

Every name that comes from a data file is untrusted. On import it is resolved with :func:`resolve_inside` (or the
finders built on it), which refuses absolute paths, ``..`` escapes, NUL bytes, over-long names and symbolic links
that lead out of the dataset; on export it goes through :func:`safe_export_name` / :func:`unique_export_names` (image
paths) or :func:`safe_folder_name` (one folder level, e.g. a class name), so nothing is written outside the output
folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from PIL import Image, UnidentifiedImageError

from visionloop.core.errors import FormatError, VisionloopError

if TYPE_CHECKING:
    from visionloop.formats.base import Sample

__all__ = [
    "IMAGE_EXTENSIONS",
    "LINK_OUT",
    "MAX_NAME_CHARS",
    "SPLIT_NAMES",
    "ImageFinder",
    "UnsafePathError",
    "YamlLimitError",
    "annotation_files",
    "candidate_files",
    "find_in_folder",
    "folder_confidence",
    "head",
    "read_json",
    "image_size",
    "inside",
    "leads_out",
    "read_head",
    "read_tail",
    "read_yaml",
    "relative_in_subset",
    "resolve_inside",
    "safe_export_name",
    "safe_folder_name",
    "safe_relative_name",
    "split_of",
    "unique_export_names",
    "walk_files",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jpe", ".jfif", ".pgm", ".ppm"}
)

SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing", "dev", "trainval"})
"""Folder or file-name words that name a subset (compared lower-case)."""

_ORIENTATION_TAG = 0x0112

_T = TypeVar("_T")


# --- safe names -------------------------------------------------------------------------------------------------

MAX_NAME_CHARS = 1024
"""Longest name (characters) a data file may give for a file; longer ones are refused, not truncated."""
_MAX_COMPONENT_BYTES = 255
"""Longest file or folder name most file systems accept (bytes of UTF-8)."""
_EXPORT_COMPONENT_BYTES = 200
"""Export shortens a longer file or folder name to this many bytes (plus a stable ``~hash``)."""
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)


class UnsafePathError(VisionloopError, ValueError):
    """A name from a data file would read or write outside its folder (or cannot be a file name at all).

    ``name`` is the name as given (shortened in the message), ``root`` the folder it must stay in (None when the name
    is refused before any folder is involved), ``reason`` what is wrong with it.
    """

    def __init__(self, name: object, root: Path | str | None, reason: str) -> None:
        self.name, self.root, self.reason = name, root, reason
        shown = repr(name) if len(repr(name)) <= 120 else repr(name)[:100] + f"... ({len(str(name)):,} characters)"
        where = f" inside {root}" if root is not None else ""
        super().__init__(f"unsafe path {shown}: {reason}; a name in a data file must be a relative path that stays"
                         f"{where or ' inside its folder'}")


def safe_relative_name(name: object) -> str:
    """``name`` as a normalised relative posix path (``a\\\\b/./c`` -> ``a/b/c``, ``a/../b`` -> ``b``).

    Raises :class:`UnsafePathError` for a non-text name, a NUL byte, an absolute path or drive (``/x``, ``C:x``,
    ``//host``), a ``..`` that climbs above the start, an empty name, a name over :data:`MAX_NAME_CHARS`
    characters or a file/folder name over 255 bytes.
    """
    if not isinstance(name, str):
        raise UnsafePathError(name, None, f"a name must be text, not {type(name).__name__}")
    if "\x00" in name:
        raise UnsafePathError(name, None, "contains a NUL byte")
    if len(name) > MAX_NAME_CHARS:
        raise UnsafePathError(name, None, f"{len(name):,} characters is over the limit of {MAX_NAME_CHARS:,}")
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise UnsafePathError(name, None, "absolute path or drive")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafePathError(name, None, "'..' leads out of the folder")
            parts.pop()
            continue
        if len(part.encode("utf-8", errors="surrogatepass")) > _MAX_COMPONENT_BYTES:
            raise UnsafePathError(name, None, f"a file or folder name over {_MAX_COMPONENT_BYTES} bytes")
        parts.append(part)
    if not parts:
        raise UnsafePathError(name, None, "empty name")
    return "/".join(parts)


def resolve_inside(root: Path | str, name: object) -> Path:
    """``root / name`` after checking that it stays inside ``root``, symbolic links followed.

    The name is normalised by :func:`safe_relative_name`; the returned path is ``root`` joined with it (not
    resolved, so it reads as given). Raises :class:`UnsafePathError` (a ``ValueError``) when the name is unsafe or
    a symbolic link on the way leads outside ``root``. The path need not exist.
    """
    root = Path(root)
    try:
        rel = safe_relative_name(name)
    except UnsafePathError as e:
        raise UnsafePathError(name, root, e.reason) from None
    path = root / rel
    try:
        real_root = root.resolve()
        real = path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop, a path the OS refuses
        raise UnsafePathError(name, root, f"cannot be resolved ({e})") from None
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(name, root, "a symbolic link leads outside the folder")
    return path


LINK_OUT = "a symbolic link that leads outside the folder being read (or a broken one): not read"
"""The reason of the per-file problem for a link :func:`walk_files` did not follow."""


def leads_out(path: Path, real_root: Path) -> bool:
    """Whether ``path`` (found inside a folder whose resolved path is ``real_root``) is, or passes through, a
    symbolic link that leads outside that folder; a broken or looping link counts as leading out."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return True
    return real != real_root and real_root not in real.parents


def inside(root: Path, files: Iterable[Path]) -> list[Path]:
    """``files`` (found under the folder ``root``) without those a symbolic link takes outside it, in order."""
    real_root = Path(root).resolve()
    return [p for p in files if not (p.is_symlink() and leads_out(p, real_root))]


def walk_files(root: Path, *, max_depth: int | None = None, links_out: list[Path] | None = None) -> Iterator[Path]:
    """Every file under the folder ``root``, folder by folder, names sorted, hidden folders skipped, at most
    ``max_depth`` folders deep (None: no limit).

    Symbolic links (to files or folders) are followed while they stay inside ``root``; one that leads outside it, or
    is broken, is neither yielded nor entered but appended to ``links_out`` (when given) for the caller to report.
    A folder reached again through a link is walked once, so a link to an ancestor cannot loop.
    """
    root = Path(root)
    real_root = root.resolve()
    real_of = {str(root): real_root}  # folder walked (as os.walk names it) -> its real path
    walked = {real_root}
    base_depth = len(root.parts)

    def refused(p: Path) -> None:
        if links_out is not None:
            links_out.append(p)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        d = Path(dirpath)
        real_d = real_of.pop(dirpath, None) or d.resolve()
        deeper = max_depth is None or len(d.parts) - base_depth < max_depth
        keep = []
        for n in sorted(dirnames):
            if n.startswith(".") or not deeper:
                continue
            sub = d / n
            if sub.is_symlink():  # only a link can lead out: a plain folder is inside its parent
                if leads_out(sub, real_root):
                    refused(sub)
                    continue
                real = sub.resolve()
            else:
                real = real_d / n
            if real in walked:
                continue
            walked.add(real)
            real_of[os.path.join(dirpath, n)] = real
            keep.append(n)
        dirnames[:] = keep
        for n in sorted(filenames):
            p = d / n
            try:
                mode = os.lstat(p).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                if leads_out(p, real_root):
                    refused(p)
                    continue
                if p.is_file():
                    yield p
            elif stat.S_ISREG(mode):  # not a FIFO, socket or device
                yield p


def _short(component: str, limit: int) -> str:
    """``component`` cut to ``limit`` UTF-8 bytes, extension kept, with ``~<hash8>`` of the full text so two long
    names that share their start stay apart."""
    if len(component.encode("utf-8", errors="surrogatepass")) <= limit:
        return component
    stem, dot, ext = component.rpartition(".")
    if not dot or len(ext) > 16:
        stem, ext = component, ""
    tag = "~" + hashlib.sha256(component.encode("utf-8", errors="surrogatepass")).hexdigest()[:8]
    tail = (f".{ext}" if ext else "")
    room = limit - len(tag.encode()) - len(tail.encode("utf-8", errors="surrogatepass"))
    cut = stem.encode("utf-8", errors="surrogatepass")[:max(room, 1)].decode("utf-8", errors="ignore")
    return f"{cut}{tag}{tail}"


def safe_folder_name(name: object) -> str:
    """One file or folder name (e.g. a class name used as a folder) that is safe on any file system.

    Slashes, control characters and ``<>:"|?*`` become ``_``; a leading dot becomes ``_`` (so ``..`` and hidden names
    cannot occur); trailing dots and spaces go; Windows device names (``con``, ``nul``, ...) get a ``_`` prefix; over
    200 bytes is shortened with a stable hash. Stable (same input, same output) and idempotent.
    """
    text = _UNSAFE_CHARS.sub("_", str(name).replace("/", "_").replace("\\", "_")).rstrip(" .")
    if text.startswith("."):
        text = "_" + text[1:]
    if not text:
        return "_"
    if text.split(".")[0].lower() in _WINDOWS_RESERVED:
        text = "_" + text
    return _short(text, _EXPORT_COMPONENT_BYTES)


def safe_export_name(name: object) -> str:
    """A relative posix path to write ``name`` under an output folder, whatever the name holds.

    Backslashes count as separators; ``a/../b`` is ``b``; empty and ``.`` levels, a ``..`` that would climb out and
    a leading ``/`` are dropped (``../../x/secret.jpg`` -> ``x/secret.jpg``, ``C:/a.jpg`` -> ``C_/a.jpg``); each level is made safe by
    :func:`safe_folder_name`. Never absolute, never climbs, stable and idempotent. Two different names can meet
    (``../a.jpg`` and ``a.jpg``): :func:`unique_export_names` keeps a dataset's names apart.
    """
    parts: list[str] = []
    for part in str(name).replace("\\", "/").split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(safe_folder_name(part))
    return "/".join(parts) or "unnamed"


def unique_export_names(
    names: Sequence[str], *, keys: Sequence[str] | None = None, folders: bool = False,
) -> list[str]:
    """Safe names for a whole dataset, no two the same (compared case-insensitively, as on Windows and macOS).

    Each name goes through :func:`safe_export_name` (or :func:`safe_folder_name` with ``folders=True``). Names that
    meet get ``~<tag>`` before their extension, where the tag is the first 8 characters of ``keys[i]`` (e.g. the
    image's sha256) or of a hash of the original name; names that are unique already are left as they are.
    """
    clean = [safe_folder_name(n) if folders else safe_export_name(n) for n in names]
    counts = Counter(c.lower() for c in clean)
    taken = {c.lower() for c in clean if counts[c.lower()] == 1}
    out: list[str] = []
    for i, c in enumerate(clean):
        if counts[c.lower()] == 1:
            out.append(c)
            continue
        key = keys[i] if keys is not None else hashlib.sha256(str(names[i]).encode("utf-8", "surrogatepass")).hexdigest()
        cand, n = _tagged(c, key[:8]), 1
        while cand.lower() in taken:
            cand, n = _tagged(c, f"{key[:8]}-{n}"), n + 1
        taken.add(cand.lower())
        out.append(cand)
    return out


def _tagged(name: str, tag: str) -> str:
    folder, slash, leaf = name.rpartition("/")
    stem, dot, ext = leaf.rpartition(".")
    leaf = f"{stem}~{tag}.{ext}" if dot and stem else f"{leaf}~{tag}"
    return f"{folder}{slash}{leaf}"


# --- reading JSON and YAML within limits ----------------------------------------------------------------------------


class YamlLimitError(yaml.YAMLError):
    """A YAML file goes past the reader's limits (aliases, nesting, expanded size): a billion-laughs style file."""


class _LimitedLoader(yaml.SafeLoader):
    max_aliases = 1000
    max_depth = 100
    max_nodes = 1_000_000

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self.max_aliases:
                raise YamlLimitError(f"more than {self.max_aliases} aliases (*name): refused as a YAML bomb")
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise YamlLimitError(f"nested deeper than {self.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, {}, self.max_nodes)
        return node


def _expanded_size(node: Any, memo: dict[int, int], limit: int) -> int:
    """Nodes ``node`` stands for once aliases are expanded (memoised per node, so shared subtrees cost once)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once instead of looping
    total = 1
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    for child in children:
        total += _expanded_size(child, memo, limit)
        if total > limit:
            raise YamlLimitError(f"expands to more than {limit:,} values (nested aliases): refused as a YAML bomb")
    memo[id(node)] = total
    return total


def read_yaml(path: Path, *, max_bytes: int = 1 << 20) -> Any:
    """A YAML file read with the safe loader within limits: ``max_bytes`` of text, 1,000 aliases, 100 levels,
    1,000,000 values after alias expansion. Raises ``yaml.YAMLError`` (:class:`YamlLimitError` for the limits),
    ``OSError`` or ``UnicodeDecodeError``."""
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlLimitError(f"{path.name} is over {max_bytes:,} bytes; not a dataset description")
    return yaml.load(data.decode("utf-8-sig"), Loader=_LimitedLoader)  # noqa: S506 - a SafeLoader subclass


def image_size(path: Path | None) -> tuple[int, int] | None:
    """(width, height) in pixels after EXIF orientation, read from the header only; None if not readable."""
    if path is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes only; import checks the limit
            im = Image.open(path)
        with im:
            w, h = im.size
            fmt = (im.format or "").upper()  # a PNG's getexif() would decode the image: its header's is enough
            oriented = fmt in {"JPEG", "MPO", "TIFF", "WEBP"} or (fmt == "PNG" and "exif" in im.info)
            if oriented and int(im.getexif().get(_ORIENTATION_TAG, 1) or 1) in {5, 6, 7, 8}:
                w, h = h, w
            return int(w), int(h)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def split_of(text: str) -> str | None:
    """The split a file or folder name names (``train-export`` -> ``train``), or None."""
    low = text.lower()
    if low in SPLIT_NAMES:
        return text
    for token in re.split(r"[^a-z0-9]+", low):
        if token in SPLIT_NAMES:
            return token
    return None


def read_head(path: Path, size: int = 65536) -> str:
    """The first ``size`` bytes of a file as text (undecodable bytes replaced); '' when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", errors="replace")
    except OSError:
        return ""


def head(path: Path, size: int = 65536) -> str:
    """Like :func:`read_head`, without a BOM or leading blanks: for sniffing a format without parsing the file."""
    return read_head(path, size).lstrip("\ufeff \t\r\n")


def candidate_files(path: Path, suffix: str, *, limit: int = 50) -> list[Path]:
    """``path`` itself when it is a ``suffix`` file, else up to ``limit`` such files directly inside the folder
    (symbolic links leading outside it left out)."""
    if path.is_file():
        return [path] if path.suffix.lower() == suffix else []
    if not path.is_dir():
        return []
    out = []
    real_root = path.resolve()
    for p in sorted(path.iterdir()):
        if p.is_symlink() and leads_out(p, real_root):
            continue  # never read a file outside the folder (the importer reports such links)
        if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith("."):
            out.append(p)
            if len(out) >= limit:
                break
    return out


def annotation_files(
    path: Path, suffix: str, accept: Callable[[Path], bool], *, fmt: str, reason: str, limit: int = 1000
) -> list[Path]:
    """The ``suffix`` files at ``path`` (the file itself, or up to ``limit`` at the top level of a folder) that
    ``accept`` takes, or ``FormatError(path, fmt, reason)`` when there are none."""
    files = [p for p in candidate_files(path, suffix, limit=limit) if accept(p)]
    if not files:
        raise FormatError(path, fmt, reason)
    return files


def find_in_folder(path: Path, find: Callable[[Path], Sequence[_T]], *, fmt: str, reason: str) -> Sequence[_T]:
    """``find(path)`` for a folder's layout units (item folders, image/mask folder pairs), or
    ``FormatError(path, fmt, reason)`` when ``path`` is not a folder or ``find`` finds none."""
    found = find(path) if path.is_dir() else []
    if not found:
        raise FormatError(path, fmt, reason)
    return found


def folder_confidence(path: Path, probe: Callable[[Path], float]) -> float:
    """``probe(path)``, a format's confidence for a folder; 0.0 when ``path`` is not a folder or reading it fails."""
    if not path.is_dir():
        return 0.0
    try:
        return probe(path)
    except OSError:
        return 0.0


def read_json(path: Path) -> Any:
    """A JSON file's content; nesting too deep for the parser raises ``json.JSONDecodeError`` like any bad JSON."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to read", text[:100], 0) from None


def read_tail(path: Path, size: int = 65536) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def relative_in_subset(sample: Sample) -> str:
    """The sample's name without a leading ``<subset>/`` folder (the subset gets its own folder on export)."""
    name = sample.name.replace("\\", "/").lstrip("/")
    if sample.subset and name.startswith(f"{sample.subset}/"):
        return name[len(sample.subset) + 1:]
    return name


class ImageFinder:
    """Finds images named by an annotation among candidate folders, trying the folder that worked last first.

    A name without an image extension also matches ``name.<ext>`` for any image extension. Only files inside a
    folder are found: the name is checked once, a found file's real path once (symbolic links followed).
    """

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders: list[Path] = []
        for f in folders:
            if f not in self.folders and f.is_dir():
                self.folders.append(f)
        self._real: dict[int, Path] = {}
        self._last = 0

    def find(self, name: str) -> Path | None:
        """The image ``name`` names inside one of the folders, or None.

        Raises :class:`UnsafePathError` when ``name`` is not a safe relative name (absolute, ``..`` escape, NUL,
        over-long, not text) or reaches outside a folder through a symbolic link: the caller reports it as a
        problem of that item.
        """
        rel = safe_relative_name(name)
        order = [self._last, *(i for i in range(len(self.folders)) if i != self._last)]
        for i in order:
            if i >= len(self.folders):
                continue
            cand = self.folders[i] / rel
            if cand.is_file():
                return self._found(i, cand, name)
            if cand.suffix.lower() not in IMAGE_EXTENSIONS:
                for ext in (".jpg", ".png", ".jpeg", *sorted(IMAGE_EXTENSIONS)):
                    alt = cand.with_name(cand.name + ext)
                    if alt.is_file():
                        return self._found(i, alt, name)
        return None

    def _found(self, i: int, path: Path, name: str) -> Path:
        if i not in self._real:
            self._real[i] = self.folders[i].resolve()
        real = path.resolve()
        if self._real[i] not in real.parents:
            raise UnsafePathError(name, self.folders[i], "a symbolic link leads outside the folder")
        self._last = i
        return path
