"""Samplers of production traffic: which predictions a model server sends back to its project for review.

Pure and torch-free (the model server imports it). Each sampler looks at one prediction, the JSON of
:meth:`visionloop.inference.Prediction.to_json` (every task), and says whether it wants the image, with a score in
0..1 (higher: more worth a person's look) and a line saying why:

- ``low_confidence``: the least confident thing the model says is there (the label, a tag, a box, a segment) scores
  under ``max_score``
- ``margin``: classification only, the top two classes' scores are closer than ``max_margin``
- ``near_threshold``: a box or tag scores within ``band`` of its class's decision threshold (the package's per-class
  thresholds, see :class:`Thresholds`)
- ``classes``: a class of interest is present (scoring at least ``min_score``)
- ``count``: more than ``max_count`` detections (of ``classes``, or of any class)
- ``disagreement``: two models predicted the same image differently (a different label or tag set; for boxes, a
  box of one without a box of the same class at IoU >= ``iou`` in the other)
- ``random``: a ``rate`` share of all predictions, whatever they are: the *random slice*, an unbiased sample of
  production (the only one a frozen test set may grow by)

A :class:`SamplingConfig` lists several (from a JSON or TOML file, :func:`load_sampling_config`); a
:class:`FeedbackSampler` runs them all on each prediction and a chosen sample records every sampler that chose it.
Each sampler has a rate cap (``per_minute``, ``per_hour``, ``per_day``; a sliding window over the times it chose,
read from an injectable clock so tests need no sleeping): a sampler over its cap does not choose.
"""

from __future__ import annotations

import json
import random
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from visionloop.core.errors import VisionloopError

__all__ = [
    "ClassesSampler", "CountSampler", "DisagreementSampler", "FeedbackSampler", "Hit", "LowConfidenceSampler",
    "MarginSampler", "NearThresholdSampler", "RandomSampler", "SamplerConfig", "SamplingConfig",
    "SamplingConfigError", "Selection", "Thresholds", "box_iou", "load_sampling_config", "present_items",
]

_WINDOWS = {"per_minute": 60.0, "per_hour": 3600.0, "per_day": 86400.0}
MAX_CAP = 1_000_000
"""Largest rate cap: the window keeps one time per choice, so a cap bounds its memory."""


class SamplingConfigError(VisionloopError):
    """A sampling configuration that cannot be used; the message names the file and the fields to fix."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(default=None, min_length=1, max_length=64,
                             description="Name recorded with the samples it chooses (default: the kind).")
    per_minute: int | None = Field(default=None, ge=0, le=MAX_CAP)
    per_hour: int | None = Field(default=None, ge=0, le=MAX_CAP)
    per_day: int | None = Field(default=None, ge=0, le=MAX_CAP)

    @property
    def label(self) -> str:
        return self.name or str(getattr(self, "kind"))  # noqa: B009 - every subclass declares its kind


class LowConfidenceSampler(_Base):
    kind: Literal["low_confidence"]
    max_score: float = Field(0.5, gt=0.0, le=1.0, description="Chosen when the least confident item scores below.")


class MarginSampler(_Base):
    kind: Literal["margin"]
    max_margin: float = Field(0.1, gt=0.0, le=1.0, description="Chosen when top-1 minus top-2 is below (0..1).")


class NearThresholdSampler(_Base):
    kind: Literal["near_threshold"]
    band: float = Field(0.05, gt=0.0, le=1.0, description="Chosen when a score is within this of its threshold.")


class ClassesSampler(_Base):
    kind: Literal["classes"]
    classes: list[str] = Field(min_length=1, description="Class names of interest.")
    min_score: float = Field(0.0, ge=0.0, le=1.0)


class CountSampler(_Base):
    kind: Literal["count"]
    max_count: int = Field(ge=0, description="Chosen when the prediction has more detections than this.")
    classes: list[str] | None = Field(default=None, description="Count only these classes (default: all).")


class DisagreementSampler(_Base):
    kind: Literal["disagreement"]
    iou: float = Field(0.5, gt=0.0, le=1.0, description="Boxes of one class match at this IoU or more.")


class RandomSampler(_Base):
    kind: Literal["random"]
    rate: float = Field(ge=0.0, le=1.0, description="Share of all predictions chosen (the random slice).")


SamplerConfig = Annotated[
    LowConfidenceSampler | MarginSampler | NearThresholdSampler | ClassesSampler | CountSampler
    | DisagreementSampler | RandomSampler, Field(discriminator="kind")]


class SamplingConfig(BaseModel):
    """The samplers of one model server (``seed`` makes the random slice reproducible)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    samplers: list[SamplerConfig] = Field(min_length=1)
    seed: int | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> SamplingConfig:
        names = [s.label for s in self.samplers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sampler names must be unique, {twice} appear more than once: give each a 'name'")
        return self


def _explain(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors())


def load_sampling_config(source: str | Path | Mapping[str, Any]) -> SamplingConfig:
    """A sampling configuration from a ``.json`` or ``.toml`` file (or an already parsed mapping).

    The file holds ``samplers``, a list of ``{"kind": ..., options, "per_hour": cap, ...}``, and optionally ``seed``.
    Raises :class:`SamplingConfigError` naming the file and each field to fix.
    """
    where = "sampling config"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SamplingConfigError(f"cannot read the sampling config {path}: {e.strerror or e}") from e
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
            kind = "TOML" if path.suffix.lower() == ".toml" else "JSON (name a .toml file for TOML)"
            raise SamplingConfigError(f"{path} is not valid {kind}: {e}") from e
    try:
        return SamplingConfig.model_validate(data)
    except ValidationError as e:
        kinds = "low_confidence, margin, near_threshold, classes, count, disagreement, random"
        raise SamplingConfigError(f"{where}: {_explain(e)} (sampler kinds: {kinds})") from e


@dataclass(frozen=True)
class Thresholds:
    """A package's decision thresholds: ``per_class`` {class id: score} and ``default`` for the other classes."""

    default: float = 0.5
    per_class: Mapping[int, float] = field(default_factory=dict)

    def of(self, class_id: int) -> float:
        return float(self.per_class.get(int(class_id), self.default))

    @classmethod
    def from_manifest(cls, thresholds: Mapping[str, Any] | None, *, task: str) -> Thresholds:
        """From a manifest's ``thresholds`` (``score`` or, for tagging, ``default``; ``per_class``)."""
        th = thresholds or {}
        default = float(th.get("default" if task == "tagging" else "score", 0.5))
        return cls(default=default, per_class={int(k): float(v) for k, v in (th.get("per_class") or {}).items()})


def present_items(prediction: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the model says is in the image: the label, the tags, the detections or the segments (each with
    ``class_id``, ``name``, ``score``; boxes with ``xyxy``)."""
    task = prediction.get("task")
    if task == "classification":
        return [prediction["label"]] if prediction.get("label") else []
    if task == "tagging":
        return list(prediction.get("tags") or [])
    if "segments" in prediction:
        return list(prediction.get("segments") or [])
    return list(prediction.get("detections") or [])


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two xyxy boxes (pixels)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True)
class Hit:
    """One sampler's choice: its name, a score in 0..1 (higher: more worth a look) and why, for people."""

    name: str
    score: float
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "score": round(self.score, 6), "why": self.why}


@dataclass(frozen=True)
class Selection:
    """A chosen prediction: every sampler that chose it, the best score, and whether it is in the random slice."""

    hits: tuple[Hit, ...]
    random_slice: bool

    @property
    def score(self) -> float:
        return max(h.score for h in self.hits)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hits]


class _Window:
    """Sliding-window rate caps: per cap, the times of the sampler's last ``cap`` choices (memory bounded by the
    caps); one more is allowed when fewer were made, or the oldest of them left the window."""

    def __init__(self, caps: Mapping[str, int | None]) -> None:
        self.caps = [(_WINDOWS[k], int(v), deque[float](maxlen=max(1, int(v))))
                     for k, v in caps.items() if v is not None]

    def allows(self, now: float) -> bool:
        return all(cap > 0 and (len(times) < cap or now - times[0] >= span) for span, cap, times in self.caps)

    def record(self, now: float) -> None:
        for _, _, times in self.caps:
            times.append(now)


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def _low_confidence(c: LowConfidenceSampler, p: Mapping[str, Any], **_: Any) -> Hit | None:
    items = present_items(p)
    if not items:
        return None
    low = min(items, key=lambda d: float(d["score"]))
    s = float(low["score"])
    if s >= c.max_score:
        return None
    return Hit(c.label, 1.0 - s, f"{low['name']} scores {_fmt(s)} < {_fmt(c.max_score)}")


def _margin(c: MarginSampler, p: Mapping[str, Any], **_: Any) -> Hit | None:
    if p.get("task") != "classification" or not p.get("scores"):
        return None
    scores = sorted((float(s["score"]), s["name"]) for s in p["scores"])[::-1]
    second = scores[1] if len(scores) > 1 else (0.0, "(none)")
    m = scores[0][0] - second[0]
    if m >= c.max_margin:
        return None
    return Hit(c.label, 1.0 - m, f"{scores[0][1]} {_fmt(scores[0][0])} vs {second[1]} {_fmt(second[0])}: margin "
               f"{_fmt(m)} < {_fmt(c.max_margin)}")


def _near_threshold(c: NearThresholdSampler, p: Mapping[str, Any], *, thresholds: Thresholds,
                    **_: Any) -> Hit | None:
    task = p.get("task")
    if task == "classification" or "segments" in p:
        return None  # no per-class decision threshold
    items = p.get("scores") if task == "tagging" else p.get("detections")
    best: tuple[float, dict[str, Any]] | None = None
    for d in items or []:
        gap = abs(float(d["score"]) - thresholds.of(d["class_id"]))
        if gap <= c.band and (best is None or gap < best[0]):
            best = (gap, d)
    if best is None:
        return None
    gap, d = best
    return Hit(c.label, 1.0 - gap / c.band if c.band else 1.0,
               f"{d['name']} scores {_fmt(float(d['score']))}, threshold {_fmt(thresholds.of(d['class_id']))}")


def _classes(c: ClassesSampler, p: Mapping[str, Any], **_: Any) -> Hit | None:
    wanted = set(c.classes)
    found = [d for d in present_items(p) if d["name"] in wanted and float(d["score"]) >= c.min_score]
    if not found:
        return None
    names = sorted({d["name"] for d in found})
    return Hit(c.label, max(float(d["score"]) for d in found), f"class of interest: {', '.join(names)}")


def _count(c: CountSampler, p: Mapping[str, Any], **_: Any) -> Hit | None:
    items = present_items(p)
    if c.classes is not None:
        wanted = set(c.classes)
        items = [d for d in items if d["name"] in wanted]
    n = len(items)
    if n <= c.max_count:
        return None
    what = f" of {', '.join(c.classes)}" if c.classes else ""
    return Hit(c.label, 1.0 - c.max_count / n, f"{n} detections{what} > {c.max_count}")


def _disagreement(c: DisagreementSampler, p: Mapping[str, Any], *, other: Mapping[str, Any] | None,
                  other_model: str | None = None, **_: Any) -> Hit | None:
    if other is None:
        return None
    vs = f" (vs {other_model})" if other_model else ""
    task = p.get("task")
    if task == "classification":
        a, b = (x["label"]["name"] if x.get("label") else None for x in (p, other))
        return None if a == b else Hit(c.label, 1.0, f"label {a} vs {b}{vs}")
    if task == "tagging" or "segments" in p:
        sa, sb = ({d["name"] for d in present_items(x)} for x in (p, other))
        if sa == sb:
            return None
        diff = sorted(sa ^ sb)
        return Hit(c.label, len(diff) / max(1, len(sa | sb)), f"classes differ: {', '.join(diff)}{vs}")
    da, db = list(p.get("detections") or []), list(other.get("detections") or [])
    unmatched = len(da) + len(db) - 2 * _matched(da, db, c.iou)
    if unmatched == 0:
        return None
    return Hit(c.label, unmatched / max(1, len(da) + len(db)),
               f"{unmatched} of {len(da)} + {len(db)} boxes unmatched at IoU {_fmt(c.iou)}{vs}")


def _matched(a: list[dict[str, Any]], b: list[dict[str, Any]], iou: float) -> int:
    """Greedy one-to-one matching of same-class boxes, best IoU first; returns how many pairs matched."""
    pairs = sorted(((box_iou(x["xyxy"], y["xyxy"]), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
                    if x["class_id"] == y["class_id"]), reverse=True)
    used_a: set[int] = set()
    used_b: set[int] = set()
    for v, i, j in pairs:
        if v < iou:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
    return len(used_a)


_RULES: dict[str, Callable[..., Hit | None]] = {
    "low_confidence": _low_confidence, "margin": _margin, "near_threshold": _near_threshold, "classes": _classes,
    "count": _count, "disagreement": _disagreement,
}


class FeedbackSampler:
    """Run a :class:`SamplingConfig`'s samplers on predictions; thread-safe.

    ``thresholds``: the package's decision thresholds (``near_threshold``); ``clock`` (seconds, monotonic) drives the
    rate caps; ``rng`` draws the random slice (default: seeded with ``config.seed``). Counters: ``seen``, ``chosen``
    and ``capped`` (a sampler wanted an image but was at its cap), by sampler name.
    """

    def __init__(self, config: SamplingConfig, *, thresholds: Thresholds | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self.config, self.thresholds, self.clock = config, thresholds or Thresholds(), clock
        self._rng = rng or random.Random(config.seed)
        self._windows = {s.label: _Window({k: getattr(s, k) for k in _WINDOWS}) for s in config.samplers}
        self._lock = threading.Lock()
        self.seen = 0
        self.chosen: dict[str, int] = {s.label: 0 for s in config.samplers}
        self.capped: dict[str, int] = {s.label: 0 for s in config.samplers}

    @property
    def wants_other(self) -> bool:
        """Whether a sampler compares two models (the server then predicts the image with the other model too)."""
        return any(s.kind == "disagreement" for s in self.config.samplers)

    def choose(self, prediction: Mapping[str, Any], *, other: Mapping[str, Any] | None = None,
               other_model: str | None = None, thresholds: Thresholds | None = None,
               compare: bool | None = None) -> Selection | None:
        """The samplers that choose this prediction (``other``: another model's prediction of the same image), or
        None. A sampler at its rate cap does not choose; the random draw is made for every prediction, so the
        random slice stays independent of what the model predicted.

        In two passes (a server compares two models after answering): ``compare=False`` runs every sampler but
        ``disagreement`` (and counts the prediction as seen), ``compare=True`` only ``disagreement``."""
        th = thresholds or self.thresholds
        with self._lock:
            if compare is not True:
                self.seen += 1
            now = self.clock()
            hits: list[Hit] = []
            random_slice = False
            for s in self.config.samplers:
                if compare is not None and (s.kind == "disagreement") != compare:
                    continue
                if isinstance(s, RandomSampler):
                    hit = (Hit(s.label, 0.0, f"random slice ({_fmt(s.rate * 100)}% of predictions)")
                           if self._rng.random() < s.rate else None)
                else:
                    hit = _RULES[s.kind](s, prediction, thresholds=th, other=other, other_model=other_model)
                if hit is None:
                    continue
                window = self._windows[s.label]
                if not window.allows(now):
                    self.capped[s.label] += 1
                    continue
                window.record(now)
                self.chosen[s.label] += 1
                hits.append(hit)
                random_slice = random_slice or isinstance(s, RandomSampler)
        return Selection(tuple(hits), random_slice) if hits else None

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"seen": self.seen, "chosen": dict(self.chosen), "capped": dict(self.capped)}

