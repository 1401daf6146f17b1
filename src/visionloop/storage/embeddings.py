"""Embeddings stored with the project as files: ``PROJECT/embeddings/<backbone-key>/<kind>/``.

``kind`` is ``images`` (one vector per image) or ``crops`` (one per box of a detection project's head annotation).
A set's folder holds:

* ``manifest.json``: ``backbone`` and ``preprocess`` (what made the vectors; a set made otherwise is not extended),
  ``dim``, ``count`` and the ``shards`` that hold the vectors, in order;
* ``shard-<n>.npy``: ``(count, dim)`` float32, L2-normalised, readable memory-mapped (``np.load(mmap_mode="r")``);
* ``shard-<n>.rows.npz``: aligned arrays saying what each vector is (:class:`EmbeddingRows`).

Every file is written under a temporary name and moved into place with ``os.replace``, the manifest last: a process
killed midway leaves the previous manifest and the shards it names intact (a shard it had written is an orphan,
removed by the next write). An embedding run adds a shard every few thousand images (progress survives a kill) and
ends with :meth:`EmbeddingSet.compact`, which drops rows of deleted images and merges the shards into one file,
copying chunk by chunk (bounded memory). One writer at a time per set (the platform's job queue runs one).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from visionloop.core.errors import ConflictError, NotFoundError

__all__ = ["EMBEDDINGS_DIR", "KINDS", "EmbeddingRows", "EmbeddingSet", "EmbeddingsMissingError", "backbone_key",
           "embedding_keys", "image_shas"]

EMBEDDINGS_DIR = "embeddings"
KINDS = ("images", "crops")
FORMAT = 1
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_COPY_ROWS = 16384


class EmbeddingsMissingError(ConflictError):
    """A search needs embeddings that were not computed yet (or not for every image asked about)."""

    def __init__(self, project: str, key: str, kind: str = "images", *, hint: str = "") -> None:
        self.project, self.key, self.kind, self.hint = project, key, kind, hint
        super().__init__(
            f"no {kind} embeddings of backbone {key!r} in project {project!r} yet: "
            + (hint or f"run `visionloop embed {project}` (or queue the platform's embed job) first"))


@dataclass(frozen=True)
class EmbeddingRows:
    """What each stored vector is, as aligned arrays of length N.

    ``image_id`` (int64); ``box`` (int32): the box's index in the image's head annotation, -1 for a whole image;
    ``xyxy`` (float32, (N, 4)): the box in pixels (zeros for a whole image); ``class_id`` (int32, -1 for none);
    ``stamp`` (int64): what the vector was computed from beyond the image's bytes: the head revision id for crops
    (a new revision re-embeds them), 0 for whole images.
    """

    image_id: np.ndarray
    box: np.ndarray
    xyxy: np.ndarray
    class_id: np.ndarray
    stamp: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.image_id)
        object.__setattr__(self, "image_id", np.asarray(self.image_id, np.int64).reshape(n))
        object.__setattr__(self, "box", np.asarray(self.box, np.int32).reshape(n))
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, np.float32).reshape(n, 4))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, np.int32).reshape(n))
        object.__setattr__(self, "stamp", np.asarray(self.stamp, np.int64).reshape(n))

    def __len__(self) -> int:
        return len(self.image_id)

    @classmethod
    def empty(cls) -> EmbeddingRows:
        return cls.images([])

    @classmethod
    def images(cls, image_ids: Sequence[int]) -> EmbeddingRows:
        """Rows of whole images."""
        n = len(image_ids)
        return cls(np.asarray(image_ids, np.int64), np.full(n, -1), np.zeros((n, 4)), np.full(n, -1), np.zeros(n))

    @classmethod
    def concat(cls, parts: Sequence[EmbeddingRows]) -> EmbeddingRows:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def take(self, index: np.ndarray) -> EmbeddingRows:
        return EmbeddingRows(*(getattr(self, f)[index] for f in _FIELDS))

    def to_json(self, i: int) -> dict[str, Any]:
        """Row ``i`` as JSON: ``image_id``, and for a crop ``box``, ``xyxy`` and ``class_id``."""
        out: dict[str, Any] = {"image_id": int(self.image_id[i])}
        if self.box[i] >= 0:
            out.update(box=int(self.box[i]), xyxy=[round(float(v), 1) for v in self.xyxy[i]],
                       class_id=int(self.class_id[i]) if self.class_id[i] >= 0 else None)
        return out


_FIELDS = ("image_id", "box", "xyxy", "class_id", "stamp")


def _replace_with(path: Path, write: Any) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace`` it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array, np.float32))
            f.flush()
            os.fsync(f.fileno())
    _replace_with(path, write)


def _save_rows(path: Path, rows: EmbeddingRows) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: getattr(rows, k) for k in _FIELDS})
            f.flush()
            os.fsync(f.fileno())
    _replace_with(path, write)


def _load_rows(path: Path) -> EmbeddingRows:
    with np.load(path, allow_pickle=False) as z:
        return EmbeddingRows(*(z[k] for k in _FIELDS))


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def backbone_key(backbone: str) -> str:
    """The folder name of a backbone's embeddings: the model name, or ``run-<id>`` for ``run:<id>``."""
    return check_key(f"run-{backbone[4:]}" if backbone.startswith("run:") else backbone)


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise NotFoundError("embedding backbone key", key, hint="a key is letters, digits, '.', '_' and '-'")
    return key


def image_shas(project: Any, *, page: int = 5000) -> Iterator[tuple[int, str]]:
    """(image id, sha256) of every image of a project (deleted ones left out), by id, a page at a time."""
    offset = 0
    while True:
        batch = project.images(offset=offset, limit=page)
        yield from ((im.id, im.sha256) for im in batch)
        if len(batch) < page:
            return
        offset += page


def embedding_keys(project_root: str | Path) -> list[str]:
    """Backbone keys that have stored embeddings in the project."""
    base = Path(project_root) / EMBEDDINGS_DIR
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any((p / k / "manifest.json").is_file()
                                                                      for k in KINDS))


class EmbeddingSet:
    """The stored ``kind`` embeddings of one backbone in a project (see the module docstring)."""

    def __init__(self, project_root: str | Path, key: str, kind: str = "images") -> None:
        if kind not in KINDS:
            raise NotFoundError("embedding kind", kind, choices=list(KINDS))
        self.key, self.kind = check_key(key), kind
        self.folder = Path(project_root) / EMBEDDINGS_DIR / key / kind
        self._manifest: dict[str, Any] | None = None

    # ---- reading ---------------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    def manifest(self) -> dict[str, Any] | None:
        """The manifest, or None when nothing was stored yet (read once per object; writes refresh it)."""
        if self._manifest is None and self.manifest_path.is_file():
            self._manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        return self._manifest

    def exists(self) -> bool:
        return self.manifest() is not None

    def count(self) -> int:
        m = self.manifest()
        return int(m["count"]) if m else 0

    def _shards(self) -> list[str]:
        m = self.manifest()
        return [s["name"] for s in m["shards"]] if m else []

    def rows(self) -> EmbeddingRows:
        return EmbeddingRows.concat([_load_rows(self.folder / f"shard-{s}.rows.npz") for s in self._shards()])

    def vectors(self) -> np.ndarray:
        """``(count, dim)`` float32: memory-mapped when stored as one shard (after every finished run), else read."""
        m = self.manifest()
        if not m:
            return np.zeros((0, 0), np.float32)
        parts = [np.load(self.folder / f"shard-{s}.npy", mmap_mode="r") for s in self._shards()]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.zeros((0, int(m["dim"])), np.float32)

    def compatible(self, backbone: dict[str, Any], preprocess: dict[str, Any]) -> bool:
        """Whether the stored vectors were made by ``backbone`` with ``preprocess`` (a new set always is)."""
        m = self.manifest()
        return m is None or (m.get("backbone") == _plain(backbone) and m.get("preprocess") == _plain(preprocess))

    # ---- writing ---------------------------------------------------------------------------------------------
    def _write_manifest(self, m: dict[str, Any]) -> None:
        text = json.dumps(m, indent=1, sort_keys=True)
        _replace_with(self.manifest_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        self._manifest = m

    def _next_name(self) -> str:
        names = [int(p.name[6:12]) for p in self.folder.glob("shard-*.npy") if p.name[6:12].isdigit()]
        return f"{max(names, default=0) + 1:06d}"

    def _remove_orphans(self) -> None:
        keep = set(self._shards())
        for p in self.folder.glob("shard-*"):
            if p.name[6:12] not in keep:
                p.unlink(missing_ok=True)
        for p in self.folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)

    def start(self, *, backbone: dict[str, Any], preprocess: dict[str, Any], dim: int,
              replace: bool = False) -> None:
        """Make the set ready to receive vectors of ``backbone``: a new set, or ``replace=True`` to drop stored
        vectors made otherwise. Raises :class:`ConflictError` for an incompatible set without ``replace``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.exists() and not replace:
            if not self.compatible(backbone, preprocess) or int(self.manifest()["dim"]) != dim:  # type: ignore[index]
                raise ConflictError(
                    f"the stored {self.kind} embeddings in {self.folder} were made with another backbone or "
                    "preprocessing; recompute them (visionloop embed --recompute)")
            self._remove_orphans()
            return
        self._write_manifest({"format": FORMAT, "kind": self.kind, "key": self.key, "backbone": backbone,
                              "preprocess": preprocess, "dim": int(dim), "count": 0, "shards": []})
        self._remove_orphans()

    def append(self, vectors: np.ndarray, rows: EmbeddingRows) -> None:
        """Add one shard of ``vectors`` (N, dim) for ``rows`` (committed when the manifest is replaced)."""
        m = self.manifest()
        if m is None:
            raise NotFoundError("embedding set", str(self.folder), hint="call start() first")
        if len(vectors) != len(rows) or (len(vectors) and vectors.shape[1] != int(m["dim"])):
            raise ValueError(f"{len(vectors)} vectors of shape {vectors.shape} for {len(rows)} rows, dim {m['dim']}")
        if not len(rows):
            return
        name = self._next_name()
        _save_npy(self.folder / f"shard-{name}.npy", vectors)
        _save_rows(self.folder / f"shard-{name}.rows.npz", rows)
        self._write_manifest({**m, "count": int(m["count"]) + len(rows),
                              "shards": [*m["shards"], {"name": name, "count": len(rows)}]})

    def compact(self, keep: np.ndarray | None = None) -> int:
        """Rewrite the set as one shard of the rows where ``keep`` (bool over :meth:`rows`) is true (all when None),
        copying at most a few thousand vectors at a time; returns how many rows were dropped."""
        m = self.manifest()
        if m is None:
            return 0
        shards = self._shards()
        rows = self.rows()
        keep = np.ones(len(rows), bool) if keep is None else np.asarray(keep, bool)
        if len(shards) <= 1 and keep.all():
            return 0
        name = self._next_name()
        out_path = self.folder / f"shard-{name}.npy"
        dim, n_out = int(m["dim"]), int(keep.sum())

        def write(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_out, dim))
            at, start = 0, 0
            for s in shards:
                src = np.load(self.folder / f"shard-{s}.npy", mmap_mode="r")
                k = keep[start:start + len(src)]
                for i in range(0, len(src), _COPY_ROWS):
                    block = np.asarray(src[i:i + _COPY_ROWS])[k[i:i + _COPY_ROWS]]
                    out[at:at + len(block)] = block
                    at += len(block)
                start += len(src)
            out.flush()
            del out

        _replace_with(out_path, write)
        _save_rows(self.folder / f"shard-{name}.rows.npz", rows.take(np.flatnonzero(keep)))
        self._write_manifest({**m, "count": n_out, "shards": [{"name": name, "count": n_out}]})
        self._remove_orphans()
        return len(rows) - n_out

    def positions(self, image_ids: Iterable[int]) -> dict[int, int]:
        """Row position of each given image's whole-image vector (ids without one are left out)."""
        rows = self.rows()
        hit = np.flatnonzero(np.isin(rows.image_id, np.fromiter(image_ids, np.int64)) & (rows.box < 0))
        return {int(rows.image_id[p]): int(p) for p in hit}
