"""A small project for drift checks: a classification version, a package trained "on" it, production samples.

The package is a tiny ONNX classifier whose answer follows the image's brightness, so darkened production images
move its confidences and classes; the embeddings are stored 8x8 grey thumbnails (``THUMBS``), so checks run without
a pretrained backbone.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from tests.conftest import make_image_bytes
from visionloop.core import Label
from visionloop.storage import NewImage, Project
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet
from visionloop.storage.production import ProductionSampleRow

THUMBS = "thumbs8"
"""The backbone key of the stored thumbnail embeddings."""


def tiny_classifier_package(out: Path, *, version: str | None = "v1") -> Path:
    """A two-class package whose logits are +-4 x the mean normalised intensity (bright: class 0, dark: class 1)."""
    import torch
    from torch import nn

    from visionloop.core.preprocess import Preprocess
    from visionloop.export.onnx_export import export_model

    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([[1.5, 1.5, 1.5], [-1.5, -1.5, -1.5]]))
        model[2].bias.zero_()
    return export_model(model.eval(), task="classification", classes=["bright", "dark"], out=out, name="tiny",
                        preprocess=Preprocess(size=(32, 32), resize="stretch"), dataset_version=version)


def add_image(project: Project, data: bytes, name: str) -> int:
    sha = project.blobs.put(data)
    im = Image.open(io.BytesIO(data))
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=im.width, height=im.height,
                                                   format=(im.format or "jpeg").lower(), name=name)])
    return image_id


def darken_and_blur(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data)).convert("RGB").point(lambda v: v // 3).filter(ImageFilter.GaussianBlur(2))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def thumb_vector(data: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(data)).convert("L").resize((8, 8), Image.Resampling.BILINEAR)
    return np.asarray(im, np.float32).ravel() / 255.0


def store_thumbs(project: Project, ids: Sequence[int], *, key: str = THUMBS) -> None:
    """Store the thumbnail embedding of each image of ``ids`` under the backbone key ``key``."""
    store = EmbeddingSet(project.root, key, "images")
    store.start(backbone={"name": THUMBS}, preprocess={"size": [8, 8]}, dim=64)
    vectors = np.stack([thumb_vector(project.image_bytes(i)) for i in ids])
    store.append(vectors, EmbeddingRows.images(list(ids)))


def reference_project(project_factory: Callable[..., Project], *, n: int = 60, key: str = THUMBS) -> Project:
    """A classification project of ``n`` noise images, alternately labelled, frozen as version v1 (70/30/0)."""
    from visionloop.storage.versions import create_version

    p = project_factory("classification")
    ids = p.class_ids(["bright", "dark"])
    image_ids = []
    for i in range(n):
        iid = add_image(p, make_image_bytes(64, 48, seed=i), f"ref-{i}.jpg")
        p.save_annotation(iid, Label(ids["bright" if i % 2 else "dark"]), base_revision=None, author="t")
        image_ids.append(iid)
    create_version(p, name="v1", fractions=(0.7, 0.3, 0.0), phash_distance=0)
    store_thumbs(p, image_ids, key=key)
    return p


def add_samples(project: Project, package: Path, images: Sequence[bytes], *, at: datetime | None = None,
                random_slice: bool = True, prefix: str = "prod", embed: bool = True, key: str = THUMBS,
                model_sha256: str | None = None) -> list[int]:
    """Add ``images`` as production samples received ``at`` (default now), with the package's predictions (said to
    come from the model ``model_sha256``, default the package's)."""
    from visionloop.inference import Predictor

    at = at or datetime.now(UTC)
    ids = [add_image(project, data, f"{prefix}-{k}.jpg") for k, data in enumerate(images)]
    with Predictor(package, sessions=1) as predictor:
        sha = model_sha256 or predictor.manifest.model_sha256
        with project.transaction() as conn:
            for iid, data in zip(ids, images, strict=True):
                conn.execute(ProductionSampleRow.__table__.insert().values(
                    request_id=uuid.uuid4().hex, image_id=iid, server="test", model="tiny", package_version="1",
                    model_sha256=sha, score=0.5,
                    samplers=[{"name": "random" if random_slice else "low_confidence", "score": 0.5, "why": "test"}],
                    random_slice=random_slice, prediction=predictor.predict(data).to_json(), predicted_at=at,
                    received_at=at))
    if embed:
        store_thumbs(project, ids, key=key)
    return ids
