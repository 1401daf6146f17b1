"""Train detectors and segmenters on a dataset version with the shared loop (hooks, checkpoints, resume, progress).

Three kinds, decided by the version's annotations: ``detection`` (Boxes), ``instance`` (Instances: Mask R-CNN) and
``semantic`` (SemanticMask: DeepLabV3 / LRASPP / FCN). Model labels are 1..K in ``ontology.active`` order with 0 the
background (detectors); semantic classes are 0..K-1 in the same order.

Recipe (:class:`DetectionHParams`): SGD momentum 0.9, weight decay 1e-4, linear warm-up then cosine decay, gradient
clipping, multi-scale training (the detector draws one shorter side from ``train_sizes`` per batch and evaluates at
``eval_size``, chosen from the sizes of the images and of their objects: see :func:`_auto_sizes`), small-object
anchors on the offline MobileNetV2 models, validation COCO mAP every epoch (best checkpoint on ``val_map``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionloop.core.annotations import Boxes, Instances, SemanticMask, boxes_of
from visionloop.core.errors import ConflictError, VisionloopError
from visionloop.core.preprocess import Preprocess
from visionloop.core.task import Task
from visionloop.data.augment import AugmentPolicy
from visionloop.data.detection import (
    DetectionDataset,
    SemanticDataset,
    build_transforms,
    detection_collate,
    semantic_classes,
)
from visionloop.data.loader import EpochLoader
from visionloop.evaluation.detection import auto_max_dets, coco_metrics, semantic_metrics
from visionloop.evaluation.keys import MAP, MAP50, main_metric, split_key
from visionloop.models.predict import predict_dataset
from visionloop.models.registry import get_spec
from visionloop.storage.runs import RunConfig, RunResult, load_config, new_run_id, run_dir, save_config, write_result
from visionloop.storage.versions import get_version, version_items
from visionloop.training.loop import LoopConfig, TrainLoop, default_hooks, warmup_cosine
from visionloop.training.semantic import (
    SEMANTIC_DEFAULT_MODEL,
    SEMANTIC_MIN_OBJECT_PX,
    semantic_epochs,
    semantic_hparams,
    semantic_intensity,
    semantic_loss,
    semantic_object_fractions,
    semantic_val_metrics,
)

__all__ = [
    "DEFAULT_MODELS",
    "DetectionHParams",
    "auto_epochs",
    "auto_roi_budget",
    "auto_sizes",
    "dataset_kind",
    "train_detection",
]

DEFAULT_MODELS = {"detection": "fasterrcnn_mobilenet_v2_fpn", "instance": "maskrcnn_mobilenet_v2_fpn",
                  "semantic": SEMANTIC_DEFAULT_MODEL}


@dataclass(kw_only=True)
class DetectionHParams:
    """Training hyper-parameters (saved in the run's config). ``lr`` is per image: the step lr is ``lr * batch_size``.

    Semantic runs start from :data:`~visionloop.training.semantic.SEMANTIC_HPARAMS` for the fields left at these
    defaults. ``optimizer``: ``sgd`` (momentum) or ``adamw``. ``crop_size``: semantic training on random square
    crops of that side from the resized images (0: whole images). ``intensity`` (semantic): ``auto``, ``fixed`` or
    ``per_image`` (see :func:`~visionloop.training.semantic.semantic_intensity`). ``tta_flips`` (semantic): the
    flips a prediction averages over (:func:`~visionloop.models.predict.semantic_probs`); ``None``: both flips unless
    a class is orientation-sensitive (DSB2018 test nucleus IoU 0.746 -> 0.755 on one run).
    """

    epochs: int = 0
    batch_size: int = 2
    lr: float = 0.01 / 2
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 10.0
    eval_size: int = 0
    train_sizes: tuple[int, ...] = ()
    max_size: int = 1333
    trainable_layers: int = 4
    score_thresh: float = 0.05
    detections_per_img: int = 100
    vertical_flip: bool = False
    patience: int | None = None
    optimizer: str = "sgd"
    crop_size: int = 0
    intensity: str = "auto"
    tta_flips: tuple[str, ...] | None = None
    roi_samples: int = 0
    test_proposals: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def dataset_kind(task: Task, annotations: Sequence[Any]) -> str:
    """``detection``, ``instance`` or ``semantic`` from the task and the first annotation of that kind."""
    if task == Task.DETECTION:
        return "detection"
    if task != Task.SEGMENTATION:
        raise ConflictError(f"task {task.value!r} is not detection or segmentation; use the classification trainer")
    for ann in annotations:
        if isinstance(ann, Instances):
            return "instance"
        if isinstance(ann, SemanticMask):
            return "semantic"
    raise ConflictError("the version has no instance or semantic masks to train on; annotate some first")


MIN_OBJECT_PX = 24
"""Shorter side the median object should have at the evaluation size: 1.5x the smallest anchor (16 px) and three
cells of the finest (stride 8) feature map. Small nuclei in small microscopy images need upscaling to get there."""


def _object_fractions(items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Every object's shorter side as a fraction of its image's shorter side (boxes, or the boxes of instances;
    zero-size boxes left out): what resizing the image's shorter side to ``s`` makes ``s * fraction`` pixels; and
    each object's class id."""
    out, classes = [], []
    for it in items:
        if isinstance(it.annotation, Boxes | Instances):
            b = boxes_of(it.annotation)
            out.append((b.xyxy[:, 2:] - b.xyxy[:, :2]).min(axis=1) / min(it.image.width, it.image.height))
            classes.append(np.asarray(b.class_id))
    fractions = np.concatenate(out) if out else np.zeros(0)
    ids = np.concatenate(classes) if classes else np.zeros(0, int)
    return fractions[fractions > 0], ids[fractions > 0]


SMALL_OBJECT_QUANTILE = 5
"""Without classes (the regions of semantic masks), the percentile of the objects' shorter sides that must stay
``min_object_px`` when :func:`_auto_sizes` shrinks images whose objects are large."""


def _smallest_kept(fractions: np.ndarray, classes: np.ndarray | None,
                   names: Mapping[int, str] | None = None) -> tuple[float, str]:
    """The object size (fraction of the image side) that shrinking must keep at ``min_object_px``, and what it is:
    the median object of the class with the smallest objects (each class stays mostly visible: BCCD's platelets,
    7 % of the objects, set it), or the 5th percentile when the classes are not known."""
    if classes is not None and classes.size == fractions.size and classes.size:
        medians = {int(c): float(np.median(fractions[classes == c])) for c in np.unique(classes)}
        smallest = min(medians, key=medians.__getitem__)
        name = (names or {}).get(smallest, f"class {smallest}")
        return medians[smallest], f"the median {name} object (the class with the smallest ones)"
    return float(np.percentile(fractions, SMALL_OBJECT_QUANTILE)), f"{100 - SMALL_OBJECT_QUANTILE}% of the objects"


def _auto_sizes(items: Sequence[Any], hp: DetectionHParams, *, fractions: np.ndarray | None = None,
                min_object_px: int = MIN_OBJECT_PX, names: Mapping[int, str] | None = None,
                ) -> tuple[int, tuple[int, ...], str]:
    """Evaluation shorter side, the multi-scale training sizes around it (multiples of 32 within 256..800), and why.

    Start at the median image shorter side. When the median object, resized with its image, is smaller than
    ``min_object_px`` (``fractions``: the objects' shorter sides as fractions of their image's, by default from the
    boxes of ``items``), raise the size until it is not, up to 800. When even the small objects
    (:func:`_smallest_kept`) are larger than that, shrink the images until they are not, down to 256: a detector on
    a CPU trains and predicts about ``(native / size) ** 2`` times faster and loses nothing it could see (BCCD, 480 px
    photos: 320 px, where the median platelet is 24 px). Training draws sizes within +-96 px of it but never below
    0.8x: shrinking objects that are already small only teaches the detector to miss them.
    """
    if hp.eval_size:
        eval_size, reason = hp.eval_size, "set by the user"
    else:
        shorts = [min(it.image.width, it.image.height) for it in items]
        native = int(np.clip(32 * round(float(np.median(shorts)) / 32), 256, 800)) if shorts else 512
        eval_size, reason = native, f"the median image's shorter side ({native} px)"
        classes = None
        if fractions is None:
            fractions, classes = _object_fractions(items)
        if fractions.size:
            median = float(np.median(fractions))
            small, what = _smallest_kept(fractions, classes, names)
            needed = 32 * math.ceil(min_object_px / median / 32)
            enough = 32 * math.ceil(min_object_px / small / 32)
            if needed > native:
                eval_size = min(800, needed)
                reason = (f"raised from {native} px so that the median object is at least {min_object_px} px "
                          f"(it is {median:.1%} of its image's side)")
            elif enough < native:
                eval_size = max(256, enough)
                reason = (f"lowered from {native} px: {what} stays at least {min_object_px} px, and training and "
                          f"prediction get about {(native / eval_size) ** 2:.1f}x faster")
    train = hp.train_sizes or tuple(sorted({eval_size + 32 * k for k in range(-3, 4)
                                            if eval_size + 32 * k >= 0.8 * eval_size}))
    return eval_size, tuple(train), reason


def auto_sizes(items: Sequence[Any], names: Mapping[int, str] | None = None) -> tuple[int, str]:
    """The evaluation size :func:`train_detection` chooses for a detector trained on ``items`` (``.image``,
    ``.annotation``) with the default settings, and why (``names``: class id -> name, for the reason)."""
    size, _, reason = _auto_sizes(items, DetectionHParams(), names=names)
    return size, reason


PRESENTATIONS = 1000
"""Training images a detector should see at least (images x epochs) when the epochs are left to :func:`auto_epochs`."""


def auto_epochs(n_train: int, *, low: int = 6, high: int = 24) -> tuple[int, str]:
    """Epochs for ``n_train`` training images, and why: enough to show :data:`PRESENTATIONS` images (a small dataset
    needs more passes to be learnt: 81 BCCD images, 12 epochs, test mAP50 0.83; 6 gave 0.23 on 28), within
    ``low``..``high`` (a large one is seen often enough in ``low``)."""
    wanted = round(PRESENTATIONS / max(1, n_train))
    epochs = int(np.clip(wanted, low, high))
    if wanted > high:
        why = f"{epochs} epochs, the most it runs by default ({PRESENTATIONS:,} images seen would need {wanted})"
    elif wanted < low:
        why = f"{epochs} epochs, the fewest it runs by default ({epochs * n_train:,} images seen)"
    else:
        why = f"{epochs} epochs show the detector about {epochs * n_train:,} images (the aim: {PRESENTATIONS:,})"
    return epochs, f"{n_train} training images: {why}"


def auto_roi_budget(annotations: Sequence[Any], max_dets: int) -> tuple[int, int, str]:
    """The two-stage detectors' per-image RoI budget for a dataset, and why: the RoIs sampled to train the box head
    (``box_batch_size_per_image``: four per object of a crowded image, so its 25% positives hold every object, in
    steps of 128 within 128..512) and the proposals kept at test time (``rpn_post_nms_top_n_test``: three per
    allowed detection, 300..1000). torchvision's 512 and 1000 suit COCO's crowded scenes; the box head's two dense
    layers run once per RoI (13.9 MFLOP each), so a dataset with few objects per image spends most of its compute
    there: BCCD (at most 30 cells an image) trains with 27% fewer FLOPs and predicts with 57% fewer at 128 and 300.
    """
    counts = [len(a) for a in annotations if isinstance(a, Boxes | Instances)]
    crowded = float(np.percentile(counts, 99)) if counts else 0.0
    samples = int(np.clip(128 * math.ceil(4 * crowded / 128), 128, 512))
    proposals = int(np.clip(100 * math.ceil(3 * max_dets / 100), 300, 1000))
    return samples, proposals, (f"{samples} RoIs per training image and {proposals} proposals at test time: "
                                f"4 per object of the most crowded images ({crowded:.0f} objects, 99th "
                                f"percentile) and 3 per allowed detection ({max_dets})")


def _det_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
    images, targets = batch
    losses = model(images, targets)
    return sum(losses.values()), {k: float(v.detach()) for k, v in losses.items()}  # type: ignore[return-value]


def _version(project: Any, version: str) -> tuple[Any, dict[str, list[Any]]]:
    info = get_version(project, version)
    items = version_items(project, version)
    by_split: dict[str, list[Any]] = {"train": [], "val": [], "test": []}
    for it in items:
        if it.annotation is not None:
            by_split.setdefault(it.split, []).append(it)
    if not by_split["train"]:
        raise ConflictError(f"version {version!r} has no annotated training images; create a version with some")
    return info, by_split


def _datasets(project: Any, info: Any, by_split: dict[str, list[Any]], kind: str, policy: Any,
              semantic_size: tuple[int, int] | None, crop_size: int = 0, intensity: str = "fixed") -> dict[str, Any]:
    from torchvision.transforms import v2

    out = {}
    for split, items in by_split.items():
        train = split == "train"
        if kind == "semantic":
            tf = build_transforms(policy if train else None, train=train, semantic=True)
            if train and semantic_size is not None:
                crop = [v2.RandomCrop(crop_size)] if 0 < crop_size < min(semantic_size) else []
                tf = v2.Compose([v2.Resize(semantic_size), *crop, tf])
            out[split] = SemanticDataset(items, ontology=info.ontology, image_source=project.blobs.source, transforms=tf,
                                         intensity=intensity)  # type: ignore[arg-type]
        else:
            out[split] = DetectionDataset(items, ontology=info.ontology, image_source=project.blobs.source,
                                          transforms=build_transforms(policy if train else None, train=train),
                                          masks=kind == "instance")
    return out


def _model_spec(name: str, kind: str, num_classes: int, hp: DetectionHParams, eval_size: int,
                train_sizes: tuple[int, ...]) -> dict[str, Any]:
    """``config.model``: the registry name and the JSON options that rebuild the architecture."""
    entry = get_spec(name)
    if entry.kind != kind:
        raise ConflictError(f"{name} is a {entry.kind} model but this version needs a {kind} model; list them with "
                            f"visionloop models --task {'detection' if kind == 'detection' else 'segmentation'}")
    if kind == "semantic":
        return {"name": name, "kwargs": {"name": name, "num_classes": num_classes, "pretrained": "none"}}
    kwargs: dict[str, Any] = {"name": name, "num_classes": num_classes + 1, "pretrained": "none"}
    if not name.startswith("ssd"):
        kwargs.update(min_size=list(train_sizes) + [eval_size], max_size=hp.max_size)
        if name.startswith(("fasterrcnn", "maskrcnn")):
            kwargs.update(box_score_thresh=hp.score_thresh, box_detections_per_img=hp.detections_per_img)
            if hp.roi_samples:
                kwargs["box_batch_size_per_image"] = hp.roi_samples
            if hp.test_proposals:
                kwargs["rpn_post_nms_top_n_test"] = hp.test_proposals
        elif name.startswith(("retinanet", "fcos")):
            kwargs.update(score_thresh=hp.score_thresh, detections_per_img=hp.detections_per_img)
        if name.endswith("mobilenet_v2_fpn"):
            kwargs["trainable_layers"] = hp.trainable_layers
    return {"name": name, "kwargs": kwargs}


def _build(spec: dict[str, Any], *, pretrained: str | None, weights: str | Path | None) -> nn.Module:
    kwargs = {k: v for k, v in spec["kwargs"].items() if k not in ("name", "pretrained")}
    entry = get_spec(spec["name"])
    return entry.build(pretrained=pretrained or entry.default_pretrained, weights_path=weights, **kwargs)


def _validate_fn(dataset: Any, kind: str, num_classes: int, semantic_size: tuple[int, int] | None,
                 max_dets: int, names: Sequence[str] | None = None, flips: Sequence[str] = ()) -> Any:
    def validate(model: nn.Module) -> dict[str, float]:
        if dataset is None or len(dataset) == 0:
            return {}
        started = time.perf_counter()
        preds = predict_dataset(model, dataset, kind=kind, semantic_size=semantic_size, flips=flips)
        if kind == "semantic":
            m = semantic_metrics(dataset, preds, num_classes=num_classes, names=names)
            return {**semantic_val_metrics(m), "val_seconds": time.perf_counter() - started}
        m = coco_metrics(dataset, preds, masks=kind == "instance", max_dets=max_dets)
        main = m["segm"] if kind == "instance" else m["bbox"]
        return {split_key("val", MAP): main[MAP], split_key("val", MAP50): main[MAP50],
                "val_seconds": time.perf_counter() - started}

    return validate


def train_detection(
    project: Any,
    *,
    version: str,
    model: str | None = None,
    epochs: int | None = None,
    resume: str | None = None,
    weights: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    hparams: DetectionHParams | None = None,
    pretrained: str | None = None,
) -> Any:
    """Train a detector / instance or semantic segmenter on ``version``; returns a ``RunResult``.

    ``resume``: a run id to continue from its ``last.pt`` (same config). ``weights``: a local state dict to start
    from. ``pretrained``: ``coco`` / ``imagenet`` / ``none`` (default: the model's own default; the offline
    MobileNetV2 models start from ImageNet without network).
    """
    started = time.perf_counter()
    if resume:
        cfg = load_config(project, resume)
        hp = DetectionHParams(**{**cfg.hparams, "train_sizes": tuple(cfg.hparams.get("train_sizes", ()))})
        version, seed, run_id = cfg.version["name"], cfg.seed, cfg.run_id
    info, by_split = _version(project, version)
    kind = dataset_kind(info.task, [it.annotation for it in by_split["train"]])
    num_classes = len(info.ontology.active)
    classes = [{"id": c.id, "name": c.name} for c in info.ontology.active]
    if kind == "semantic":
        classes = [{"id": cid, "name": n} for cid, n in semantic_classes(info.ontology)[1]]
        num_classes = len(classes)
    if not resume:
        hp = hparams or DetectionHParams()
        if kind == "semantic":
            hp = semantic_hparams(hp)
        if epochs is not None:
            hp.epochs = int(epochs)
        name = model or DEFAULT_MODELS[kind]
        run_id = new_run_id(label=name)
    hp.vertical_flip = bool(hp.vertical_flip)
    if kind == "semantic":  # the objects of a class map are its connected regions
        fractions = semantic_object_fractions(by_split["train"], semantic_classes(info.ontology)[0])
        eval_size, train_sizes, size_reason = _auto_sizes(by_split["train"], hp, fractions=fractions,
                                                          min_object_px=SEMANTIC_MIN_OBJECT_PX)
    else:
        eval_size, train_sizes, size_reason = _auto_sizes(by_split["train"], hp,
                                                          names={c.id: c.name for c in info.ontology.active})
    epochs_reason = "the run being resumed" if resume else "set by the user"
    if not hp.epochs and kind == "semantic":
        hp.epochs, epochs_reason = semantic_epochs(len(by_split["train"]), hp.batch_size)
    elif not hp.epochs:
        hp.epochs, epochs_reason = auto_epochs(len(by_split["train"]))
    hp.eval_size, hp.train_sizes = eval_size, train_sizes
    semantic_size = (eval_size, eval_size) if kind == "semantic" else None
    intensity, intensity_reason = "fixed", ""
    if resume:
        intensity = cfg.preprocessing().intensity
    elif kind == "semantic":
        intensity, intensity_reason = ((hp.intensity, "set by the user") if hp.intensity != "auto"
                                       else semantic_intensity(by_split["train"], project.blobs.source))
    policy = AugmentPolicy.from_ontology(info.ontology, vflip=hp.vertical_flip)
    flips: tuple[str, ...] = ()
    if resume:
        flips = tuple(cfg.preprocessing().extra.get("tta_flips", ()))
    elif kind == "semantic":
        mirrored = not any(c.orientation_sensitive for c in info.ontology.active)
        flips = tuple(hp.tta_flips) if hp.tta_flips is not None else (("h", "v") if mirrored else ())
    max_dets = auto_max_dets([it.annotation for split in by_split.values() for it in split], hp.detections_per_img)
    hp.detections_per_img = max(hp.detections_per_img, max_dets)
    samples, proposals, roi_reason = auto_roi_budget([it.annotation for it in by_split["train"]], max_dets)
    if hp.roi_samples or hp.test_proposals:
        roi_reason = "set by the user"
    hp.roi_samples, hp.test_proposals = hp.roi_samples or samples, hp.test_proposals or proposals

    if resume:
        spec = cfg.model
        directory = run_dir(project, run_id)
    else:
        spec = _model_spec(name, kind, num_classes, hp, eval_size, train_sizes)
        directory = run_dir(project, run_id, create=True)
        config = RunConfig(
            run_id=run_id, task=info.task.value, version={"name": info.name, "hash": info.hash}, model=spec,
            classes=classes,
            preprocess=Preprocess(size=(eval_size, eval_size), resize="none" if kind != "semantic" else "stretch",
                                  mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), intensity=intensity,
                                  extra={"detector_normalises": kind != "semantic",
                                         **({"tta_flips": list(flips)} if flips else {})}).to_json(),
            strategy="full", strategy_reason="detectors and segmenters are fine-tuned end to end",
            augmentation=policy.to_json(), hparams={**asdict(hp), "train_sizes": list(train_sizes)}, seed=seed,
            weights={"pretrained": pretrained or "default", "path": str(weights) if weights else None},
            extra={"kind": kind, "max_dets": max_dets, "eval_size": eval_size, "train_sizes": list(train_sizes),
                   "eval_size_reason": size_reason, "epochs_reason": epochs_reason,
                   **({"roi_reason": roi_reason} if name.startswith(("fasterrcnn", "maskrcnn")) else {}),
                   **({"intensity_reason": intensity_reason} if intensity_reason else {})},
        )
        save_config(directory, config)

    torch.manual_seed(seed)
    net = _build(spec, pretrained=None if resume else pretrained, weights=None if resume else weights)
    data = _datasets(project, info, by_split, kind, policy, semantic_size, hp.crop_size, intensity)
    params = [p for p in net.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer = (
        torch.optim.AdamW(params, lr=hp.lr * hp.batch_size, weight_decay=hp.weight_decay) if hp.optimizer == "adamw"
        else torch.optim.SGD(params, lr=hp.lr * hp.batch_size, momentum=hp.momentum, weight_decay=hp.weight_decay))
    steps_per_epoch = -(-len(data["train"]) // hp.batch_size)
    total = max(1, steps_per_epoch * hp.epochs)
    sched = warmup_cosine(opt, warmup_steps=min(hp.warmup_steps, total // 4), total_steps=total)
    loader = EpochLoader(data["train"], batch_size=hp.batch_size, seed=seed, collate_fn=detection_collate,
                         drop_last=kind == "semantic")
    validate = _validate_fn(data.get("val"), kind, num_classes, semantic_size, max_dets,
                            names=[c["name"] for c in classes], flips=flips)
    monitor = split_key("val", main_metric(info.task, semantic=kind == "semantic"))
    loop = TrainLoop(
        model=net, optimizer=opt, scheduler=sched, loss_fn=semantic_loss if kind == "semantic" else _det_loss,
        data=loader, validate=validate if data.get("val") else None,
        config=LoopConfig(epochs=hp.epochs, seed=seed, monitor=monitor, mode="max", patience=hp.patience,
                          grad_clip=hp.grad_clip),
        hooks=default_hooks(directory, progress=progress, patience=hp.patience,
                            progress_file=project.settings.progress_file),
    )
    last = directory / "checkpoints" / "last.pt"
    if resume and not last.exists():
        raise VisionloopError(f"run {run_id} has no checkpoints/last.pt to resume from; start a new run")
    state = loop.run(resume_from=last if resume else None)
    history = state.history
    best = next((r for r in history if r.get("best")), history[-1] if history else {})
    best = max((r for r in history if monitor in r), key=lambda r: r[monitor], default=best)
    metrics = {"best_epoch": state.best_epoch, "epochs": state.epoch,
               **{k: v for k, v in best.items() if k.startswith("val_")},
               "wall_seconds": round(time.perf_counter() - started, 1)}
    write_result(directory, {"status": "done", "metrics": metrics, "kind": kind})
    return RunResult(run_id=run_id, run_dir=directory, metrics=metrics)
