"""Safe extraction of zip and tar archives: no path escapes (zip slip), no links out, bounded size (zip bombs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO

from visionloop.core.settings import Settings
from visionloop.formats.base import Problem

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MAX_RATIO = 200
"""A member that unpacks to more than this many times its compressed size is treated as a bomb."""


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _safe_name(name: str) -> str | None:
    """The member's path if it stays inside the destination, else None."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        return None
    clean = str(p).lstrip("/")
    return clean or None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def extract(archive: Path, cache_root: Path, settings: Settings) -> tuple[Path, list[Problem]]:
    """Extract ``archive`` under ``cache_root/<sha256>/`` (reused when complete); returns the folder and problems.

    Members with unsafe paths, links, or sizes over the limits are skipped and reported; the rest are extracted.
    """
    dest = cache_root / _digest(archive)
    done = dest / ".visionloop-extracted"
    problems: list[Problem] = []
    if done.exists():
        return dest, problems
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    total = 0
    for member in _members(archive, settings):
        where = f"{archive.name}!{member.name}"
        name = _safe_name(member.name)
        if name is None:
            problems.append(Problem(path=where, reason="path escapes the archive (zip/tar slip): not extracted"))
            continue
        if not member.regular:
            problems.append(Problem(path=where, reason="link or special file in archive: not extracted"))
            continue
        if member.packed and member.size / member.packed > MAX_RATIO and member.size > 1 << 20:
            problems.append(Problem(path=where, reason=(
                f"compression ratio {member.size / member.packed:.0f}:1 looks like a zip bomb: not extracted")))
            continue
        total += member.size
        if total > settings.max_archive_bytes:
            problems.append(Problem(path=where, reason="archive unpacks to more than the allowed total size "
                                    "(VISIONLOOP_MAX_ARCHIVE_BYTES): rest not extracted"))
            break
        out = tmp / name
        out.parent.mkdir(parents=True, exist_ok=True)
        with member.open() as src, out.open("wb") as dst:
            copied = 0
            while chunk := src.read(1 << 20):
                copied += len(chunk)
                if copied > member.size:  # the header lied about the size
                    break
                dst.write(chunk)
    (tmp / ".visionloop-extracted").write_text(str(archive))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest, problems


@dataclass
class _Member:
    name: str
    size: int
    packed: int
    """Compressed size (0 when unknown, as in tar)."""
    regular: bool
    open: Callable[[], IO[bytes]]


def _members(archive: Path, settings: Settings) -> Iterator[_Member]:
    """Files of a zip or tar archive, in a common form; directories are left out."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > settings.max_archive_members:
                raise_too_many(archive, len(infos), settings)
            for i in infos:
                is_link = (i.external_attr >> 16) & 0o170000 == 0o120000
                yield _Member(i.filename, i.file_size, i.compress_size, not is_link, partial(zf.open, i))
        return
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if not m.isdir()]
        if len(members) > settings.max_archive_members:
            raise_too_many(archive, len(members), settings)
        for m in members:
            yield _Member(m.name, m.size, 0, m.isfile(), partial(_tar_open, tf, m))


def _tar_open(tf: tarfile.TarFile, m: tarfile.TarInfo) -> IO[bytes]:
    f = tf.extractfile(m)
    if f is None:
        raise OSError(f"cannot read {m.name}")
    return f


def raise_too_many(archive: Path, n: int, settings: Settings) -> None:
    from visionloop.core.errors import FormatError

    raise FormatError(archive, "archive", f"{n:,} members exceed the limit of {settings.max_archive_members:,} "
                      "(VISIONLOOP_MAX_ARCHIVE_MEMBERS)")
