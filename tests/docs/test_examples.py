"""The runnable examples under docs/examples/ run end to end on tiny synthetic datasets (one short epoch, small
images), so the code the documentation shows keeps working."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 70, 220)]


def _example(name: str):  # noqa: ANN202
    return runpy.run_path(str(EXAMPLES / name))["main"]


def _class_folders(root: Path, *, per_class: int = 10, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for k, colour in enumerate(COLOURS):
        folder = root / f"class{k}"
        folder.mkdir(parents=True)
        for j in range(per_class):
            arr = np.clip(np.array(colour) + rng.integers(-60, 60, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / f"{j}.png")
    return root


@pytest.mark.slow
@pytest.mark.ci  # the only run of the classification example (~30 s on a loaded 2-core machine)
def test_classification_example(tmp_path: Path) -> None:
    main = _example("classification.py")
    out = main(_class_folders(tmp_path / "images"), tmp_path / "work", model="test_resnet", epochs=1, image_size=32,
               pretrained=False)
    assert out["package"].exists() and (tmp_path / "work" / "project" / "visionloop.toml").exists()
    assert 0.0 <= out["metrics"]["accuracy"] <= 1.0 and Path(out["metrics"]["report"]).exists()
    top = out["prediction"].to_json()
    assert top["task"] == "classification" and top["label"]["name"] == "class0"  # the example predicts class0/0.png


def _coco_with_splits(root: Path) -> Path:
    """annotations/instances_{train,val,test}.json with images/<subset>/: a red and a blue square per image."""
    rng = np.random.default_rng(1)
    counts = {"train": 8, "val": 3, "test": 3}
    for subset, n in counts.items():
        (root / "images" / subset).mkdir(parents=True)
        images, anns = [], []
        for k in range(n):
            arr = rng.integers(90, 140, (96, 128, 3)).astype(np.uint8)
            for cid, (colour, x) in enumerate([((220, 30, 30), 10), ((30, 60, 220), 70)], start=1):
                y = int(rng.integers(5, 60))
                arr[y:y + 28, x:x + 28] = colour
                anns.append({"id": len(anns) + 1, "image_id": k + 1, "category_id": cid, "bbox": [x, y, 28, 28],
                             "area": 784, "iscrowd": 0})
            Image.fromarray(arr).save(root / "images" / subset / f"{subset}{k}.png")
            images.append({"id": k + 1, "file_name": f"{subset}{k}.png", "width": 128, "height": 96})
        doc = {"images": images, "annotations": anns,
               "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]}
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{subset}.json").write_text(json.dumps(doc))
    return root


@pytest.mark.slow
def test_detection_example_keeps_the_source_splits(tmp_path: Path) -> None:
    main = _example("detection.py")
    out = main(_coco_with_splits(tmp_path / "coco"), tmp_path / "work", epochs=1, image_size=96, pretrained=False)
    assert out["version"].splits == {"train": 8, "val": 3, "test": 3}
    assert 0.0 <= out["metrics"]["map50"] <= 1.0 and out["package"].exists()
    assert out["prediction"].to_json()["task"] == "detection"
