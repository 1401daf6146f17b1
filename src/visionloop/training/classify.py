"""Training classifiers (one label per image) and taggers (a set of labels per image) on a dataset version.

:func:`train_classifier` resolves everything (model, weights, preprocessing, augmentation policy, strategy, image size,
class balancing), writes it to the run's ``config.json`` before the first step, then trains with the chosen strategy:

* ``finetune``: every weight trains; AdamW, head lr = ``lr``, backbone lr = ``lr * backbone_lr_factor``, linear warm-up
  then cosine decay, label smoothing (classification), early stopping on the validation metric;
* ``frozen``: the pretrained backbone is fixed (batch-norm statistics too), only the head trains, same schedule;
* ``linear``: cached deep features + logistic regression (see :mod:`visionloop.training.strategies`).

Classification monitors validation balanced accuracy; tagging monitors validation mAP and then picks per-class
thresholds on the validation split (best F1, or a target precision/recall).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionloop.core.errors import ConflictError
from visionloop.core.preprocess import Preprocess
from visionloop.core.progress import progress_file
from visionloop.data.augment import AugmentPolicy, eval_transform, train_transform
from visionloop.data.cache import ImageCache
from visionloop.data.datasets import ImageDataset, LabelledItems, class_list, labelled_items
from visionloop.data.loader import EpochLoader, SeededDataset, derive_seed
from visionloop.data.sampler import ClassBalancedOrder, imbalance_ratio
from visionloop.evaluation.classification import classification_metrics, tagging_metrics
from visionloop.evaluation.keys import main_metric, split_key
from visionloop.evaluation.thresholds import choose_thresholds
from visionloop.models.classifier import DEFAULT_MODEL, Classifier, create_classifier
from visionloop.models.predict import predict_arrays
from visionloop.models.runs import build_from_config
from visionloop.models.weights import safe_torch_load
from visionloop.storage.runs import (
    RunConfig,
    RunResult,
    load_config,
    new_run_id,
    resolve_run,
    run_dir,
    save_config,
    write_result,
)
from visionloop.storage.versions import get_version, version_items
from visionloop.training.loop import (
    LoopConfig,
    ProgressBar,
    TrainLoop,
    atomic_save,
    default_hooks,
    seed_everything,
    warmup_cosine,
)
from visionloop.training.strategies import (
    FeatureStore,
    choose_strategy,
    extract_features,
    feature_cache_key,
    fit_linear_head,
)

__all__ = ["ClassifyParams", "train_classifier"]


@dataclass(kw_only=True)
class ClassifyParams:
    """Hyper-parameters (saved in ``config.json`` as ``hparams``). None means "choose for me" (the choice is saved)."""

    model: str = DEFAULT_MODEL
    library: str | None = None
    strategy: str = "auto"
    epochs: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    backbone_lr_factor: float = 0.3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_fraction: float = 0.1
    image_size: int | None = None
    patience: int | None = 4
    balance: str = "auto"
    threshold_mode: str = "f1"
    threshold_target: float | None = None
    pretrained: bool = True
    weights: str | None = None
    linear_views: int = 1
    num_workers: int = 0
    time_budget_s: float = 600.0
    device: str | None = None


def _device(params: ClassifyParams) -> str:
    return params.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _auto_image_size(data: LabelledItems, records: dict[str, Any], device: str) -> tuple[int, str]:
    sides = [min(records[s].width, records[s].height) for s in data.shas]
    med = float(np.median(sides)) if sides else 224.0
    if device.startswith("cuda"):
        return 224, "224 px (GPU)"
    size = int(min(224, max(128, math.ceil(med / 32) * 32)))
    return size, f"{size} px: median shorter side of the training images is {med:.0f} px (CPU: no upsampling past that)"


def _summary(task: str, y: np.ndarray, probs: np.ndarray, names: list[str], thresholds: list[float] | None = None,
             ) -> dict[str, float]:
    if task == "classification":
        m = classification_metrics(y, probs, names)
        return {"accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"], "macro_f1": m["macro_f1"]}
    m = tagging_metrics(y, probs, names, thresholds=thresholds)
    return {"mAP": m["mAP"], "micro_f1": m["micro_f1"], "accuracy": m["accuracy"]}


def _monitor(task: str) -> str:
    return split_key("val", main_metric(task))


def _measure_step(model: nn.Module, size: int, device: str) -> float:
    """Seconds of one forward+backward per image at ``size`` (8 images, after one warm-up)."""
    model.train()
    x = torch.randn(8, 3, size, size, device=device)
    model(x[:2]).sum().backward()
    t = time.perf_counter()
    model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return (time.perf_counter() - t) / 8


def train_classifier(
    project: Any, *, version: str | None, params: ClassifyParams | None = None, resume: str | None = None,
    seed: int = 0, progress: bool = True, log: Any = print,
) -> RunResult:
    """Train a classification or tagging model on ``version`` of ``project``; see the module docstring.

    ``resume``: a run id whose training was interrupted; everything is read back from its config and last checkpoint.
    ``log(str)`` receives the human-readable decisions (strategy and why, weights source, image size).
    """
    task = project.task.value
    if resume is not None:
        rid = resolve_run(project, resume)
        cfg = load_config(project, rid)
        params = ClassifyParams(**cfg.hparams)
        version, seed = cfg.version["name"], cfg.seed
    else:
        params = params or ClassifyParams()
        cfg = None
    if version is None:
        raise ConflictError("name the dataset version to train on (--version V); list them with visionloop version list")
    info = get_version(project, version)
    if info.task.value != task:
        raise ConflictError(f"version {version} is a {info.task.value} version but the project task is {task}")
    classes = class_list(info.ontology)
    if len(classes) < (2 if task == "classification" else 1):
        raise ConflictError(f"version {version} has {len(classes)} active classes; classification needs at least 2")
    class_ids = [c["id"] for c in classes]
    names = [c["name"] for c in classes]
    by_split: dict[str, list[Any]] = defaultdict(list)
    for it in version_items(project, version):
        by_split[it.split].append(it)
    records = {it.image.sha256: it.image for its in by_split.values() for it in its}
    data = {s: labelled_items(by_split.get(s, []), task=task, class_ids=class_ids) for s in ("train", "val", "test")}
    if len(data["train"]) == 0 or len(data["val"]) == 0:
        raise ConflictError(
            f"version {version} has {len(data['train'])} labelled training and {len(data['val'])} validation images; "
            "training needs both: create a version with a validation split (visionloop version create --val 0.15, "
            "or --splits source on a source that has a val subset)"
        )
    device = _device(params)

    # ---- model, weights, preprocessing ----------------------------------------------------------------------------
    if cfg is not None:
        last = run_dir(project, cfg.run_id) / "checkpoints" / "last.pt"
        if last.exists() and cfg.strategy != "linear":
            model = build_from_config(cfg.model)  # every weight comes from the checkpoint
        else:  # killed before the first checkpoint, or linear: start again from the same pretrained weights
            seed_everything(seed)
            model = create_classifier(params.model, num_classes=len(classes), library=cfg.model["kwargs"]["library"],
                                      pretrained=params.pretrained, weights=params.weights)[0]
        spec, weights_info = cfg.model, cfg.weights
        preprocess = Preprocess.from_json(cfg.preprocess)
        policy = AugmentPolicy.from_json(cfg.augmentation)
        strategy, reason = cfg.strategy, cfg.strategy_reason
        rid, directory = cfg.run_id, run_dir(project, cfg.run_id)
        epochs = int(params.epochs or 1)
    else:
        seed_everything(seed)  # the new head's (and a random backbone's) initial weights follow the seed
        model, winfo, spec = create_classifier(
            params.model, num_classes=len(classes), library=params.library, pretrained=params.pretrained,
            weights=params.weights)
        weights_info = winfo.to_json()
        for line in winfo.log:
            log(f"weights: {line}")
        if params.image_size is None:
            size, size_reason = _auto_image_size(data["train"], records, device)
            params.image_size = size
            log(f"image size: {size_reason}")
        preprocess = Preprocess(size=(params.image_size, params.image_size), resize="stretch", mean=winfo.mean,
                                std=winfo.std, interpolation=winfo.interpolation)
        policy = AugmentPolicy.from_ontology(info.ontology)
        step_s = None
        if params.strategy == "auto" and not device.startswith("cuda"):
            step_s = _measure_step(model, params.image_size, device)
        epochs_guess = params.epochs or 10
        choice = choose_strategy(params.strategy, n_train=len(data["train"]), epochs=epochs_guess, device=device,
                                 step_seconds_per_image=step_s, budget_seconds=params.time_budget_s)
        strategy, reason = choice.strategy, choice.reason
        params.strategy = strategy
        log(f"strategy: {strategy} ({reason})")
        epochs = params.epochs = 1 if strategy == "linear" else (params.epochs or 10)
        rid = new_run_id(label=f"{strategy}-{params.model}")
        directory = run_dir(project, rid, create=True)
        cfg = RunConfig(
            run_id=rid, task=task, version={"name": info.name, "hash": info.hash}, model=spec, classes=classes,
            preprocess=preprocess.to_json(), strategy=strategy, strategy_reason=reason,
            augmentation=policy.to_json(), hparams=asdict(params), seed=seed, weights=weights_info,
            extra={"n_images": {s: len(d) for s, d in data.items()}, "skipped": {s: d.skipped for s, d in data.items()},
                   "device": device},
        )
        save_config(directory, cfg)
    model.to(device)
    assert isinstance(model, Classifier)
    stream = progress_file(project.settings.progress_file)
    if stream is not None:  # the run id at once, also for the linear strategy, which runs no epochs
        stream.write(fraction=0.0, message=f"training run {rid} ({strategy})", run=rid, force=True)

    cache = ImageCache(project.blobs, preprocess=preprocess)
    etf = eval_transform(preprocess)
    val_ds = ImageDataset(data["val"], cache=cache, transform=etf, kind="eval")
    started = time.perf_counter()

    if strategy == "linear":
        probs, y = _train_linear(project, model, cfg, data, cache, val_ds, params, names, task, device, progress, seed)
    else:
        _train_loop(model, cfg, data, cache, val_ds, params, policy, preprocess, names, task, device, progress, seed,
                    strategy, epochs, directory, resume is not None, log,
                    progress_file=project.settings.progress_file)
        best = safe_torch_load(directory / "checkpoints" / "best.pt", what="run checkpoint", map_location=device)
        model.load_state_dict(best["model"])
        probs, y = predict_arrays(model, val_ds, task=task, device=device)

    # ---- thresholds, final validation numbers ------------------------------------------------------------------------
    if task == "tagging":
        cfg.thresholds = choose_thresholds(y, probs, mode=params.threshold_mode, targets=params.threshold_target)
        save_config(directory, cfg)
    val = _summary(task, y, probs, names, cfg.thresholds)
    result = {"run": rid, "status": "done", "strategy": strategy, "strategy_reason": reason,
              "train_seconds": round(time.perf_counter() - started, 2), "val": val, "thresholds": cfg.thresholds,
              "cache": {"images": len(cache._data), "bytes": cache.nbytes, "hits": cache.hits, "misses": cache.misses}}
    write_result(directory, result)
    return RunResult(run_id=rid, run_dir=directory, metrics=result)


def _train_linear(project: Any, model: Classifier, cfg: RunConfig, data: dict[str, LabelledItems], cache: ImageCache,
                  val_ds: ImageDataset, params: ClassifyParams, names: list[str], task: str, device: str,
                  progress: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    preprocess = Preprocess.from_json(cfg.preprocess)
    key = feature_cache_key(cfg.model, cfg.weights, cfg.preprocess)
    store = FeatureStore(Path(project.root) / "cache" / "features" / f"{key}.pt")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="features", total=0, leave=False, dynamic_ncols=True)

    def tick(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    t0 = time.perf_counter()
    train_ds = ImageDataset(data["train"], cache=cache, transform=eval_transform(preprocess), kind="eval")
    xs = [extract_features(model.backbone, train_ds, [f"{s}:eval" for s in data["train"].shas], store=store,
                           device=device, progress=tick)]
    ys = [data["train"].targets]
    if params.linear_views > 1:
        policy = AugmentPolicy.from_json(cfg.augmentation)
        aug = SeededDataset(ImageDataset(data["train"], cache=cache, transform=train_transform(policy, preprocess),
                                         kind="train"))
        for v in range(1, params.linear_views):
            view = _Keyed(aug, [derive_seed(seed, 1000 + v, i) for i in range(len(data["train"]))])
            xs.append(extract_features(model.backbone, view, [f"{s}:aug{seed}-{v}" for s in data["train"].shas],
                                       store=store, device=device, progress=tick))
            ys.append(data["train"].targets)
    xv = extract_features(model.backbone, val_ds, [f"{s}:eval" for s in data["val"].shas], store=store,
                          device=device, progress=tick)
    store.save()
    if bar is not None:
        bar.close()
    feat_s = time.perf_counter() - t0

    def score(y: np.ndarray, p: np.ndarray) -> float:
        return _summary(task, y, p, names)["balanced_accuracy" if task == "classification" else "mAP"]

    t1 = time.perf_counter()
    w, b, fit_log = fit_linear_head(np.concatenate(xs), np.concatenate(ys), xv, data["val"].targets, task=task,
                                    score=score, balanced=params.balance != "off", seed=seed)
    head = model.head if isinstance(model.head, nn.Linear) else model.head[-1]  # type: ignore[index]
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w))
        head.bias.copy_(torch.from_numpy(b))
    logits = torch.from_numpy(xv @ w.T + b)
    probs = (logits.softmax(1) if task == "classification" else logits.sigmoid()).numpy()
    y = data["val"].targets
    val = {f"val_{k}": v for k, v in _summary(task, y, probs, names).items()}
    record = {"epoch": 1, "step": 1, "strategy": "linear", "feature_seconds": round(feat_s, 2),
              "fit_seconds": round(time.perf_counter() - t1, 2), "C": fit_log["C"], "grid": fit_log["grid"], **val,
              "best": True}
    directory = run_dir(project, cfg.run_id)
    atomic_save({"format": "visionloop-weights/1", "model": model.state_dict(), "record": record},
                directory / "checkpoints" / "best.pt")
    (directory / "metrics.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return probs, y


class _Keyed(torch.utils.data.Dataset):
    """``ds[i]`` -> the seeded dataset at ``(i, seeds[i])`` (one fixed augmented view per image)."""

    def __init__(self, seeded: Any, seeds: list[int]) -> None:
        self.seeded, self.seeds = seeded, seeds

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> Any:
        return self.seeded[(i, self.seeds[i])]


def _train_loop(model: Classifier, cfg: RunConfig, data: dict[str, LabelledItems], cache: ImageCache,
                val_ds: ImageDataset, params: ClassifyParams, policy: AugmentPolicy, preprocess: Preprocess,
                names: list[str], task: str, device: str, progress: bool, seed: int, strategy: str, epochs: int,
                directory: Path, resuming: bool, log: Any, *, progress_file: str | None = None) -> None:
    train_ds = ImageDataset(data["train"], cache=cache, transform=train_transform(policy, preprocess), kind="train")
    targets = data["train"].targets
    ratio = imbalance_ratio(targets, len(names))
    order = None
    if params.balance == "on" or (params.balance == "auto" and ratio > 3):
        order = ClassBalancedOrder(targets, num_classes=len(names), seed=seed)
        if not resuming:
            log(f"sampling: class-balanced (largest/smallest class = {ratio:.1f})")
    loader = EpochLoader(train_ds, batch_size=params.batch_size, seed=seed, order=order, drop_last=True,
                         num_workers=params.num_workers)
    frozen = strategy == "frozen"
    for p in model.backbone.parameters():
        p.requires_grad_(not frozen)
    groups = [{"params": list(model.head.parameters()), "lr": params.lr}]
    if not frozen:
        groups.append({"params": list(model.backbone.parameters()), "lr": params.lr * params.backbone_lr_factor})
    optimizer = torch.optim.AdamW(groups, weight_decay=params.weight_decay)
    total = epochs * loader.num_batches(0)
    scheduler = warmup_cosine(optimizer, warmup_steps=int(params.warmup_fraction * total), total_steps=total)
    if task == "classification":
        crit: nn.Module = nn.CrossEntropyLoss(label_smoothing=params.label_smoothing)
    else:
        crit = nn.BCEWithLogitsLoss()

    def loss_fn(m: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch
        return crit(m(x.to(device)), y.to(device)), {}

    def validate(m: nn.Module) -> dict[str, float]:
        probs, y = predict_arrays(m, val_ds, task=task, device=device)
        pt, yt = torch.from_numpy(probs), torch.from_numpy(y)
        if task == "classification":
            loss = float(nn.functional.nll_loss(pt.clamp_min(1e-8).log(), yt.long()))
        else:
            loss = float(nn.functional.binary_cross_entropy(pt.clamp(1e-6, 1 - 1e-6), yt.float()))
        return {"val_loss": loss, **{f"val_{k}": v for k, v in _summary(task, y, probs, names).items()}}

    def train_mode(m: nn.Module) -> None:
        m.train()
        if frozen:
            m.backbone.eval()  # type: ignore[union-attr]

    hooks = default_hooks(directory, progress=progress, patience=params.patience, progress_file=progress_file)
    for h in hooks:
        if isinstance(h, ProgressBar):
            key = _monitor(task)
            h.describe = lambda r, key=key: (f"train_loss={r['train_loss']:.4f} val_loss={r.get('val_loss', 0):.4f} "
                                              f"{key}={r.get(key, 0):.4f} ({r['epoch_seconds']:.0f} s)")
    loop = TrainLoop(model=model, optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn, data=loader,
                     validate=validate, hooks=hooks, train_mode=train_mode,
                     config=LoopConfig(epochs=epochs, seed=seed, monitor=_monitor(task), mode="max",
                                       patience=params.patience, device=device))
    last = directory / "checkpoints" / "last.pt"
    loop.run(resume_from=last if resuming and last.exists() else None)
