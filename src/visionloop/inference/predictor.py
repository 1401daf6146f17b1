"""``Predictor(package)``: a pool of onnxruntime sessions running a model package, no torch needed.

Defaults follow what is fastest for conv nets on a small CPU: one intra-op thread per session and as many sessions as
cores, so concurrent calls (threads, the server's batch workers) run side by side instead of fighting over one
session's thread pool. Preprocessing is :class:`visionloop.core.preprocess.Preprocess` from the manifest, the same code
validation used in training; images are read with :func:`visionloop.core.imageio.decode` (EXIF orientation, any mode
to RGB). Outputs are in original image pixels with scores in 0..1.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from visionloop.core.annotations import RLE
from visionloop.core.errors import ImageError, VisionloopError
from visionloop.core.imageio import decode
from visionloop.core.package import Package, load_package
from visionloop.inference.results import ClassScore, Detection, Prediction

__all__ = ["DEFAULT_SCORE_THRESHOLD", "IMAGE_SUFFIXES", "ImageInput", "Predictor", "Prepared", "default_sessions",
           "iter_images"]

ImageInput = bytes | str | Path | Image.Image | np.ndarray
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
DEFAULT_SCORE_THRESHOLD = {"detection": 0.05, "tagging": 0.5}
"""Thresholds of a package whose manifest names none (packages exported from a run always name theirs)."""


def default_sessions() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Prepared:
    """One image ready for the model: ``x`` (3, h, w) float32 and the mapping back to original pixels."""

    x: np.ndarray
    width: int
    height: int
    geometry: dict[str, float]


class Predictor:
    """Run a model package on images.

    ``sessions`` onnxruntime sessions (default: one per core), each with ``threads_per_session`` intra-op threads.
    Thread-safe: every call borrows a free session from the pool.

    Thresholds (detection, instance segmentation and tagging): each class uses the manifest's
    ``thresholds["per_class"][class id]`` (chosen on the validation split at export), else ``thresholds["score"]``
    (detection) or ``thresholds["default"]`` (tagging). ``score_threshold`` replaces them for every class, for the
    whole predictor (constructor) or for one call (``predict(..., score_threshold=0.2)`` and the other predict
    methods).
    """

    def __init__(
        self, package: Package | str | Path, *, sessions: int | None = None, threads_per_session: int = 1,
        providers: Sequence[str] | None = None, max_pixels: int = 100_000_000, score_threshold: float | None = None,
        top_k: int = 5, max_model_batch: int = 16,
    ) -> None:
        self.package = package if isinstance(package, Package) else load_package(package)
        m = self.package.manifest
        self.manifest, self.task, self.preprocess = m, m.task, m.get_preprocess()
        self.max_pixels, self.top_k, self.max_model_batch = max_pixels, top_k, max(1, max_model_batch)
        self.n_sessions = sessions or default_sessions()
        if self.n_sessions < 1 or threads_per_session < 1:
            raise VisionloopError("Predictor: sessions and threads_per_session must be >= 1")
        self.input_name = m.inputs[0].name
        self.output_names = [o.name for o in m.outputs]
        self._pool: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._open_sessions(threads_per_session, list(providers or ["CPUExecutionProvider"]))
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.classes = list(m.classes)
        th = m.thresholds or {}
        default = float(th.get("default" if m.task == "tagging" else "score",
                               DEFAULT_SCORE_THRESHOLD["tagging" if m.task == "tagging" else "detection"]))
        per_class = {int(k): float(v) for k, v in (th.get("per_class") or {}).items()}
        self.class_thresholds = np.asarray([per_class.get(c.id, default) for c in self.classes], dtype=np.float64)
        """Threshold per class, in ``classes`` order (what the manifest says, or ``score_threshold`` for all)."""
        if score_threshold is not None:
            self.class_thresholds[:] = float(score_threshold)

    def thresholds_for(self, score_threshold: float | None = None) -> np.ndarray:
        """Per-class thresholds of one call: the predictor's, or ``score_threshold`` for every class."""
        if score_threshold is None:
            return self.class_thresholds
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise VisionloopError(f"score_threshold must be in 0..1, got {score_threshold}")
        return np.full(len(self.classes), float(score_threshold))

    # -- pool -------------------------------------------------------------------------------------------------------
    def _open_sessions(self, threads_per_session: int, providers: list[str]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads_per_session
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        for _ in range(self.n_sessions):
            self._pool.put(ort.InferenceSession(self.package.model_bytes, sess_options=opts, providers=providers))
        first = self._pool.queue[0]
        self.input_name = first.get_inputs()[0].name
        self.output_names = [o.name for o in first.get_outputs()]

    @contextmanager
    def _session(self) -> Iterator[Any]:
        if self._closed:
            raise VisionloopError("this predictor was closed; load the package again to predict")
        s = self._pool.get()
        try:
            yield s
        finally:
            self._pool.put(s)

    def close(self) -> None:
        """Wait for the predictions under way, then release the onnxruntime sessions (a model server that replaced
        this model frees its memory now, not when the last reference goes). A closed predictor predicts no more."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._closed = True
        while True:
            try:
                self._pool.get_nowait()
            except queue.Empty:
                break

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ------------------------------------------------------------------------------------------------------
    def prepare(self, image: ImageInput) -> Prepared:
        """Decode (bytes, path, PIL image or (H, W, 3) uint8 array) and preprocess one image."""
        if isinstance(image, Image.Image):
            from visionloop.core.imageio import to_rgb

            im = to_rgb(image)
        elif isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ImageError("<array>", f"expected an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
            im = Image.fromarray(image)
        else:
            im = decode(image, max_pixels=self.max_pixels)
        out, geo = self.preprocess.geometry(self.preprocess.levels(im))
        x = self.preprocess.normalize(np.asarray(out.convert("RGB")))
        return Prepared(x=x, width=im.size[0], height=im.size[1], geometry=geo)

    def run_prepared(self, items: Sequence[Prepared], *, score_threshold: float | None = None) -> list[Prediction]:
        """Run the model on prepared images with one session (stacked in one call when the model takes batches)."""
        if not items:
            return []
        th = self.thresholds_for(score_threshold)
        results: list[Prediction | None] = [None] * len(items)
        with self._session() as sess:
            if self.manifest.batchable:
                groups: dict[tuple[int, ...], list[int]] = {}
                for i, p in enumerate(items):
                    groups.setdefault(p.x.shape, []).append(i)
                step = self.max_model_batch
                chunks = [idx[k:k + step] for idx in groups.values() for k in range(0, len(idx), step)]
                for idx in chunks:
                    outs = sess.run(self.output_names, {self.input_name: np.stack([items[i].x for i in idx])})
                    for j, i in enumerate(idx):
                        results[i] = self._decode([o[j] for o in outs], items[i], th)
            else:
                for i, p in enumerate(items):
                    results[i] = self._decode(sess.run(self.output_names, {self.input_name: p.x}), p, th)
        return [r for r in results if r is not None]

    def predict_chunk(self, images: Sequence[ImageInput], *, score_threshold: float | None = None,
                      ) -> list[Prediction | ImageError]:
        """Decode, preprocess and run ``images`` in the calling thread; unreadable images come back as ImageError."""
        prepared: list[Prepared] = []
        slots: list[int] = []
        out: list[Prediction | ImageError] = [None] * len(images)  # type: ignore[list-item]
        for i, im in enumerate(images):
            try:
                prepared.append(self.prepare(im))
                slots.append(i)
            except ImageError as e:
                out[i] = e
        for i, pred in zip(slots, self.run_prepared(prepared, score_threshold=score_threshold), strict=True):
            out[i] = pred
        return out

    # -- public -----------------------------------------------------------------------------------------------------
    def predict(self, image: ImageInput, *, score_threshold: float | None = None) -> Prediction:
        """One image -> :class:`Prediction` (raises ImageError for unreadable input)."""
        (res,) = self.predict_chunk([image], score_threshold=score_threshold)
        if isinstance(res, ImageError):
            raise res
        return res

    def predict_batch(self, images: Sequence[ImageInput], *, return_errors: bool = False,
                      score_threshold: float | None = None) -> list[Any]:
        """Many images, split across the session pool and run in parallel; order is kept.

        Unreadable images raise ImageError, or come back as the ImageError in their slot with ``return_errors``.
        """
        n = len(images)
        if n == 0:
            return []
        k = min(self.n_sessions, n)
        bounds = [round(i * n / k) for i in range(k + 1)]
        chunks = [images[bounds[i]:bounds[i + 1]] for i in range(k)]
        self.thresholds_for(score_threshold)  # a bad value fails here, not in a worker thread
        if k == 1:
            parts = [self.predict_chunk(chunks[0], score_threshold=score_threshold)]
        else:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.n_sessions, thread_name_prefix="visionloop-predict")
            parts = list(self._executor.map(lambda c: self.predict_chunk(c, score_threshold=score_threshold), chunks))
        out = [r for part in parts for r in part]
        if not return_errors:
            for r in out:
                if isinstance(r, ImageError):
                    raise r
        return out

    def predict_paths(
        self, paths: Iterable[str | Path], *, batch_size: int = 32, progress: bool = False, total: int | None = None,
        score_threshold: float | None = None,
    ) -> Iterator[tuple[Path, Prediction | ImageError]]:
        """Stream (path, prediction or error) over many files, ``batch_size`` at a time, with an optional progress bar."""
        paths = list(paths) if total is None and progress else paths
        if total is None and isinstance(paths, list):
            total = len(paths)
        bar = None
        if progress:
            try:
                from tqdm import tqdm
            except ImportError:  # the runtime extra has no tqdm: predict without a bar
                tqdm = None
            if tqdm is not None:
                bar = tqdm(total=total, unit="img", desc=f"predict {self.package.name}")
        try:
            buf: list[Path] = []
            for p in paths:
                buf.append(Path(p))
                if len(buf) >= batch_size:
                    yield from self._flush(buf, bar, score_threshold)
                    buf = []
            if buf:
                yield from self._flush(buf, bar, score_threshold)
        finally:
            if bar is not None:
                bar.close()

    def _flush(self, buf: list[Path], bar: Any, score_threshold: float | None,
               ) -> Iterator[tuple[Path, Prediction | ImageError]]:
        res = self.predict_batch(buf, return_errors=True, score_threshold=score_threshold)
        if bar is not None:
            bar.update(len(buf))
        yield from zip(buf, res, strict=True)

    # -- decoding ---------------------------------------------------------------------------------------------------
    def _cls(self, index: int, score: float) -> ClassScore:
        c = self.classes[index]
        return ClassScore(class_id=c.id, name=c.name, score=float(score))

    def _decode(self, outs: list[np.ndarray], p: Prepared, thresholds: np.ndarray) -> Prediction:
        kind = self.manifest.output_kind
        pred = Prediction(task=self.task, width=p.width, height=p.height)
        if kind == "class_probs":
            probs = np.asarray(outs[0], dtype=np.float64).reshape(-1)
            pred.probs = probs
            order = np.argsort(-probs, kind="stable")[: max(1, min(self.top_k, len(probs)))]
            pred.scores = [self._cls(int(i), probs[i]) for i in order]
            pred.label = pred.scores[0]
        elif kind == "tag_probs":
            probs = np.asarray(outs[0], dtype=np.float64).reshape(-1)
            pred.probs = probs
            pred.scores = [self._cls(i, s) for i, s in enumerate(probs)]
            pred.tags = sorted((s for s, t in zip(pred.scores, thresholds, strict=True) if s.score >= t),
                               key=lambda s: -s.score)
        elif kind in {"torchvision_detection", "torchvision_instance_segmentation"}:
            pred.detections = self._detections(outs, p, thresholds)
        elif kind == "semantic_map":
            classes, conf = np.asarray(outs[0]), np.asarray(outs[1], dtype=np.float32)
            cmap = self._to_original(classes.astype(np.int32), p, nearest=True)
            ids = np.asarray([c.id for c in self.classes], dtype=np.int32)
            pred.class_map = ids[np.clip(cmap, 0, len(ids) - 1)]
            present = np.unique(cmap)
            pred.scores = [self._cls(int(i), float(conf[classes == i].mean()) if (classes == i).any() else 0.0)
                           for i in present if 0 <= i < len(ids)]
        return pred

    def _detections(self, outs: list[np.ndarray], p: Prepared, thresholds: np.ndarray) -> list[Detection]:
        named = dict(zip(self.output_names, outs, strict=True))
        boxes = np.asarray(named["boxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(named["labels"]).reshape(-1).astype(np.int64) - self.manifest.label_offset
        scores = np.asarray(named["scores"], dtype=np.float64).reshape(-1)
        masks = named.get("masks")
        g = p.geometry
        known = (labels >= 0) & (labels < len(self.classes))
        keep = known & (scores >= thresholds[np.where(known, labels, 0)])
        out = []
        for i in np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")]:
            x1, y1, x2, y2 = boxes[i]
            xyxy = (
                float(np.clip((x1 - g["pad_x"]) / g["scale_x"], 0, p.width)),
                float(np.clip((y1 - g["pad_y"]) / g["scale_y"], 0, p.height)),
                float(np.clip((x2 - g["pad_x"]) / g["scale_x"], 0, p.width)),
                float(np.clip((y2 - g["pad_y"]) / g["scale_y"], 0, p.height)),
            )
            mask = None
            if masks is not None:
                prob = self._to_original(np.asarray(masks[i]).reshape(masks.shape[-2:]).astype(np.float32), p)
                mask = RLE.encode(prob >= 0.5)
            c = self.classes[int(labels[i])]
            out.append(Detection(xyxy=xyxy, class_id=c.id, name=c.name, score=float(scores[i]), mask=mask))
        return out

    def _to_original(self, arr: np.ndarray, p: Prepared, *, nearest: bool = False) -> np.ndarray:
        """A (h, w) map over the model input -> (H, W) over the original image (inverse of the preprocessing)."""
        g = p.geometry
        im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.int32 if nearest else np.float32))
        data = (g["scale_x"], 0.0, g["pad_x"], 0.0, g["scale_y"], g["pad_y"])
        res = Image.NEAREST if nearest else Image.BILINEAR
        return np.asarray(im.transform((p.width, p.height), Image.AFFINE, data, resample=res, fillcolor=0))


def iter_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (recursively, sorted); ``root`` may also be one file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise VisionloopError(f"{root}: no such file or folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
