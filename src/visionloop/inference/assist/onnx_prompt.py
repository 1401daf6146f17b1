"""A promptable segmentation model the operator supplies in ONNX (the SAM family), run with onnxruntime.

The contract, that of Segment Anything's exports (Kirillov et al. 2023):

- the image encoder takes ``(1, 3, S, S)`` float32 (S: the input size, 1024 for SAM): the image resized so its longer
  side is S, normalised with SAM's pixel mean and std (0..255 scale), zero-padded at the right and bottom; its first
  output is the image embedding ``(1, C, E, E)``;
- the prompt decoder takes ``image_embeddings``, ``point_coords`` ``(1, N, 2)`` float32 (pixels of the resized
  image), ``point_labels`` ``(1, N)`` float32 (1 positive, 0 negative, 2 and 3 a box's corners, -1 padding),
  ``mask_input`` ``(1, 1, 4E, 4E)`` (logits of the previous mask), ``has_mask_input`` ``(1,)`` and
  ``orig_im_size`` ``(2,)`` (height, width), and answers ``masks`` ``(1, K, H, W)`` logits at the original size,
  ``iou_predictions`` ``(1, K)`` and ``low_res_masks`` ``(1, K, 4E, 4E)``.

The encoder runs once per image: its embeddings are kept in a bounded LRU keyed by the image's sha256 (and the window,
see below); the decoder runs per prompt (milliseconds). The mask with the highest predicted IoU is answered.
An image longer than ``max_side`` on a side is encoded by windows of ``max_side`` pixels on a grid of half that
step, the one centred nearest the prompt, so a small object in a huge image keeps its detail and nearby clicks share
one embedding.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from visionloop.core.errors import VisionloopError
from visionloop.inference.assist.base import AssistMethod, Prompt, Window
from visionloop.inference.assist.cache import LruCache

__all__ = ["DECODER_INPUTS", "PIXEL_MEAN", "PIXEL_STD", "AssistModelError", "OnnxPromptModel"]

PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size")
DECODER_OUTPUTS = ("masks", "iou_predictions", "low_res_masks")
MASK_LOGIT = 8.0
"""Logit magnitude a previous (binary) mask is given as ``mask_input``."""


class AssistModelError(VisionloopError):
    """An ONNX model that does not have the promptable-segmentation contract; ``path`` and ``reason`` say why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def _session(path: str | Path, threads: int):  # noqa: ANN202 - onnxruntime's InferenceSession
    import onnxruntime as ort

    if not Path(path).is_file():
        raise AssistModelError(path, "no such file: set VISIONLOOP_ASSIST_ONNX_ENCODER and "
                               "VISIONLOOP_ASSIST_ONNX_DECODER to the exported encoder and decoder")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own classes for a file that is not a model
        raise AssistModelError(path, f"onnxruntime cannot load it: {str(e).strip().splitlines()[0][:200]}") from e


class OnnxPromptModel(AssistMethod):
    """A SAM-family ``encoder`` and ``decoder`` (ONNX files); ``cache_entries`` image embeddings kept."""

    name = "onnx"
    title = "Promptable segmentation model (ONNX, SAM family) supplied by the operator"

    def __init__(self, encoder: str | Path, decoder: str | Path, *, cache_entries: int = 8, threads: int = 1,
                 max_side: int = 2048) -> None:
        self.encoder = _session(encoder, threads)
        self.decoder = _session(decoder, threads)
        inputs = self.encoder.get_inputs()
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or shape[1] not in (3, "3"):
            raise AssistModelError(encoder, f"an image encoder takes one (1, 3, S, S) input; this one takes "
                                   f"{[(i.name, i.shape) for i in inputs]}")
        self.input_size = shape[2] if isinstance(shape[2], int) else 1024
        names = {i.name for i in self.decoder.get_inputs()}
        missing = [n for n in DECODER_INPUTS if n not in names]
        outputs = [o.name for o in self.decoder.get_outputs()]
        if missing or not set(DECODER_OUTPUTS) <= set(outputs):
            raise AssistModelError(decoder, f"a prompt decoder takes {list(DECODER_INPUTS)} and answers "
                                   f"{list(DECODER_OUTPUTS)}; this one takes {sorted(names)} and answers {outputs}")
        self.max_side = max_side
        self._cache: LruCache[np.ndarray] = LruCache(cache_entries)

    # ---- the image ----------------------------------------------------------------------------------------------

    def frame(self, prompt: Prompt, width: int, height: int) -> Window:
        """The part of the image the encoder sees: all of it, or for a larger one the window of ``max_side`` on a
        grid of step ``max_side / 2`` centred nearest the prompt."""
        side = self.max_side
        if max(width, height) <= side:
            return Window(0, 0, width, height)
        xs = [c.x for c in prompt.clicks] + ([prompt.box[0], prompt.box[2]] if prompt.box else [])
        ys = [c.y for c in prompt.clicks] + ([prompt.box[1], prompt.box[3]] if prompt.box else [])
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        step = side // 2

        def origin(centre: float, extent: int) -> int:
            if extent <= side:
                return 0
            return int(min(extent - side, max(0, round((centre - side / 2) / step) * step)))

        x0, y0 = origin(cx, width), origin(cy, height)
        return Window(x0, y0, min(side, width - x0), min(side, height - y0))

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) of an image resized so its longer side is the input size (SAM's ResizeLongestSide)."""
        scale = self.input_size / max(width, height)
        return int(width * scale + 0.5), int(height * scale + 0.5)

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) float32 encoder input of an (H, W, 3) uint8 RGB image."""
        h, w = image.shape[:2]
        nw, nh = self.resized_size(w, h)
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x = np.zeros((self.input_size, self.input_size, 3), dtype=np.float32)
        x[:nh, :nw] = (resized - PIXEL_MEAN) / PIXEL_STD
        return x.transpose(2, 0, 1)[None]

    def embedding(self, image: np.ndarray, key: str) -> np.ndarray:
        """The encoder's output for ``image``, from the cache when ``key`` was encoded before."""
        name = self.encoder.get_inputs()[0].name
        return self._cache.get_or_make(key, lambda: self.encoder.run(None, {name: self.preprocess(image)})[0])

    @property
    def encoded(self) -> int:
        """Images encoded so far (the cache's misses)."""
        return self._cache.misses

    @property
    def cached(self) -> int:
        return len(self._cache)

    # ---- the prompt ---------------------------------------------------------------------------------------------

    def decoder_inputs(self, prompt: Prompt, width: int, height: int, embedding: np.ndarray) -> dict[str, np.ndarray]:
        """The decoder's inputs for ``prompt`` on a ``width`` x ``height`` image (or window)."""
        nw, nh = self.resized_size(width, height)
        sx, sy = nw / width, nh / height
        coords = [[c.x * sx, c.y * sy] for c in prompt.clicks]
        labels = [1.0 if c.positive else 0.0 for c in prompt.clicks]
        if prompt.box is not None:
            x1, y1, x2, y2 = prompt.box
            coords += [[x1 * sx, y1 * sy], [x2 * sx, y2 * sy]]
            labels += [2.0, 3.0]
        else:
            coords.append([0.0, 0.0])
            labels.append(-1.0)
        low = 4 * embedding.shape[-1]
        mask_input = np.zeros((1, 1, low, low), dtype=np.float32)
        has_mask = 0.0
        if prompt.previous is not None and prompt.previous.any():
            full = np.zeros((self.input_size, self.input_size), dtype=np.float32)
            full[:nh, :nw] = cv2.resize(prompt.previous.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
            small = cv2.resize(full, (low, low), interpolation=cv2.INTER_AREA)
            mask_input[0, 0] = (small * 2 - 1) * MASK_LOGIT
            has_mask = 1.0
        return {"image_embeddings": embedding, "point_coords": np.asarray([coords], dtype=np.float32),
                "point_labels": np.asarray([labels], dtype=np.float32), "mask_input": mask_input,
                "has_mask_input": np.asarray([has_mask], dtype=np.float32),
                "orig_im_size": np.asarray([height, width], dtype=np.float32)}

    def segment(self, image: np.ndarray, prompt: Prompt, *, key: str | None = None) -> np.ndarray:
        height, width = image.shape[:2]
        window = self.frame(prompt, width, height)
        part = window.crop(image)
        base = key or hashlib.sha256(np.ascontiguousarray(image).data).hexdigest()
        embedding = self.embedding(part, f"{base}:{window.x0},{window.y0},{window.w},{window.h}")
        local = window.local_prompt(prompt)
        masks, scores, _ = self.decoder.run(list(DECODER_OUTPUTS),
                                            self.decoder_inputs(local, window.w, window.h, embedding))
        best = int(np.asarray(scores).reshape(-1).argmax())
        mask = np.asarray(masks)[0, best] > 0.0
        if mask.shape != (window.h, window.w):
            raise AssistModelError("decoder", f"masks of {list(mask.shape)} for an image of "
                                   f"{[window.h, window.w]}: the decoder must answer at orig_im_size")
        return window.paste(mask, height, width)
