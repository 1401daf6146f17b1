"""Embedding sets on disk: shards, compaction, atomic writes and what a killed writer leaves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from visionloop.core.errors import ConflictError
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet, backbone_key, embedding_keys

BACKBONE = {"name": "tf_efficientnet_lite0", "library": "timm", "weights": "imagenet"}
PRE = {"size": (224, 224), "mean": (0.5, 0.5, 0.5)}


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _started(tmp_path: Path) -> EmbeddingSet:
    s = EmbeddingSet(tmp_path, "tf_efficientnet_lite0")
    s.start(backbone=BACKBONE, preprocess=PRE, dim=8)
    return s


def test_shards_append_then_compact_into_one_memory_mapped_file(tmp_path: Path) -> None:
    s = _started(tmp_path)
    a, b = _vectors(5, seed=1), _vectors(3, seed=2)
    s.append(a, EmbeddingRows.images([1, 2, 3, 4, 5]))
    s.append(b, EmbeddingRows.images([6, 7, 8]))
    assert s.count() == 8 and len(s.manifest()["shards"]) == 2
    np.testing.assert_array_equal(s.vectors(), np.concatenate([a, b]))
    keep = ~np.isin(s.rows().image_id, [2, 7])  # images 2 and 7 were deleted
    assert s.compact(keep) == 2
    reread = EmbeddingSet(tmp_path, "tf_efficientnet_lite0")
    v = reread.vectors()
    assert isinstance(v, np.memmap) and v.dtype == np.float32
    assert reread.rows().image_id.tolist() == [1, 3, 4, 5, 6, 8]
    np.testing.assert_array_equal(v, np.concatenate([a, b])[[0, 2, 3, 4, 5, 7]])
    assert sorted(p.name for p in reread.folder.iterdir()) == [
        "manifest.json", f"shard-{reread.manifest()['shards'][0]['name']}.npy",
        f"shard-{reread.manifest()['shards'][0]['name']}.rows.npz"]
    assert reread.positions([4, 8, 99]) == {4: 2, 8: 5}
    assert embedding_keys(tmp_path) == ["tf_efficientnet_lite0"]


def test_a_writer_killed_before_its_manifest_leaves_the_previous_set(tmp_path: Path) -> None:
    s = _started(tmp_path)
    s.append(_vectors(4), EmbeddingRows.images([1, 2, 3, 4]))
    before = s.manifest_path.read_text()
    # what a kill after the shard files but before the manifest's os.replace leaves behind
    np.save(s.folder / "shard-000009.npy", _vectors(2))
    (s.folder / ".manifest.json.123.tmp").write_text("{half")
    again = EmbeddingSet(tmp_path, "tf_efficientnet_lite0")
    assert again.count() == 4 and again.rows().image_id.tolist() == [1, 2, 3, 4]
    again.start(backbone=BACKBONE, preprocess=PRE, dim=8)  # the next run clears the orphans
    assert not (s.folder / "shard-000009.npy").exists() and not (s.folder / ".manifest.json.123.tmp").exists()
    assert again.manifest_path.read_text() == before


def test_another_backbone_or_preprocessing_is_refused_unless_recomputed(tmp_path: Path) -> None:
    s = _started(tmp_path)
    s.append(_vectors(2), EmbeddingRows.images([1, 2]))
    with pytest.raises(ConflictError, match="recompute"):
        EmbeddingSet(tmp_path, "tf_efficientnet_lite0").start(backbone=BACKBONE, preprocess={**PRE, "size": (128, 128)},
                                                             dim=8)
    fresh = EmbeddingSet(tmp_path, "tf_efficientnet_lite0")
    fresh.start(backbone=BACKBONE, preprocess={**PRE, "size": (128, 128)}, dim=8, replace=True)
    assert fresh.count() == 0 and json.loads(fresh.manifest_path.read_text())["preprocess"]["size"] == [128, 128]


def test_crop_rows_round_trip_with_their_boxes(tmp_path: Path) -> None:
    s = EmbeddingSet(tmp_path, "tf_efficientnet_lite0", "crops")
    s.start(backbone=BACKBONE, preprocess=PRE, dim=8)
    rows = EmbeddingRows(np.array([3, 3]), np.array([0, 1]), np.array([[1, 2, 30, 40], [5, 5, 9, 9]]),
                         np.array([2, -1]), np.array([17, 17]))
    s.append(_vectors(2), rows)
    back = EmbeddingSet(tmp_path, "tf_efficientnet_lite0", "crops").rows()
    assert back.to_json(0) == {"image_id": 3, "box": 0, "xyxy": [1.0, 2.0, 30.0, 40.0], "class_id": 2}
    assert back.to_json(1)["class_id"] is None and back.stamp.tolist() == [17, 17]


def test_backbone_keys_are_folder_names() -> None:
    assert backbone_key("run:20260101-abc") == "run-20260101-abc"
    with pytest.raises(LookupError):
        backbone_key("../etc")
