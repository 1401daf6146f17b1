"""``TorchPredictor``: the same preprocessing, thresholds and decoding as :class:`Predictor`, with the PyTorch eager
model, so a training run answers in the same schema as its package.

For ``visionloop predict`` on a run, comparisons (benchmarks, export checks) and models that have no ONNX export yet.
The package may hold no ONNX bytes (a manifest built from the run is enough). Needs torch; not imported by
``visionloop.inference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from visionloop.core.package import Package
from visionloop.inference.predictor import Predictor, Prepared
from visionloop.inference.results import Prediction
from visionloop.models.predict import semantic_probs

__all__ = ["TorchPredictor"]


class TorchPredictor(Predictor):
    """Run ``model`` (eval, no grad) as the package's task describes; ``workers`` calls may run at once."""

    def __init__(self, model: nn.Module, package: Package, *, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(package, sessions=workers, **kwargs)
        self.model = model.eval()

    def _open_sessions(self, threads_per_session: int, providers: list[str]) -> None:
        """No onnxruntime session: input and output names come from the manifest."""

    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        kind = self.manifest.output_kind
        with torch.inference_mode():
            if kind in {"class_probs", "tag_probs"}:
                y = self.model(torch.from_numpy(x))
                y = y if isinstance(y, torch.Tensor) else (y["logits"] if isinstance(y, dict) else y[0])
                return [(torch.sigmoid(y) if kind == "tag_probs" else torch.softmax(y, dim=1)).numpy()]
            if kind == "semantic_map":  # as the exported graph does, test-time flips included
                probs = semantic_probs(self.model, torch.from_numpy(x), self.preprocess.extra.get("tta_flips", ()))
                conf, cls = probs.max(dim=1)
                return [cls.numpy(), conf.numpy()]
            r = self.model([torch.from_numpy(x)])[0]
            return [r[name].numpy() for name in self.output_names]

    def run_prepared(self, items: Sequence[Prepared], *, score_threshold: float | None = None) -> list[Prediction]:
        if not items:
            return []
        th = self.thresholds_for(score_threshold)
        if self.manifest.batchable and len({p.x.shape for p in items}) == 1:
            outs = self._forward(np.stack([p.x for p in items]))
            return [self._decode([o[j] for o in outs], p, th) for j, p in enumerate(items)]
        if self.manifest.batchable:
            return [self._decode([o[0] for o in self._forward(p.x[None])], p, th) for p in items]
        return [self._decode(self._forward(p.x), p, th) for p in items]
