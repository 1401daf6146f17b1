"""How to train a classifier: full fine-tuning, a frozen backbone with a trained head, or cached deep features with a
linear model; and ``auto``, which picks one from data size and hardware and says why.

``linear`` (the CPU fast path): one forward pass of the pretrained backbone per image (features are cached on disk
under ``PROJECT/cache/features/``, so a second run is nearly free), then scikit-learn logistic regression on the
standardised features with its regularisation chosen on the validation split. The fitted coefficients become the
model's linear head, so the result is the same torch module as the other strategies.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from visionloop.core.errors import AnnotationValidationError, VisionloopError
from visionloop.models.weights import safe_torch_load

__all__ = ["STRATEGIES", "StrategyChoice", "choose_strategy", "extract_features", "fit_linear_head"]

STRATEGIES = ("auto", "linear", "frozen", "finetune")


@dataclass(frozen=True)
class StrategyChoice:
    strategy: str
    reason: str


def choose_strategy(
    requested: str, *, n_train: int, epochs: int, device: str, step_seconds_per_image: float | None = None,
    budget_seconds: float = 600.0, few_images: int = 300,
) -> StrategyChoice:
    """Resolve ``requested`` (one of :data:`STRATEGIES`).

    ``auto``: with fewer than ``few_images`` training images, ``linear``. On a GPU, ``finetune`` (the most accurate, and cheap there). On a CPU, ``finetune`` when the estimated
    time (``n_train * epochs * step_seconds_per_image``, measured on a few images) fits ``budget_seconds``, else
    ``linear``: cached features + a linear model, which needs one forward pass per image instead of a forward and
    backward pass per image per epoch.
    """
    if requested not in STRATEGIES:
        raise AnnotationValidationError("strategy", expected=" | ".join(STRATEGIES), actual=requested)
    if requested != "auto":
        return StrategyChoice(requested, f"{requested} requested")
    if n_train < few_images:
        return StrategyChoice("linear", f"only {n_train} training images: a linear model on pretrained features "
                              "overfits less than fine-tuning and trains in seconds")
    if device.startswith("cuda"):
        return StrategyChoice("finetune", "a GPU is available: full fine-tuning is the most accurate and is cheap there")
    if step_seconds_per_image is None:
        return StrategyChoice("linear", "CPU only: cached deep features + a linear model is the fast path")
    est = n_train * epochs * step_seconds_per_image * 1.3  # + data loading and validation, measured ~30 %
    if est <= budget_seconds:
        return StrategyChoice("finetune", f"CPU only, but fine-tuning {n_train} images x {epochs} epochs is estimated "
                              f"at {est:.0f} s (<= {budget_seconds:.0f} s budget)")
    return StrategyChoice("linear", f"CPU only: fine-tuning {n_train} images x {epochs} epochs is estimated at "
                          f"{est / 60:.0f} min (> {budget_seconds / 60:.0f} min budget); cached deep features + a linear "
                          "model need one forward pass per image")


def feature_cache_key(model_spec: dict[str, Any], weights: dict[str, Any], preprocess: dict[str, Any]) -> str:
    blob = json.dumps({"m": model_spec.get("kwargs", {}), "w": weights.get("detail", ""), "p": preprocess},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class FeatureStore:
    """``{(sha256, view): (D,) float32}`` persisted in one ``.pt`` file per (model, weights, preprocessing) key.

    The file holds ``{"keys": [str], "features": (N, D) float32 tensor}`` and is read with ``weights_only=True``; a
    file that cannot be read that way (damaged, older layout, or holding pickled objects) is ignored and rewritten.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, np.ndarray] = {}
        if path is not None and path.exists():
            try:
                saved = safe_torch_load(path, what="feature cache")
                feats = saved["features"].numpy()
                self.data = {k: feats[i] for i, k in enumerate(saved["keys"])}
            except (OSError, RuntimeError, EOFError, VisionloopError, KeyError, TypeError, AttributeError):
                self.data = {}
        self.dirty = False

    def get(self, key: str) -> np.ndarray | None:
        return self.data.get(key)

    def put(self, key: str, value: np.ndarray) -> None:
        self.data[key] = value
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        keys = list(self.data)
        feats = np.stack([self.data[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, 0), np.float32)
        torch.save({"keys": keys, "features": torch.from_numpy(feats)}, tmp)
        os.replace(tmp, self.path)
        self.dirty = False


@torch.no_grad()
def extract_features(
    backbone: nn.Module, dataset: Any, keys: Sequence[str], *, store: FeatureStore, batch_size: int = 64,
    device: str = "cpu", progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(N, D) float32 features of ``dataset[i][0]`` for every i; ``keys[i]`` caches them in ``store``."""
    todo = [i for i, k in enumerate(keys) if store.get(k) is None]
    backbone.eval()
    if todo:
        sub = torch.utils.data.Subset(dataset, todo)
        loader = DataLoader(sub, batch_size=batch_size, shuffle=False, num_workers=0)
        done = 0
        for x, _ in loader:
            f = backbone(x.to(device)).float().cpu().numpy()
            for j in range(len(f)):
                store.put(keys[todo[done + j]], f[j].copy())
            done += len(f)
            if progress:
                progress(done, len(todo))
    return np.stack([store.get(k) for k in keys]).astype(np.float32)


def fit_linear_head(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *, task: str,
    score: Callable[[np.ndarray, np.ndarray], float], cs: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0),
    balanced: bool = True, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Logistic regression on standardised features; C chosen by ``score(y_val, val_probs)`` (higher is better).

    Returns (weight (C, D), bias (C,)) that act on the *raw* features (standardisation folded in) and a log dict.
    For tagging, one binary model per class (one-vs-rest).
    """
    from sklearn.linear_model import LogisticRegression

    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0) + 1e-6
    xt, xv = (x_train - mean) / std, (x_val - mean) / std
    log: dict[str, Any] = {"grid": []}
    best: tuple[float, Any] | None = None
    cw = "balanced" if balanced else None
    for c in cs:
        t = time.perf_counter()
        if task == "classification":
            clf = LogisticRegression(C=c, max_iter=2000, class_weight=cw, random_state=seed)
            clf.fit(xt, y_train)
            probs = _full_proba(clf, xv, int(y_train.max()) + 1 if len(y_train) else 0)
            coef, bias = clf.coef_, clf.intercept_
            if coef.shape[0] == 1:  # binary: sklearn keeps one row; make two logits
                coef, bias = np.vstack([-coef / 2, coef / 2]), np.array([-bias[0] / 2, bias[0] / 2])
            coef, bias = _expand(coef, bias, clf.classes_, y_val, probs)
        else:
            rows, biases = [], []
            for k in range(y_train.shape[1]):
                yk = y_train[:, k] > 0.5
                if yk.all() or not yk.any():
                    rows.append(np.zeros(xt.shape[1]))
                    p = float(yk.mean())
                    biases.append(np.log(max(p, 1e-4) / max(1 - p, 1e-4)))
                    continue
                clf = LogisticRegression(C=c, max_iter=2000, class_weight=cw, random_state=seed).fit(xt, yk)
                rows.append(clf.coef_[0])
                biases.append(clf.intercept_[0])
            coef, bias = np.asarray(rows), np.asarray(biases)
            probs = 1 / (1 + np.exp(-(xv @ coef.T + bias)))
        s = float(score(y_val, probs))
        log["grid"].append({"C": c, "val_score": s, "seconds": round(time.perf_counter() - t, 2)})
        if best is None or s > best[0]:
            best = (s, (c, coef, bias))
    assert best is not None
    c, coef, bias = best[1]
    log["C"] = c
    w = coef / std[None, :]
    b = bias - (coef * (mean / std)[None, :]).sum(axis=1)
    return w.astype(np.float32), b.astype(np.float32), log


def _full_proba(clf: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    p = clf.predict_proba(x)
    out = np.zeros((len(x), max(n_classes, p.shape[1])))
    out[:, clf.classes_] = p
    return out


def _expand(coef: np.ndarray, bias: np.ndarray, classes: np.ndarray, y_val: np.ndarray,
            probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows for classes absent from training get a very low bias (never predicted)."""
    n = probs.shape[1]
    if len(classes) == n and (classes == np.arange(n)).all():
        return coef, bias
    full_w = np.zeros((n, coef.shape[1]))
    full_b = np.full(n, -1e4)
    full_w[classes], full_b[classes] = coef, bias
    return full_w, full_b
