"""Safe extraction of zip and tar archives: no path escapes (zip slip), no links out, bounded size (zip bombs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

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
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > settings.max_archive_members:
                raise_too_many(archive, len(infos), settings)
            for info in infos:
                where = f"{archive.name}!{info.filename}"
                if info.is_dir():
                    continue
                name = _safe_name(info.filename)
                if name is None:
                    problems.append(Problem(path=where, reason="path escapes the archive (zip slip): not extracted"))
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    problems.append(Problem(path=where, reason="symbolic link in archive: not extracted"))
                    continue
                if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1 << 20:
                    problems.append(Problem(path=where, reason=(
                        f"compression ratio {info.file_size / info.compress_size:.0f}:1 looks like a zip bomb")))
                    continue
                total += info.file_size
                if total > settings.max_archive_bytes:
                    problems.append(Problem(path=where, reason="archive unpacks to more than the allowed total size "
                                            "(VISIONLOOP_MAX_ARCHIVE_BYTES): rest not extracted"))
                    break
                out = tmp / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    else:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            if len(members) > settings.max_archive_members:
                raise_too_many(archive, len(members), settings)
            for m in members:
                where = f"{archive.name}!{m.name}"
                if m.isdir():
                    continue
                name = _safe_name(m.name)
                if name is None:
                    problems.append(Problem(path=where, reason="path escapes the archive (tar slip): not extracted"))
                    continue
                if not m.isfile():
                    problems.append(Problem(path=where, reason="link or special file in archive: not extracted"))
                    continue
                total += m.size
                if total > settings.max_archive_bytes:
                    problems.append(Problem(path=where, reason="archive unpacks to more than the allowed total size "
                                            "(VISIONLOOP_MAX_ARCHIVE_BYTES): rest not extracted"))
                    break
                out = tmp / name
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(m)
                if src is None:
                    continue
                with src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    (tmp / ".visionloop-extracted").write_text(str(archive))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest, problems


def raise_too_many(archive: Path, n: int, settings: Settings) -> None:
    from visionloop.core.errors import FormatError

    raise FormatError(archive, "archive", f"{n:,} members exceed the limit of {settings.max_archive_members:,} "
                      "(VISIONLOOP_MAX_ARCHIVE_MEMBERS)")
