"""Model packages: round trip as a folder and as one archive, the generated model card, and clear errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from visionloop.core.package import (
    ClassEntry,
    Int8Record,
    Manifest,
    PackageError,
    TensorSpec,
    load_package,
    render_model_card,
    write_package,
)
from visionloop.core.preprocess import Preprocess


def _manifest(**kw: object) -> Manifest:
    base = dict(
        name="cells", task="classification", classes=[ClassEntry(3, "RBC"), ClassEntry(7, "WBC")],
        preprocess=Preprocess(size=(96, 96)).to_json(), output_kind="class_probs",
        inputs=[TensorSpec("images", ["batch", 3, 96, 96], "float32")],
        outputs=[TensorSpec("probs", ["batch", 2], "float32")], opset=17, batchable=True,
        thresholds={"per_class": {3: 0.4}}, metrics={"val_balanced_accuracy": 0.93}, main_metric="val_balanced_accuracy",
        dataset_version="v2", dataset_hash="d" * 64, config_hash="c" * 64, run_id="run-7",
    )
    base.update(kw)
    return Manifest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", ["", ".zip", ".vlpkg"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    out = write_package(tmp_path / f"pkg{suffix}", manifest=_manifest(), model_bytes=b"onnx-bytes")
    assert out.is_dir() == (suffix == "")
    pkg = load_package(out)
    m = pkg.manifest
    assert pkg.model_bytes == b"onnx-bytes"
    assert [(c.id, c.name) for c in m.classes] == [(3, "RBC"), (7, "WBC")]
    assert m.task == "classification" and m.opset == 17 and m.batchable
    assert m.get_preprocess() == Preprocess(size=(96, 96))
    assert m.thresholds == {"per_class": {"3": 0.4}}  # JSON keys
    assert m.dataset_version == "v2" and m.config_hash == "c" * 64 and m.run_id == "run-7"
    assert len(m.model_sha256 or "") == 64
    assert "# cells" in pkg.readme and "| 3 | RBC |" in pkg.readme and "val_balanced_accuracy (main)" in pkg.readme


def test_model_card_records_forced_int8_loss() -> None:
    rec = Int8Record(method="static-qdq", metric="balanced_accuracy", fp32=0.95, int8=0.90, drop=0.05, max_drop=0.01,
                     forced=True, calibration_images=64, validation_images=100)
    card = render_model_card(_manifest(int8=rec))
    assert "fp32 0.9500, int8 0.9000" in card and "--force" in card


def test_refuses_overwrite_and_tampering(tmp_path: Path) -> None:
    out = write_package(tmp_path / "p", manifest=_manifest(), model_bytes=b"abc")
    with pytest.raises(PackageError, match="already exists"):
        write_package(out, manifest=_manifest(), model_bytes=b"abc")
    write_package(out, manifest=_manifest(name="again"), model_bytes=b"abc", overwrite=True)
    assert load_package(out).name == "again"
    (out / "model.onnx").write_bytes(b"evil")
    with pytest.raises(PackageError, match="sha256"):
        load_package(out)


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="does not exist"):
        load_package(tmp_path / "missing")
    (tmp_path / "notzip.vlpkg").write_bytes(b"hello")
    with pytest.raises(PackageError, match="neither"):
        load_package(tmp_path / "notzip.vlpkg")
    out = write_package(tmp_path / "new.zip", manifest=_manifest(), model_bytes=b"m")
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["format_version"] = 99
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(newer, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("model.onnx", b"m")
    with pytest.raises(PackageError, match="newer"):
        load_package(newer)
    with pytest.raises(PackageError, match="duplicate class ids"):
        _manifest(classes=[ClassEntry(1, "a"), ClassEntry(1, "b")])
