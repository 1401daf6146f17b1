"""Streaming a multipart upload of many files (or one archive) to a staging folder, within a size bound.

Each file part is written to disk as it arrives (python-multipart's streaming parser, fed in a worker thread so the
writes never hold up other requests; nothing is held in memory or spooled elsewhere). Its file name is the path relative to the folder the user dropped (``cells/a.jpg``), resolved
inside the staging folder with :func:`visionloop.formats._paths.resolve_inside`: a name that climbs out (``../x``), an
absolute path or a drive is refused with a 400 that names it, and nothing of the upload is kept. Past ``max_bytes``
(all files together) the upload is refused with a 413 naming the ``import_max_bytes`` setting.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from visionloop.formats._paths import UnsafePathError, resolve_inside

__all__ = ["StagedUpload", "stage_upload"]

FILE_FIELDS = frozenset({"files", "file"})
MAX_FIELD_BYTES = 4096


@dataclass
class StagedUpload:
    """What arrived: ``names`` (relative paths, in order), ``bytes`` in all, and the small text ``fields``."""

    root: Path
    names: list[str] = field(default_factory=list)
    bytes: int = 0
    fields: dict[str, str] = field(default_factory=dict)


class _Writer:
    """python-multipart callbacks writing file parts under ``root``."""

    def __init__(self, root: Path, *, max_bytes: int, max_files: int) -> None:
        self.staged = StagedUpload(root)
        self.max_bytes, self.max_files = max_bytes, max_files
        self._header_name, self._header_value = b"", b""
        self._disposition = b""
        self._file: IO[bytes] | None = None
        self._field: tuple[str, bytearray] | None = None

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self._disposition = b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", errors="replace")
        if b"filename" not in options:
            self._field = (name, bytearray())
            return
        if name not in FILE_FIELDS:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                f"file field {name!r}: send each file in the multipart field 'files'")
        if len(self.staged.names) >= self.max_files:
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                f"more than {self.max_files:,} files in one upload; send them as one zip")
        filename = options[b"filename"].decode("utf-8", errors="replace")
        try:
            path = resolve_inside(self.staged.root, filename)
        except UnsafePathError as e:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"file name refused: {e}") from None
        rel = path.relative_to(self.staged.root).as_posix()
        if rel in self.staged.names:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"two files are named {rel!r} in the upload")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("xb")
        self.staged.names.append(rel)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._field is not None:
            if len(self._field[1]) + size > MAX_FIELD_BYTES:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, f"field {self._field[0]!r} is too long")
            self._field[1].extend(data[start:end])
            return
        self.staged.bytes += size
        if self.staged.bytes > self.max_bytes:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                                f"upload exceeds the server's limit of {self.max_bytes:,} bytes (the server's "
                                "import_max_bytes setting); import the files in several parts")
        if self._file is not None:
            self._file.write(data[start:end])

    def part_end(self) -> None:
        if self._field is not None:
            self.staged.fields[self._field[0]] = self._field[1].decode("utf-8", errors="replace")
            self._field = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def stage_upload(request: Request, root: Path, *, max_bytes: int, max_files: int) -> StagedUpload:
    """Write the files of the multipart request under ``root`` (created; removed again when the upload is refused)."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "send the files as multipart/form-data, one field 'files' "
                            "per file with its relative path as the file name (or one .zip / .tar.gz)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                            f"upload of {int(length):,} bytes exceeds the server's limit of {max_bytes:,} bytes "
                            "(the server's import_max_bytes setting); import the files in several parts")
    root.mkdir(parents=True, exist_ok=False)
    writer = _Writer(root, max_bytes=max_bytes, max_files=max_files)
    parser = MultipartParser(params[b"boundary"], writer.callbacks())
    try:
        try:
            async for chunk in request.stream():
                await run_in_threadpool(parser.write, chunk)  # disk writes stay off the event loop
            parser.finalize()
        except ClientDisconnect:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the client went away during the upload") from None
        except HTTPException:
            raise
        except Exception as e:  # noqa: BLE001 - the parser's complaint is the client's malformed upload
            if getattr(e, "status_code", None) == 413:  # the app's body limit, raised while reading
                raise
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed multipart upload: {e}") from None
        finally:
            writer.close()
        if not writer.staged.names:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "no files: send each file in the multipart field 'files'")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return writer.staged
