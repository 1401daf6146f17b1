"""The model package contract: the one thing export writes and inference, serving, pipelines and the review loop read.

A package is a directory, or the same files in one ``.zip``/``.vlpkg`` archive:

```
model.onnx       the network (fp32, or static QDQ int8 when ``manifest.int8`` says so)
manifest.json    task, classes with ids, preprocessing, thresholds, metrics, dataset version + hash, config hash,
                 ONNX opset and input/output names, int8 accuracy record
README.md        model card generated from the manifest
```

It sits in ``core`` (below both export, which writes packages, and inference, which runs them) and imports neither
torch nor onnx: ``pip install visionloop[runtime]`` is enough to load a package.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from visionloop.core.errors import VisionloopError
from visionloop.core.preprocess import Preprocess
from visionloop.core.task import Task

__all__ = [
    "ARCHIVE_SUFFIXES",
    "FORMAT_VERSION",
    "OUTPUT_KINDS",
    "ClassEntry",
    "Int8Record",
    "Manifest",
    "Package",
    "PackageError",
    "TensorSpec",
    "load_package",
    "render_model_card",
    "write_package",
]

FORMAT_VERSION = 1
ARCHIVE_SUFFIXES = (".zip", ".vlpkg")
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
README_FILE = "README.md"

OUTPUT_KINDS = {
    "class_probs": "probs (N, C) softmax over classes",
    "tag_probs": "probs (N, C) independent sigmoid per class",
    "torchvision_detection": "one image (3, H, W) in; boxes (K, 4) xyxy input pixels, labels (K,), scores (K,)",
    "torchvision_instance_segmentation": "as torchvision_detection plus masks (K, 1, H, W) probabilities",
    "semantic_map": "classes (N, H, W) int64 class index per pixel, confidence (N, H, W) softmax max",
}
"""How the ONNX outputs are decoded (``manifest.output_kind``)."""


class PackageError(VisionloopError):
    """A model package is missing, incomplete, from a newer visionloop, or inconsistent."""

    def __init__(self, path: Any, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"model package {path}: {reason}")


@dataclass(frozen=True)
class ClassEntry:
    id: int
    name: str


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: list[int | str]
    """Dimensions; strings are dynamic (``"batch"``, ``"height"``)."""
    dtype: str


@dataclass(frozen=True)
class Int8Record:
    """What static int8 quantisation cost, measured on the validation split at export."""

    method: str
    metric: str
    fp32: float
    int8: float
    drop: float
    max_drop: float
    forced: bool
    calibration_images: int
    validation_images: int


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything downstream needs to run and trust the model; serialised as ``manifest.json``."""

    name: str
    task: Task
    classes: list[ClassEntry]
    preprocess: dict[str, Any]
    output_kind: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    opset: int
    batchable: bool
    """True when the input has a dynamic batch dimension (classification, tagging, semantic maps)."""
    label_offset: int = 0
    """Model label ``l`` means ``classes[l - label_offset]`` (torchvision detectors reserve label 0 for background)."""
    thresholds: dict[str, Any] = field(default_factory=dict)
    """``score`` (detection/segmentation, 0..1), ``per_class`` {class id: threshold} (tagging), ``default`` (tagging)."""
    metrics: dict[str, float] = field(default_factory=dict)
    main_metric: str | None = None
    dataset_version: str | None = None
    dataset_hash: str | None = None
    config_hash: str | None = None
    run_id: str | None = None
    architecture: str | None = None
    int8: Int8Record | None = None
    model_sha256: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        if self.output_kind not in OUTPUT_KINDS:
            raise PackageError(self.name, f"unknown output_kind {self.output_kind!r}; known: {sorted(OUTPUT_KINDS)}")
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise PackageError(self.name, f"duplicate class ids in {ids}")

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get_preprocess(self) -> Preprocess:
        return Preprocess.from_json(self.preprocess)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["task"] = str(self.task)
        d["thresholds"] = _jsonable(self.thresholds)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], *, where: Any = "<manifest>") -> Manifest:
        version = d.get("format_version")
        if not isinstance(version, int):
            raise PackageError(where, "manifest.json has no integer format_version; is this a visionloop package?")
        if version > FORMAT_VERSION:
            raise PackageError(where, f"package format {version} is newer than this visionloop understands "
                               f"({FORMAT_VERSION}); upgrade visionloop")
        try:
            d = dict(d)
            d["classes"] = [ClassEntry(id=int(c["id"]), name=str(c["name"])) for c in d["classes"]]
            d["inputs"] = [TensorSpec(**t) for t in d["inputs"]]
            d["outputs"] = [TensorSpec(**t) for t in d["outputs"]]
            d["int8"] = Int8Record(**d["int8"]) if d.get("int8") else None
            known = set(cls.__dataclass_fields__)
            return cls(**{k: v for k, v in d.items() if k in known})
        except (KeyError, TypeError, ValueError) as e:
            raise PackageError(where, f"manifest.json is invalid ({type(e).__name__}: {e}); re-export the model") from e


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


@dataclass(frozen=True)
class Package:
    """A loaded package: the manifest, the ONNX bytes and where it came from."""

    path: Path
    manifest: Manifest
    model_bytes: bytes = field(repr=False)
    readme: str = field(default="", repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def task(self) -> Task:
        return self.manifest.task

    @property
    def preprocess(self) -> Preprocess:
        return self.manifest.get_preprocess()


def render_model_card(m: Manifest) -> str:
    """The README.md of a package, generated from its manifest (never edited by hand)."""
    lines = [f"# {m.name}", "", f"A **{m.task}** model exported by visionloop on {m.created_at}.", "", "## Classes", ""]
    lines += ["| id | name |", "|---:|---|"] + [f"| {c.id} | {c.name} |" for c in m.classes]
    pp = m.preprocess
    lines += ["", "## Input", "",
              f"- ONNX opset {m.opset}; inputs: " + ", ".join(f"`{t.name}` {t.shape} {t.dtype}" for t in m.inputs),
              "- outputs: " + ", ".join(f"`{t.name}` {t.shape} {t.dtype}" for t in m.outputs),
              f"- output decoding: `{m.output_kind}` ({OUTPUT_KINDS[m.output_kind]})",
              f"- preprocessing: RGB, resize `{pp.get('resize')}` to {pp.get('size')} (height, width), "
              f"mean {pp.get('mean')}, std {pp.get('std')} on the 0..1 scale",
              f"- batching: {'dynamic batch dimension' if m.batchable else 'one image per call'}"]
    lines += ["", "## Provenance", "",
              f"- run: {m.run_id or 'n/a'}; architecture: {m.architecture or 'n/a'}",
              f"- dataset version: {m.dataset_version or 'n/a'} (hash {m.dataset_hash or 'n/a'})",
              f"- config hash: {m.config_hash or 'n/a'}; model sha256: {m.model_sha256 or 'n/a'}"]
    lines += ["", "## Metrics at export", ""]
    if m.metrics:
        lines += ["| metric | value |", "|---|---:|"]
        lines += [f"| {k}{' (main)' if k == m.main_metric else ''} | {v:.4f} |" for k, v in sorted(m.metrics.items())]
    else:
        lines.append("No metrics were recorded.")
    if m.thresholds:
        lines += ["", "## Thresholds", "", "```json", json.dumps(_jsonable(m.thresholds), indent=2), "```"]
    lines += ["", "## Precision", ""]
    if m.int8 is None:
        lines.append("fp32.")
    else:
        q = m.int8
        lines.append(f"int8 ({q.method}), calibrated on {q.calibration_images} training images. {q.metric} on "
                     f"{q.validation_images} validation images: fp32 {q.fp32:.4f}, int8 {q.int8:.4f} "
                     f"(drop {q.drop:+.4f}, limit {q.max_drop:.4f}).")
        if q.forced:
            lines.append("")
            lines.append(f"**Warning:** written with --force although the drop exceeds the limit by "
                         f"{q.drop - q.max_drop:.4f}.")
    return "\n".join(lines) + "\n"


def _is_archive(path: Path) -> bool:
    return path.suffix.lower() in ARCHIVE_SUFFIXES


def write_package(out: str | Path, *, manifest: Manifest, model_bytes: bytes, overwrite: bool = False) -> Path:
    """Write a package as a directory, or as one archive when ``out`` ends with .zip/.vlpkg; returns ``out``.

    The manifest gets the model's sha256. Writing is atomic: a temporary sibling is renamed into place.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise PackageError(out, "already exists; choose another path or pass overwrite=True")
    d = manifest.to_json()
    d["model_sha256"] = hashlib.sha256(model_bytes).hexdigest()
    manifest = Manifest.from_json(d, where=out)
    files = {MODEL_FILE: model_bytes, MANIFEST_FILE: (json.dumps(manifest.to_json(), indent=2) + "\n").encode(),
             README_FILE: render_model_card(manifest).encode()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if _is_archive(out):
            target = tmp / out.name
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                for name, data in files.items():
                    zf.writestr(name, data)
        else:
            target = tmp / "pkg"
            target.mkdir()
            for name, data in files.items():
                (target / name).write_bytes(data)
        if out.exists():
            _remove(out)
        os.replace(target, out)
    finally:
        _remove(tmp)
    return out


def _remove(path: Path) -> None:
    if path.is_dir():
        for p in sorted(path.rglob("*"), key=lambda q: len(q.parts), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        path.rmdir()
    elif path.exists():
        path.unlink()


def load_package(path: str | Path, *, verify: bool = True) -> Package:
    """Read a package directory or archive; ``verify`` checks the model's sha256 against the manifest."""
    path = Path(path)
    if not path.exists():
        raise PackageError(path, "does not exist; export one with `visionloop export-model`")
    try:
        if path.is_dir():
            def read(name: str) -> bytes:
                f = path / name
                if not f.is_file():
                    raise PackageError(path, f"missing {name}; re-export the model")
                return f.read_bytes()
            raw_manifest, model, readme = read(MANIFEST_FILE), read(MODEL_FILE), (path / README_FILE)
            readme_text = readme.read_text() if readme.is_file() else ""
        else:
            if not zipfile.is_zipfile(path):
                raise PackageError(path, "is neither a package directory nor a .zip/.vlpkg package archive")
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                for need in (MANIFEST_FILE, MODEL_FILE):
                    if need not in names:
                        raise PackageError(path, f"archive has no {need}; re-export the model")
                raw_manifest, model = zf.read(MANIFEST_FILE), zf.read(MODEL_FILE)
                readme_text = zf.read(README_FILE).decode() if README_FILE in names else ""
    except (OSError, zipfile.BadZipFile) as e:
        raise PackageError(path, f"cannot be read: {e}") from e
    try:
        manifest = Manifest.from_json(json.loads(raw_manifest), where=path)
    except json.JSONDecodeError as e:
        raise PackageError(path, f"manifest.json is not JSON: {e}") from e
    if verify and manifest.model_sha256 and hashlib.sha256(model).hexdigest() != manifest.model_sha256:
        raise PackageError(path, "model.onnx does not match the sha256 in manifest.json (corrupted or edited)")
    return Package(path=path, manifest=manifest, model_bytes=model, readme=readme_text)

