"""``TorchPredictor``: the same preprocessing and decoding as :class:`Predictor`, with the PyTorch eager model.

For comparisons (benchmarks, export checks) and for models that have no ONNX export yet. Needs torch; not imported
by ``visionloop.inference``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from visionloop.export.package import Package
from visionloop.inference.predictor import Predictor, Prepared
from visionloop.inference.results import Prediction

__all__ = ["TorchPredictor"]


class TorchPredictor(Predictor):
    """Run ``model`` (eval, no grad) as the package's task describes; ``workers`` calls may run at once."""

    def __init__(self, model: nn.Module, package: Package, *, workers: int = 1, **kwargs: Any) -> None:
        super().__init__(package, sessions=1, **kwargs)  # one small ORT session only for output names
        self.model = model.eval()
        self.n_sessions = workers

    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        kind = self.manifest.output_kind
        with torch.inference_mode():
            if kind in {"class_probs", "tag_probs"}:
                y = self.model(torch.from_numpy(x))
                y = y if isinstance(y, torch.Tensor) else (y["logits"] if isinstance(y, dict) else y[0])
                return [(torch.sigmoid(y) if kind == "tag_probs" else torch.softmax(y, dim=1)).numpy()]
            if kind == "semantic_map":
                y = self.model(torch.from_numpy(x))
                y = y["out"] if isinstance(y, dict) else y
                conf, cls = torch.softmax(y, dim=1).max(dim=1)
                return [cls.numpy(), conf.numpy()]
            r = self.model([torch.from_numpy(x)])[0]
            return [r[name].numpy() for name in self.output_names]

    def run_prepared(self, items: Sequence[Prepared]) -> list[Prediction]:
        if not items:
            return []
        if self.manifest.batchable and len({p.x.shape for p in items}) == 1:
            outs = self._forward(np.stack([p.x for p in items]))
            return [self._decode([o[j] for o in outs], p) for j, p in enumerate(items)]
        if self.manifest.batchable:
            return [self._decode([o[0] for o in self._forward(p.x[None])], p) for p in items]
        return [self._decode(self._forward(p.x), p) for p in items]
