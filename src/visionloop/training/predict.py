"""Predictions of a trained run on image files (classification and tagging; detection runs are delegated)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from visionloop.core.errors import ImageError
from visionloop.core.imageio import decode
from visionloop.models.runs import load_run
from visionloop.storage.runs import load_config, resolve_run
from visionloop.training.detection import predict_images as predict_detection

__all__ = ["predict_images"]


@torch.no_grad()
def predict_images(project: Any, run_id: str, images: Sequence[str | Path], *, top_k: int = 3,
                   batch_size: int = 32) -> list[dict[str, Any]]:
    """One dict per image, in order.

    Classification: ``{"image", "class", "score", "top": [{"class", "score"}, ...]}`` (softmax scores).
    Tagging: ``{"image", "tags": [{"class", "score"}] (scores >= the run's per-class thresholds), "scores": {...}}``.
    An unreadable file gives ``{"image", "error"}``. Detection/segmentation runs are answered by
    :func:`visionloop.training.detection.predict_images`.
    """
    rid = resolve_run(project, run_id)
    if load_config(project, rid).task in ("detection", "segmentation"):
        return predict_detection(project, rid, list(images))
    model, cfg = load_run(project, rid)
    pre = cfg.preprocessing()
    names = cfg.class_names
    out: list[dict[str, Any]] = [{"image": str(p)} for p in images]
    ok: list[int] = []
    tensors: list[torch.Tensor] = []
    for i, p in enumerate(images):
        try:
            tensors.append(torch.from_numpy(pre(decode(Path(p)))))
            ok.append(i)
        except (ImageError, OSError) as e:
            out[i]["error"] = str(e)
    for start in range(0, len(ok), batch_size):
        idx = ok[start:start + batch_size]
        logits = model(torch.stack(tensors[start:start + batch_size]))
        if cfg.task == "classification":
            probs = logits.softmax(1)
            for j, i in enumerate(idx):
                top = torch.topk(probs[j], min(top_k, len(names)))
                out[i]["class"] = names[int(top.indices[0])]
                out[i]["score"] = float(top.values[0])
                out[i]["top"] = [{"class": names[int(k)], "score": float(v)}
                                 for v, k in zip(top.values, top.indices, strict=True)]
        else:
            scores = logits.sigmoid()
            th = cfg.thresholds or [0.5] * len(names)
            for j, i in enumerate(idx):
                s = [float(v) for v in scores[j]]
                out[i]["tags"] = [{"class": n, "score": v} for n, v, t in zip(names, s, th, strict=True) if v >= t]
                out[i]["scores"] = dict(zip(names, s, strict=True))
    return out
