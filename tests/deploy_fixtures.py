"""Fixtures shared by the deploy tests (export, inference, inference serving): real BCCD images and small models.

Import the fixtures you need into a test module (``from tests.deploy_fixtures import cell_classifier  # noqa: F401``).
Models are built directly (no training runs): ImageNet MobileNetV2 from the offline weights package, and a BCCD cell
classifier whose head is a logistic regression on frozen MobileNetV2 features of cell crops (trained in seconds).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CELL_CLASSES = ["RBC", "WBC", "Platelets"]
CELL_SIZE = (96, 96)


def bccd_jpegs(bccd_dir: Path, n: int, *, start: int = 0) -> list[Path]:
    files = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))
    if len(files) < start + n:
        pytest.skip(f"need {start + n} BCCD images, found {len(files)}")
    return files[start:start + n]


def mobilenet_v2_imagenet():  # noqa: ANN201
    import torch
    import torchvision

    from visionloop.models.detection import offline_mobilenet_v2_path

    m = torchvision.models.mobilenet_v2()
    m.load_state_dict(torch.load(offline_mobilenet_v2_path(), weights_only=True))
    return m.eval()


@dataclass
class CellData:
    train: list[tuple[Image.Image, int]]
    val: list[tuple[Image.Image, int]]


def _cell_crops(bccd_dir: Path, files: list[Path], *, rbc_per_image: int) -> list[tuple[Image.Image, int]]:
    out = []
    for f in files:
        xml = bccd_dir / "BCCD" / "Annotations" / (f.stem + ".xml")
        if not xml.exists():
            continue
        im = Image.open(f).convert("RGB")
        rbc = 0
        for obj in ET.parse(xml).getroot().iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in CELL_CLASSES:
                continue
            if name == "RBC":
                rbc += 1
                if rbc > rbc_per_image:
                    continue
            bb = obj.find("bndbox")
            x1, y1, x2, y2 = (int(float(bb.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x2 - x1 < 8 or y2 - y1 < 8:
                continue
            out.append((im.crop((x1, y1, x2, y2)).copy(), CELL_CLASSES.index(name)))
    return out


@pytest.fixture(scope="session")
def cell_data(bccd_dir: Path) -> CellData:
    files = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))
    return CellData(train=_cell_crops(bccd_dir, files[:60], rbc_per_image=2),
                    val=_cell_crops(bccd_dir, files[300:345], rbc_per_image=1))


@pytest.fixture(scope="session")
def cell_classifier(cell_data: CellData):  # noqa: ANN201
    """(model, preprocess): frozen ImageNet MobileNetV2 features + a logistic-regression head fitted on BCCD crops."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from visionloop.core.preprocess import Preprocess

    pp = Preprocess(size=CELL_SIZE, resize="stretch")
    model = cell_architecture()
    model[0][0].load_state_dict(mobilenet_v2_imagenet().features.state_dict())
    backbone = model[0].eval()
    x = torch.from_numpy(np.stack([pp(im) for im, _ in cell_data.train]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine, one thread is ~10x faster than contended OpenMP threads
    try:
        with torch.no_grad():
            feats = torch.cat([backbone(x[i:i + 64]) for i in range(0, len(x), 64)]).numpy()
    finally:
        torch.set_num_threads(threads)
    y = np.asarray([c for _, c in cell_data.train])
    lr = LogisticRegression(max_iter=2000, C=0.5, class_weight="balanced").fit(feats, y)
    head = model[1]
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(lr.coef_.astype(np.float32)))
        head.bias.copy_(torch.from_numpy(lr.intercept_.astype(np.float32)))
    return model.eval(), pp


def cell_architecture():  # noqa: ANN201
    """The cell classifier's architecture, untrained (an importable builder for run configs)."""
    import torchvision
    from torch import nn

    features = torchvision.models.mobilenet_v2().features
    return nn.Sequential(nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten()), nn.Linear(1280, 3))


@pytest.fixture(scope="session")
def cell_package(cell_classifier, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    from visionloop.export.onnx_export import export_model

    model, pp = cell_classifier
    return export_model(model, task="classification", classes=CELL_CLASSES, preprocess=pp, name="cells",
                        out=tmp_path_factory.mktemp("pkg") / "cells.vlpkg", metrics={"val_balanced_accuracy": 0.9},
                        main_metric="val_balanced_accuracy", dataset_version="v1", dataset_hash="abc123",
                        config_hash="cfg456", run_id="run-1", architecture="mobilenet_v2+logreg")


@pytest.fixture(scope="session")
def cell_package_v2(cell_classifier, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """The cell classifier with its head's bias shifted toward WBC: another model, another package version (hot
    reload, rollback, canary)."""
    import copy

    import torch

    from visionloop.export.onnx_export import export_model

    model, pp = cell_classifier
    model = copy.deepcopy(model)
    with torch.no_grad():
        model[1].bias += torch.tensor([0.0, 1.5, 0.0])
    return export_model(model, task="classification", classes=CELL_CLASSES, preprocess=pp, name="cells",
                        out=tmp_path_factory.mktemp("pkg") / "cells-v2.vlpkg", run_id="run-2",
                        architecture="mobilenet_v2+logreg")


@pytest.fixture(scope="session")
def detector_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Faster R-CNN MobileNetV3-Large 320 FPN with random (seeded) weights, exported: fast, for server tests."""
    import torch
    import torchvision

    from visionloop.export.onnx_export import export_model

    torch.manual_seed(0)
    m = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=4, box_detections_per_img=20)
    return export_model(m, task="detection", classes=CELL_CLASSES, name="detector",
                        out=tmp_path_factory.mktemp("pkg") / "detector", thresholds={"score": 0.0})


def jpeg_bytes(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
