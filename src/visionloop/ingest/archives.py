"""Safe extraction of zip and tar archives: no path escapes (zip slip), no links out, bounded size (zip bombs).

Limits hold however the archive is built, for zip and every tar flavour alike:

- member names go through :func:`~visionloop.formats._paths.safe_relative_name` (no absolute path, drive, ``..``
  escape, NUL byte, over-long name); links and special files are not extracted;
- the member count (``VISIONLOOP_MAX_ARCHIVE_MEMBERS``) and the total bytes (``VISIONLOOP_MAX_ARCHIVE_BYTES``) are
  counted while extracting, from the bytes actually written, not from what the headers claim; a header that claims
  more than the bytes left stops the extraction before anything is read;
- a zip member that unpacks to more than :data:`MAX_RATIO` times its compressed size is skipped, and the whole
  archive may not unpack to more than :data:`MAX_TOTAL_RATIO` times its own size once past :data:`RATIO_FLOOR`
  (many members each under the per-member check, or any compressed tar);
- a truncated, corrupt or mislabelled archive gives a problem per member that could not be read (or a
  :class:`FormatError` when it is no archive at all), never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from visionloop.core.errors import FormatError
from visionloop.core.settings import Settings
from visionloop.formats._paths import UnsafePathError, resolve_inside, safe_relative_name
from visionloop.formats.base import Problem

__all__ = ["ARCHIVE_SUFFIXES", "MAX_RATIO", "MAX_TOTAL_RATIO", "RATIO_FLOOR", "extract", "is_archive"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
MAX_RATIO = 200
"""A zip member over 1 MiB that unpacks to more than this many times its compressed size is treated as a bomb."""
MAX_TOTAL_RATIO = 100
"""The whole archive may unpack to at most this many times its size on disk (once past :data:`RATIO_FLOOR`)."""
RATIO_FLOOR = 16 << 20
"""Bytes an archive may always unpack to, whatever its ratio (small archives of text compress well)."""
_CHUNK = 1 << 20
_READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError, ValueError, RuntimeError)
"""What a truncated or corrupt archive raises while reading (lzma/bz2 errors are OSError/EOFError/ValueError)."""


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class _Stop(Exception):
    """The extraction stops here: the reason is a problem of the archive."""


@dataclass
class _Budget:
    """What is left to extract: bytes, members, and the whole-archive ratio."""

    settings: Settings
    archive_bytes: int
    written: int = 0
    members: int = 0

    @property
    def bytes_left(self) -> int:
        return self.settings.max_archive_bytes - self.written

    def member(self) -> None:
        self.members += 1
        if self.members > self.settings.max_archive_members:
            raise _Stop(f"more than {self.settings.max_archive_members:,} members "
                        "(VISIONLOOP_MAX_ARCHIVE_MEMBERS): rest not extracted")

    def claim(self, size: int) -> None:
        """Refuse a member whose header claims more than is left, before reading it."""
        if size > self.bytes_left:
            raise _Stop(f"a member claims {size:,} bytes, more than the {max(self.bytes_left, 0):,} left of the "
                        "allowed total (VISIONLOOP_MAX_ARCHIVE_BYTES): rest not extracted")
        if size > RATIO_FLOOR and size > MAX_TOTAL_RATIO * self.archive_bytes:
            raise _Stop(self._ratio_reason(size))

    def add(self, n: int) -> None:
        self.written += n
        if self.written > self.settings.max_archive_bytes:
            raise _Stop("archive unpacks to more than the allowed total size (VISIONLOOP_MAX_ARCHIVE_BYTES): "
                        "rest not extracted")
        if self.written > RATIO_FLOOR and self.written > MAX_TOTAL_RATIO * self.archive_bytes:
            raise _Stop(self._ratio_reason(self.written))

    def _ratio_reason(self, size: int) -> str:
        return (f"archive of {self.archive_bytes:,} bytes unpacks to more than {size:,} bytes (over "
                f"{MAX_TOTAL_RATIO}:1): looks like a zip bomb; rest not extracted")


def extract(archive: Path, cache_root: Path, settings: Settings) -> tuple[Path, list[Problem]]:
    """Extract ``archive`` under ``cache_root/<sha256>/`` (reused when complete); returns the folder and problems.

    Members with unsafe paths, links, or sizes over the limits are skipped and reported; the rest are extracted.
    Raises :class:`FormatError` when the file is neither a zip nor a tar archive (truncated or mislabelled).
    """
    dest = cache_root / _digest(archive)
    done = dest / ".visionloop-extracted"
    problems: list[Problem] = []
    if done.exists():
        return dest, problems
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    budget = _Budget(settings, archive_bytes=max(archive.stat().st_size, 1))
    try:
        _extract_members(archive, tmp, budget, problems)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / ".visionloop-extracted").write_text(str(archive))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest, problems


def _extract_members(archive: Path, tmp: Path, budget: _Budget, problems: list[Problem]) -> None:
    members = _members(archive)
    try:
        _extract_all(archive, members, tmp, budget, problems)
    finally:
        members.close()


def _extract_all(
    archive: Path, members: Iterator[_Member], tmp: Path, budget: _Budget, problems: list[Problem],
) -> None:
    where = archive.name
    while True:
        try:
            member = next(members, None)
        except _READ_ERRORS as e:  # a tar stream that breaks between members
            problems.append(Problem(path=where, reason=f"archive is truncated or corrupt after {budget.members} "
                                    f"member(s) ({type(e).__name__}: {e}): rest not extracted"))
            return
        if member is None:
            return
        where = f"{archive.name}!{member.name}"
        try:
            budget.member()
            _extract_one(member, tmp, budget, where, problems)
        except _Stop as e:
            problems.append(Problem(path=where, reason=str(e)))
            return


def _extract_one(member: _Member, tmp: Path, budget: _Budget, where: str, problems: list[Problem]) -> None:
    try:
        name = safe_relative_name(member.name)
        out = resolve_inside(tmp, name)
    except UnsafePathError as e:
        problems.append(Problem(path=where, reason=f"path escapes the archive (zip/tar slip: {e.reason}): "
                                "not extracted"))
        return
    if not member.regular:
        problems.append(Problem(path=where, reason="link or special file in archive: not extracted"))
        return
    if member.packed and member.size / member.packed > MAX_RATIO and member.size > 1 << 20:
        problems.append(Problem(path=where, reason=(
            f"compression ratio {member.size / member.packed:.0f}:1 looks like a zip bomb: not extracted")))
        return
    budget.claim(member.size)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with member.open() as src, out.open("wb") as dst:
            copied = 0
            while chunk := src.read(_CHUNK):
                copied += len(chunk)
                if copied > member.size:  # the header claimed less than the data holds
                    raise _Lied(member.size)
                budget.add(len(chunk))
                dst.write(chunk)
    except _Stop:
        out.unlink(missing_ok=True)
        raise
    except _Lied as e:
        out.unlink(missing_ok=True)
        problems.append(Problem(path=where, reason=f"member holds more than the {e.size:,} bytes its header "
                                "claims: not extracted"))
    except _READ_ERRORS as e:
        out.unlink(missing_ok=True)
        problems.append(Problem(path=where, reason=(
            f"member is truncated or corrupt ({type(e).__name__}: {str(e)[:120]}): not extracted; "
            "re-download or re-create the archive")))


class _Lied(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


@dataclass
class _Member:
    name: str
    size: int
    """Uncompressed size the header claims."""
    packed: int
    """Compressed size (0 when unknown, as in tar)."""
    regular: bool
    open: Callable[[], IO[bytes]]


def _members(archive: Path) -> Iterator[_Member]:
    """Files of a zip or tar archive (any compression, read as a stream), in a common form; directories left out."""
    if zipfile.is_zipfile(archive):
        try:
            zf = zipfile.ZipFile(archive)
        except _READ_ERRORS as e:
            raise FormatError(archive, "archive", f"corrupt zip ({e}); re-download or re-create it") from e
        with zf:
            for i in zf.infolist():
                if i.is_dir():
                    continue
                is_link = (i.external_attr >> 16) & 0o170000 == 0o120000
                yield _Member(i.filename, i.file_size, i.compress_size, not is_link, partial(zf.open, i))
        return
    try:
        tf = tarfile.open(archive, mode="r|*")  # noqa: SIM115 - closed by the with below
    except _READ_ERRORS as e:
        raise FormatError(archive, "archive", "neither a zip nor a tar archive (truncated, or its name does not "
                          "say what it holds); re-download it or check the file") from e
    with tf:
        for m in tf:
            if m.isdir():
                continue
            yield _Member(m.name, m.size, 0, m.isfile(), partial(_tar_open, tf, m))


def _tar_open(tf: tarfile.TarFile, m: tarfile.TarInfo) -> IO[bytes]:
    f = tf.extractfile(m)
    if f is None:
        raise OSError(f"cannot read {m.name}")
    return f
