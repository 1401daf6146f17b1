"""matplotlib figures used by the reports (Agg backend; no window, no global style change)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["confusion_figure", "pr_figure", "reliability_figure", "training_figure"]


def _fig(w: float, h: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    return fig, fig.add_subplot(111)


def confusion_figure(cm: Sequence[Sequence[int]], names: Sequence[str]) -> Any:
    """Counts, with rows normalised for colour (row = true class)."""
    m = np.asarray(cm, dtype=np.float64)
    n = len(names)
    fig, ax = _fig(max(4.0, 0.6 * n + 2.5), max(3.5, 0.6 * n + 2))
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title("confusion matrix")
    return fig


def pr_figure(curves: Mapping[str, Mapping[str, list[float]]],
              points: Mapping[str, tuple[float, float]] | None = None, *, title: str = "precision-recall") -> Any:
    """One curve per class; ``points[name] = (recall, precision)`` marks the chosen operating point."""
    fig, ax = _fig(5.5, 4.2)
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for (name, c), col in zip(curves.items(), colours, strict=True):
        if c["recall"]:
            ax.plot(c["recall"], c["precision"], color=col, label=name, lw=1.5)
        if points and name in points:
            r, p = points[name]
            ax.plot([r], [p], "o", color=col, ms=7, mec="black")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title + (" (dots: chosen thresholds)" if points else ""))
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=8, loc="lower left")
    return fig


def training_figure(records: Sequence[Mapping[str, Any]], *, monitor: str) -> Any:
    """train/val loss and the monitored metric per epoch."""
    fig, ax = _fig(6.0, 3.6)
    ep = [r["epoch"] for r in records]
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        vals = [r.get(key) for r in records]
        if any(v is not None for v in vals):
            ax.plot(ep, vals, style, marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    vals = [r.get(monitor) for r in records]
    if any(v is not None for v in vals):
        ax2 = ax.twinx()
        ax2.plot(ep, vals, color="C2", marker="s", label=monitor)
        ax2.set_ylabel(monitor)
        ax2.legend(loc="center right", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("training curves")
    return fig


def reliability_figure(bins: Sequence[Mapping[str, float]], *, ece: float) -> Any:
    fig, ax = _fig(4.2, 4.0)
    used = [b for b in bins if b["count"]]
    ax.plot([0, 1], [0, 1], ":", color="grey")
    if used:
        centres = [(b["lo"] + b["hi"]) / 2 for b in used]
        ax.bar(centres, [b["accuracy"] for b in used], width=1 / len(bins), alpha=0.6, edgecolor="black",
               label="accuracy")
        ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o-", color="C3", ms=3)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"reliability (ECE = {ece:.3f})")
    return fig
