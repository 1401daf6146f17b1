"""Label-error candidates of a project: out-of-sample predicted probabilities by K-fold cross-validation on cached
backbone features, ranked by confident learning (:mod:`visionloop.quality.confident_learning`).

* **classification** / **tagging**: one feature vector per image (the pooled features of a pretrained backbone, cached
  on disk like the ``linear`` training strategy's, so a second run or a training run shares them); logistic regression
  trained on K-1 folds predicts the K-th, so every image gets probabilities from a model that never saw its label.
  Candidates: ``wrong_label`` (the class the model believes instead), ``wrong_tag`` (a tag to remove or to add).
* **detection** (and instance segmentation): the same on box crops (each box enlarged by ``margin``): ``wrong_class``
  candidates. With a model's predictions (a run's, :func:`run_predictions`, or a package's, passed in by the caller),
  also ``missing_box`` (a confident prediction that overlaps no annotation at IoU >= 0.5, nor one of its class at
  0.3) and ``loose_box`` (a confident prediction of the same class that overlaps an annotation at 0.3 <= IoU < 0.6
  and is that annotation's best match, while no prediction fits it at IoU >= 0.6): see :func:`box_issues`.

Every candidate gets a score in 0..1, higher = likelier an error, so all kinds rank in one list: ``1 - label
quality`` for label candidates (self-confidence or normalized margin), the prediction's score for a missing box, and
``score * (1 - IoU)`` for a loose one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from visionloop.core.annotations import Boxes, Instances, boxes_of
from visionloop.core.errors import ConflictError
from visionloop.core.imageio import decode
from visionloop.core.ontology import Ontology
from visionloop.core.preprocess import Preprocess
from visionloop.data.augment import eval_transform
from visionloop.data.cache import ImageCache
from visionloop.data.datasets import ImageDataset, class_list, labelled_items
from visionloop.data.detection import DetectionDataset
from visionloop.models.classifier import DEFAULT_MODEL, create_classifier
from visionloop.models.predict import predict_dataset
from visionloop.models.runs import load_run
from visionloop.quality.confident_learning import (
    IssueMethod,
    RankScore,
    find_label_issues,
    find_tag_issues,
    label_quality,
)
from visionloop.quality.derive import crop_region
from visionloop.storage.label_issues import IssueKind, NewLabelIssue
from visionloop.storage.versions import VersionItem, get_version, version_items
from visionloop.training.strategies import FeatureStore, extract_features, feature_cache_key

__all__ = [
    "BoxIssue",
    "CandidateReport",
    "OutOfSample",
    "box_issues",
    "cross_val_probs",
    "examples_of",
    "find_candidates",
    "out_of_sample_probs",
    "run_predictions",
]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""

CROP_MARGIN = 0.1
"""A box crop takes this fraction of the box's width and height around it (like derived crop projects)."""
MISSING_IOU = 0.5
LOOSE_IOU = (0.3, 0.6)


# ---- cross-validation ----------------------------------------------------------------------------------------------

def cross_val_probs(
    features: np.ndarray, targets: np.ndarray, *, task: str, folds: int = 5, seed: int = 0, c: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample probabilities by K-fold cross-validation of a logistic regression on standardised features.

    ``features`` (N, D); ``targets`` (N,) class indexes (classification: stratified folds, softmax probabilities
    (N, C) with C = ``targets.max() + 1``) or (N, K) 0/1 (tagging: one binary model per tag, sigmoid probabilities
    (N, K); a tag constant in a training fold gets that fold's frequency). Returns (probabilities, fold of each row).
    Every class needs at least 2 examples (fewer folds are used when a class has fewer than ``folds``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, StratifiedKFold

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets)
    n = len(x)
    if task == "classification":
        n_classes = int(y.max()) + 1 if n else 0
        smallest = int(np.bincount(y, minlength=n_classes)[np.bincount(y, minlength=n_classes) > 0].min()) if n else 0
        k = min(folds, smallest)
        if k < 2:
            raise ConflictError(f"cross-validation needs at least 2 examples of every class; the smallest has {smallest}")
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y)
        probs = np.zeros((n, n_classes))
    else:
        k = min(folds, n)
        if k < 2:
            raise ConflictError(f"cross-validation needs at least 2 images; there are {n}")
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(x)
        probs = np.zeros(y.shape)
    fold_of = np.zeros(n, dtype=np.int64)
    for f, (tr, te) in enumerate(splits):
        fold_of[te] = f
        mean, std = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-6
        xt, xe = (x[tr] - mean) / std, (x[te] - mean) / std
        if task == "classification":
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(xt, y[tr])
            probs[np.ix_(te, clf.classes_)] = clf.predict_proba(xe)
            continue
        for t in range(y.shape[1]):
            yt = y[tr, t] > 0.5
            if yt.all() or not yt.any():
                probs[te, t] = float(yt.mean())
                continue
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(xt, yt)
            probs[te, t] = clf.predict_proba(xe)[:, 1]
    return probs, fold_of


# ---- features ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Backbone:
    module: torch.nn.Module
    preprocess: Preprocess
    store: FeatureStore
    device: str


def _auto_size(sides: Sequence[float]) -> int:
    """The input side: the median shorter side rounded up to 32, within 128..224 (no upsampling of small crops)."""
    med = float(np.median(sides)) if len(sides) else 224.0
    return int(min(224, max(128, math.ceil(med / 32) * 32)))


def _backbone(project: Any, *, model: str, num_classes: int, size: int, device: str) -> _Backbone:
    net, winfo, spec = create_classifier(model, num_classes=num_classes)
    preprocess = Preprocess(size=(size, size), resize="stretch", mean=winfo.mean, std=winfo.std,
                            interpolation=winfo.interpolation)
    key = feature_cache_key(spec, winfo.to_json(), preprocess.to_json())
    store = FeatureStore(Path(project.root) / "cache" / "features" / f"{key}.pt")
    return _Backbone(net.backbone.to(device), preprocess, store, device)


class _Crops(Dataset):
    """``ds[i] -> (crop tensor (3, H, W), 0)``: the region ``regions[i]`` of the image ``shas[i]``, preprocessed."""

    def __init__(self, blobs: Any, shas: Sequence[str], regions: Sequence[tuple[int, int, int, int]],
                 preprocess: Preprocess) -> None:
        self.blobs, self.shas, self.regions = blobs, list(shas), list(regions)
        self.transform = eval_transform(preprocess)
        self._last: tuple[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.shas)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        sha = self.shas[i]
        if self._last is None or self._last[0] != sha:  # crops of one image come one after another
            self._last = (sha, decode(self.blobs.source(sha)).convert("RGB"))
        return self.transform(self._last[1].crop(self.regions[i])), torch.tensor(0)


# ---- the examples of a project -------------------------------------------------------------------------------------

@dataclass
class OutOfSample:
    """Out-of-sample probabilities of a project's examples: images (classification, tagging) or box crops
    (detection), aligned row by row."""

    task: str
    probs: np.ndarray
    """(N, C) softmax (classification, crops) or (N, K) sigmoid (tagging)."""
    targets: np.ndarray
    """(N,) class indexes, or (N, K) 0/1."""
    class_ids: list[int]
    class_names: list[str]
    image_ids: list[int]
    revision_ids: list[int | None]
    box_indexes: list[int | None]
    folds: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)


def examples_of(project: Any, version: str | None) -> tuple[list[Any], Ontology]:
    """A version's items, or (``version=None``) every image with its head annotation."""
    if version is not None:
        info = get_version(project, version)
        return version_items(project, version), info.ontology
    heads = project.heads()
    items = [VersionItem(image=im, annotation=heads[im.id][1], split="train", revision_id=heads[im.id][0])
             for im in project.images() if im.id in heads]
    return items, project.ontology()


def out_of_sample_probs(
    project: Any, *, version: str | None = None, folds: int = 5, model: str = DEFAULT_MODEL,
    image_size: int | None = None, margin: float = CROP_MARGIN, c: float = 0.01, seed: int = 0,
    device: str = "cpu", progress: Progress | None = None,
) -> OutOfSample:
    """Cached backbone features of every labelled image (or, for detection, box crop) of ``version`` (None: the
    current annotations), then :func:`cross_val_probs`."""
    task = project.task.value
    items, ontology = examples_of(project, version)
    classes = class_list(ontology)
    class_ids, names = [c_["id"] for c_ in classes], [c_["name"] for c_ in classes]
    if len(classes) < 2 and task != "tagging":
        raise ConflictError(f"the project has {len(classes)} active classes; finding wrong labels needs at least 2")

    def tick(stage: str) -> Callable[[int, int], None]:
        return lambda done, total: progress(stage, done, total) if progress else None

    if task in ("classification", "tagging"):
        data = labelled_items(items, task=task, class_ids=class_ids)
        by_sha = {it.image.sha256: it for it in items}
        size = image_size or _auto_size([min(by_sha[s].image.width, by_sha[s].image.height) for s in data.shas])
        bb = _backbone(project, model=model, num_classes=len(classes), size=size, device=device)
        ds = ImageDataset(data, cache=ImageCache(project.blobs, preprocess=bb.preprocess),
                          transform=eval_transform(bb.preprocess), kind="eval")
        x = extract_features(bb.module, ds, [f"{s}:eval" for s in data.shas], store=bb.store, device=device,
                             progress=tick("features"))
        bb.store.save()
        targets, image_ids = data.targets, data.image_ids
        revisions: list[int | None] = [by_sha[s].revision_id for s in data.shas]
        box_indexes: list[int | None] = [None] * len(image_ids)
        skipped = dict(data.skipped)
    elif task in ("detection", "segmentation"):
        index = {cid: i for i, cid in enumerate(class_ids)}
        shas, regions, labels, image_ids, revisions, box_indexes = [], [], [], [], [], []
        skipped = {}
        for it in items:
            if not isinstance(it.annotation, Boxes | Instances):
                why = "unannotated" if it.annotation is None else "not_boxes"
                skipped[why] = skipped.get(why, 0) + 1
                continue
            boxes = boxes_of(it.annotation)
            for b in range(len(boxes)):
                cid = int(boxes.class_id[b])
                if cid not in index:
                    skipped["retired_class"] = skipped.get("retired_class", 0) + 1
                    continue
                shas.append(it.image.sha256)
                regions.append(crop_region(boxes.xyxy[b], margin=margin, width=it.image.width,
                                           height=it.image.height))
                labels.append(index[cid])
                image_ids.append(it.image.id)
                revisions.append(it.revision_id)
                box_indexes.append(b)
        size = image_size or _auto_size([min(r[2] - r[0], r[3] - r[1]) for r in regions])
        bb = _backbone(project, model=model, num_classes=len(classes), size=size, device=device)
        keys = [f"{s}:box:{r[0]},{r[1]},{r[2]},{r[3]}" for s, r in zip(shas, regions, strict=True)]
        x = extract_features(bb.module, _Crops(project.blobs, shas, regions, bb.preprocess), keys, store=bb.store,
                             device=device, progress=tick("features"))
        bb.store.save()
        targets = np.asarray(labels, dtype=np.int64)
    else:
        raise ConflictError(f"label-error candidates cover classification, tagging, detection and instance "
                            f"segmentation projects, not {task}")
    if len(targets) == 0:
        raise ConflictError("no labelled examples to check; annotate images (or name a version that has some)")
    if task != "tagging":
        # a class with a single example cannot be cross-validated: leave its examples out, and say so
        counts = np.bincount(targets, minlength=len(classes))
        keep = counts[targets] >= 2
        if not keep.all():
            skipped["class_with_one_example"] = int((~keep).sum())
            x, targets = x[keep], targets[keep]
            image_ids, revisions, box_indexes = ([v for v, k in zip(seq, keep, strict=True) if k]
                                                 for seq in (image_ids, revisions, box_indexes))
    if progress:
        progress("cross-validation", 0, 1)
    probs, fold_of = cross_val_probs(x, targets, task="tagging" if task == "tagging" else "classification",
                                     folds=folds, seed=seed, c=c)
    if task != "tagging" and probs.shape[1] < len(classes):
        probs = np.pad(probs, ((0, 0), (0, len(classes) - probs.shape[1])))
    if progress:
        progress("cross-validation", 1, 1)
    return OutOfSample(task=task, probs=probs, targets=targets, class_ids=class_ids, class_names=names,
                       image_ids=list(image_ids), revision_ids=list(revisions), box_indexes=list(box_indexes),
                       folds=fold_of, skipped=skipped)


# ---- detection: missing and loose boxes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BoxIssue:
    kind: IssueKind
    prediction: int
    """Index of the prediction that shows the issue."""
    box_index: int | None
    """The annotation's box (loose boxes); None for a missing box."""
    iou: float
    """IoU of the prediction with the closest annotation."""
    score: float


def box_issues(
    annotation: Boxes, predictions: Boxes, *, min_score: float = 0.5, missing_iou: float = MISSING_IOU,
    loose_iou: tuple[float, float] = LOOSE_IOU,
) -> list[BoxIssue]:
    """Missing and loose boxes of one image from a model's predictions (xyxy pixels, project class ids).

    Only predictions scoring >= ``min_score`` count. A box is *loose* when its best-overlapping confident prediction
    of the same class has ``loose_iou[0] <= IoU < loose_iou[1]``, that prediction overlaps no other annotation more,
    and no same-class prediction fits it at ``IoU >= loose_iou[1]``. A prediction is a *missing* box when it overlaps
    no annotation at ``IoU >= missing_iou`` and no annotation of its class at ``IoU >= loose_iou[0]`` (that is a loose
    box's territory, or a second guess at an annotated object); missing boxes that overlap each other at
    ``missing_iou`` are one (the highest score kept, torchvision's NMS).
    """
    from torchvision.ops import box_iou, nms

    scores = predictions.score if predictions.score is not None else np.ones(len(predictions.xyxy))
    confident = np.flatnonzero(scores >= min_score)
    if len(confident) == 0:
        return []
    pred_xyxy = torch.as_tensor(predictions.xyxy[confident], dtype=torch.float64)
    gt = torch.as_tensor(annotation.xyxy, dtype=torch.float64)
    iou = box_iou(gt, pred_xyxy).numpy() if len(gt) else np.zeros((0, len(confident)))
    pred_cls = predictions.class_id[confident]
    out: list[BoxIssue] = []
    used: set[int] = set()
    for g in range(len(gt)):
        same = pred_cls == annotation.class_id[g]
        if not same.any() or (iou[g, same] >= loose_iou[1]).any():
            continue
        cand = np.where(same & (iou[g] >= loose_iou[0]) & (iou[g] < loose_iou[1]), iou[g], -1.0)
        p = int(cand.argmax())
        if cand[p] < 0 or int(iou[:, p].argmax()) != g:
            continue
        used.add(p)
        s = float(scores[confident[p]])
        out.append(BoxIssue(IssueKind.LOOSE_BOX, int(confident[p]), g, float(iou[g, p]), s * (1.0 - float(iou[g, p]))))
    best = iou.max(axis=0) if len(gt) else np.zeros(len(confident))
    same_class = (annotation.class_id[:, None] == pred_cls[None, :]) if len(gt) else np.zeros((0, len(confident)), bool)
    near_same = (np.where(same_class, iou, 0.0) >= loose_iou[0]).any(axis=0)
    missing = [p for p in range(len(confident)) if best[p] < missing_iou and not near_same[p] and p not in used]
    if missing:
        keep = nms(pred_xyxy[missing].float(), torch.as_tensor(scores[confident[missing]], dtype=torch.float32),
                   missing_iou).tolist()
        for k in keep:
            p = missing[k]
            out.append(BoxIssue(IssueKind.MISSING_BOX, int(confident[p]), None, float(best[p]),
                                float(scores[confident[p]])))
    return out


def run_predictions(project: Any, run_id: str, *, version: str | None = None, device: str = "cpu",
                    progress: Progress | None = None) -> dict[int, Boxes]:
    """A detection run's predictions on the annotated images of ``version`` (None: current annotations), with
    project class ids: image id -> Boxes."""
    net, cfg = load_run(project, run_id, device=device)
    kind = cfg.extra.get("kind", "detection")
    if kind not in ("detection", "instance"):
        raise ConflictError(f"run {run_id} is a {kind} run; missing and loose boxes need a detection run")
    items, ontology = examples_of(project, version)
    items = [it for it in items if isinstance(it.annotation, Boxes | Instances)]
    ids = [c_["id"] for c_ in cfg.classes]
    ds = DetectionDataset(items, ontology=ontology, image_source=project.blobs.source)
    out: dict[int, Boxes] = {}
    step = 8
    for start in range(0, len(ds), step):
        idx = list(range(start, min(len(ds), start + step)))
        preds = predict_dataset(net, torch.utils.data.Subset(ds, idx), kind=kind)
        for i, pred in zip(idx, preds, strict=True):
            b = boxes_of(pred)
            out[items[i].image.id] = Boxes(b.xyxy, np.asarray([ids[int(v) - 1] for v in b.class_id], np.int64),
                                           b.score)
        if progress:
            progress("predictions", min(len(ds), start + step), len(ds))
    return out


# ---- candidates ----------------------------------------------------------------------------------------------------

@dataclass
class CandidateReport:
    """Ranked candidates (likeliest error first) and what was computed to find them."""

    candidates: list[NewLabelIssue]
    oos: OutOfSample
    issues: np.ndarray
    """(N,) or (N, K) the confident-learning issue mask over the out-of-sample rows."""
    quality: np.ndarray
    """(N,) or (N, K) label quality of every row (low: likely wrong)."""
    summary: dict[str, Any]


def _label_candidates(oos: OutOfSample, method: IssueMethod, score: RankScore,
                      ) -> tuple[list[NewLabelIssue], np.ndarray, np.ndarray]:
    out: list[NewLabelIssue] = []
    if oos.task == "tagging":
        found = find_tag_issues(oos.targets, oos.probs, method, score)
        for row, tag in found.ranked():
            present = bool(oos.targets[row, tag] > 0.5)
            cid = oos.class_ids[tag]
            out.append(NewLabelIssue(
                image_id=oos.image_ids[row], kind=IssueKind.WRONG_TAG, score=float(1.0 - found.quality[row, tag]),
                given_class_id=cid if present else None, suggested_class_id=None if present else cid,
                revision_id=oos.revision_ids[row],
                details={"probability": round(float(oos.probs[row, tag]), 6), "action": "remove" if present else "add"}))
        return out, found.issues, found.quality
    issues = find_label_issues(oos.targets, oos.probs, method)
    quality = label_quality(oos.targets, oos.probs, score)
    self_conf = oos.probs[np.arange(len(oos.targets)), oos.targets]
    kind = IssueKind.WRONG_LABEL if oos.task == "classification" else IssueKind.WRONG_CLASS
    for row in np.flatnonzero(issues):
        probs = oos.probs[row].copy()
        probs[oos.targets[row]] = -1.0
        other = int(probs.argmax())
        out.append(NewLabelIssue(
            image_id=oos.image_ids[row], kind=kind, score=float(np.clip(1.0 - quality[row], 0.0, 1.0)),
            given_class_id=oos.class_ids[int(oos.targets[row])], suggested_class_id=oos.class_ids[other],
            box_index=oos.box_indexes[row], revision_id=oos.revision_ids[row],
            details={"self_confidence": round(float(self_conf[row]), 6),
                     "suggested_probability": round(float(oos.probs[row, other]), 6)}))
    return out, issues, quality


def find_candidates(
    project: Any, *, version: str | None = None, folds: int = 5, method: IssueMethod | str = IssueMethod.PRUNE_BY_NOISE_RATE,
    score: RankScore | str = RankScore.SELF_CONFIDENCE, predictions: Mapping[int, Boxes] | None = None,
    min_score: float = 0.5, model: str = DEFAULT_MODEL, image_size: int | None = None, c: float = 0.01, seed: int = 0,
    device: str = "cpu", progress: Progress | None = None,
) -> CandidateReport:
    """Every label-error candidate of ``project`` (see the module docstring), likeliest first.

    ``predictions``: image id -> a detector's Boxes (project class ids) for missing and loose boxes (detection only).
    """
    method, score = IssueMethod(method), RankScore(score)
    if predictions is not None and project.task.value not in ("detection", "segmentation"):
        raise ConflictError("predictions (a run or package) give missing and loose boxes of detection projects")
    oos = out_of_sample_probs(project, version=version, folds=folds, model=model, image_size=image_size, c=c,
                              seed=seed, device=device, progress=progress)
    candidates, issues, quality = _label_candidates(oos, method, score)
    if predictions is not None:
        items, _ = examples_of(project, version)
        for it in items:
            pred = predictions.get(it.image.id)
            if pred is None or not isinstance(it.annotation, Boxes | Instances):
                continue
            ann = boxes_of(it.annotation)
            for bi in box_issues(ann, pred, min_score=min_score):
                p_cls = int(pred.class_id[bi.prediction])
                candidates.append(NewLabelIssue(
                    image_id=it.image.id, kind=bi.kind, score=float(np.clip(bi.score, 0.0, 1.0)),
                    given_class_id=p_cls if bi.kind is IssueKind.LOOSE_BOX else None, suggested_class_id=p_cls,
                    box_index=bi.box_index, revision_id=it.revision_id, box=[float(v) for v in pred.xyxy[bi.prediction]],
                    details={"iou": round(bi.iou, 4),
                             "prediction_score": round(float(pred.score[bi.prediction]) if pred.score is not None
                                                       else 1.0, 6)}))
    candidates.sort(key=lambda c_: (-c_.score, c_.image_id, -1 if c_.box_index is None else c_.box_index))
    kinds: dict[str, int] = {}
    for cand in candidates:
        kinds[str(IssueKind(cand.kind))] = kinds.get(str(IssueKind(cand.kind)), 0) + 1
    summary = {"examples": len(oos.image_ids), "kinds": kinds, "folds": int(oos.folds.max()) + 1,
               "skipped": oos.skipped, "classes": oos.class_names}
    return CandidateReport(candidates=candidates, oos=oos, issues=issues, quality=quality, summary=summary)

