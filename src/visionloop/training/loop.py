"""A small, task-agnostic training loop with hook objects, checkpoints and exact resume.

The loop knows nothing about classification or detection. It is driven by four things you pass in:

* ``model``: any ``torch.nn.Module``;
* ``loss_fn(model, batch) -> (loss, logs)``: computes the scalar loss of one batch (cross-entropy for a classifier,
  the summed loss dict of a torchvision detector, ...) and a dict of floats to log (may be empty);
* ``data``: an :class:`EpochData` that yields the batches of epoch ``e`` starting at batch ``start``. Its order must be
  a pure function of ``(seed, epoch)`` so that a resumed epoch sees the same batches (see
  :class:`visionloop.data.loader.EpochLoader`);
* ``validate(model) -> dict[str, float]`` (optional): metrics on the validation split, called after every epoch with
  the model in eval mode under ``torch.no_grad()``; ``config.monitor`` names the key used for best checkpoint and
  early stopping.

A detector plugs in like this::

    def loss_fn(model, batch):
        images, targets = batch
        losses = model(images, targets)            # torchvision detection models return a dict in train mode
        return sum(losses.values()), {k: float(v) for k, v in losses.items()}

    loop = TrainLoop(model=det, optimizer=opt, scheduler=warmup_cosine(opt, warmup_steps=100, total_steps=n),
                     loss_fn=loss_fn, data=EpochLoader(ds, batch_size=4, seed=seed, collate_fn=list_collate),
                     validate=lambda m: {"val_map": my_map(m)}, config=LoopConfig(epochs=20, seed=seed,
                     monitor="val_map", mode="max", patience=5), hooks=default_hooks(run_dir, progress=True))
    state = loop.run(resume_from=run_dir / "checkpoints" / "last.pt" if resuming else None)

Reproducibility and resume
--------------------------
At the start of epoch ``e`` every RNG (torch, numpy, python ``random``) is re-seeded from ``(seed, e)``. A checkpoint
holds the model, optimizer, scheduler, the :class:`LoopState` (epochs done, batches done in the current epoch, best
metric, history), every hook's ``state_dict()`` and the RNG states at the moment it was written, all as tensors,
numbers, strings, lists and dicts: checkpoints are read with ``weights_only=True``, never unpickled. ``run(resume_from=...)``
restores all of it and skips the batches already done, so a run killed with ``kill -9`` and resumed reaches the same
weights as an uninterrupted run with the same seed (on the same machine and thread count; CPU kernels are
deterministic, CUDA ones only with ``torch.use_deterministic_algorithms``). Checkpoints are written atomically
(temporary file + rename), so a kill while writing leaves the previous checkpoint intact.

Hooks (:class:`Hook`) see the loop at ``before_train``, ``before_epoch``, ``after_step``, ``after_epoch`` and
``after_train``; :func:`default_hooks` gives the usual set: checkpoint every epoch (``last.pt`` + ``best.pt``), metrics
to ``metrics.jsonl``, early stopping, a progress bar.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from visionloop.core.errors import VisionloopError
from visionloop.core.progress import ProgressFile
from visionloop.data.loader import derive_seed
from visionloop.models.weights import safe_torch_load
from visionloop.training.threads import ThreadGovernor, governor_from_env

__all__ = [
    "AdaptiveThreads",
    "CheckpointHook",
    "EarlyStopping",
    "EpochData",
    "Hook",
    "LoopConfig",
    "LoopState",
    "LossFn",
    "MetricsLogger",
    "ProgressBar",
    "ProgressFileHook",
    "TrainLoop",
    "ValidateFn",
    "atomic_save",
    "default_hooks",
    "derive_seed",
    "seed_everything",
    "warmup_cosine",
]

Batch = Any
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]
"""``loss_fn(model, batch) -> (scalar loss tensor with grad, {name: float} to log)``."""
ValidateFn = Callable[[nn.Module], dict[str, float]]
"""``validate(model) -> {metric: value}``; the model is in eval mode and grads are off."""


class EpochData(Protocol):
    """Batches of one epoch, in an order that depends only on ``(seed, epoch)``."""

    def num_batches(self, epoch: int) -> int: ...

    def batches(self, epoch: int, *, start: int = 0) -> Iterable[Batch]:
        """Batches ``start, start+1, ...`` of ``epoch`` (earlier ones are skipped without being loaded)."""
        ...


class CheckpointError(VisionloopError):
    """A checkpoint cannot be read or does not fit the model."""


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    """Every RNG state as tensors, numbers and lists (what ``torch.load(weights_only=True)`` reads back)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_factor: float = 0.01,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from ~0 to each group's lr over ``warmup_steps``, then cosine decay to ``min_factor`` x lr.

    Step it once per optimizer step (the loop does).
    """
    total_steps = max(1, total_steps)
    warmup_steps = max(0, min(warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(kw_only=True)
class LoopConfig:
    """How long and how to train.

    ``monitor``: key of ``validate``'s dict (or ``"train_loss"``) that decides the best checkpoint and early stopping;
    ``mode``: whether bigger (``"max"``) or smaller (``"min"``) is better. ``patience``: stop after this many epochs
    without improvement (None: never stop early). ``checkpoint_every``: also write ``last.pt`` every N optimizer steps
    inside an epoch (0: only at epoch ends). ``grad_clip``: max gradient norm (None: no clipping).
    """

    epochs: int
    seed: int = 0
    monitor: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int | None = None
    min_delta: float = 0.0
    grad_clip: float | None = None
    checkpoint_every: int = 0
    device: str = "cpu"


@dataclass
class LoopState:
    """Where the loop is. ``epoch``: epochs fully done; ``step_in_epoch``: batches done in epoch ``epoch`` (0 at an
    epoch boundary); ``history``: one record per finished epoch (what ``metrics.jsonl`` holds)."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0


class Hook:
    """Override what you need; ``loop`` is the running :class:`TrainLoop` (read ``loop.state``, ``loop.model``...).

    A hook with state that must survive a resume returns it from ``state_dict`` and takes it back in
    ``load_state_dict``; both are stored in every checkpoint under the hook's class name.
    """

    def before_train(self, loop: TrainLoop) -> None: ...

    def before_epoch(self, loop: TrainLoop) -> None: ...

    def after_step(self, loop: TrainLoop, loss: float, logs: dict[str, float]) -> None: ...

    def after_epoch(self, loop: TrainLoop, record: dict[str, Any]) -> None: ...

    def after_train(self, loop: TrainLoop) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TrainLoop:
    """Run epochs of ``loss_fn`` over ``data`` with ``optimizer``; validate, call hooks, checkpoint, resume.

    ``train_mode(model)`` puts the model in training mode (default ``model.train()``); pass your own to keep, e.g.,
    a frozen backbone's batch-norm statistics fixed. ``scheduler`` is stepped after every optimizer step.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        data: EpochData,
        config: LoopConfig,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        validate: ValidateFn | None = None,
        hooks: Sequence[Hook] = (),
        train_mode: Callable[[nn.Module], None] | None = None,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.loss_fn, self.data, self.validate_fn, self.config = loss_fn, data, validate, config
        self.hooks = list(hooks)
        self.train_mode = train_mode or (lambda m: m.train())
        self.state = LoopState()
        self.should_stop = False

    # ---- checkpoints ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: model, optimizer, scheduler, loop state, hooks, RNG states."""
        return {
            "format": "visionloop-checkpoint/1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "loop": asdict(self.state),
            "hooks": {type(h).__name__: h.state_dict() for h in self.hooks},
            "rng": _rng_state(),
            "config": asdict(self.config),
        }

    def save_checkpoint(self, path: Path) -> None:
        atomic_save(self.state_dict(), path)

    def load_checkpoint(self, path: Path) -> None:
        """Restore a checkpoint written by :meth:`save_checkpoint` (before :meth:`run`, or via ``resume_from``)."""
        try:
            ckpt = safe_torch_load(path, what="training checkpoint", map_location=self.config.device)
        except (OSError, RuntimeError, EOFError) as e:
            raise CheckpointError(f"cannot read checkpoint {path}: {e}; the run directory may be damaged, "
                                  "start a new run instead of resuming") from e
        if not isinstance(ckpt, dict) or ckpt.get("format") != "visionloop-checkpoint/1":
            raise CheckpointError(f"{path} is not a visionloop training checkpoint")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state = LoopState(**ckpt["loop"])
        for h in self.hooks:
            h.load_state_dict(ckpt["hooks"].get(type(h).__name__, {}))
        self._resume_rng = ckpt["rng"]

    # ---- running -------------------------------------------------------------------------------------------------
    def _improved(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.state.best is None:
            return True
        d = self.config.min_delta
        return value > self.state.best + d if self.config.mode == "max" else value < self.state.best - d

    def _train_batches(self, epoch: int, start: int) -> None:
        cfg = self.config
        for batch in self.data.batches(epoch, start=start):
            loss, logs = self.loss_fn(self.model, batch)
            if not torch.isfinite(loss):
                raise VisionloopError(
                    f"training diverged: loss is {float(loss)} at epoch {epoch + 1}, step {self.state.global_step}; "
                    "lower the learning rate or check the labels"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            value = float(loss.detach())
            self.state.step_in_epoch += 1
            self.state.global_step += 1
            self.state.epoch_loss_sum += value
            self.state.epoch_loss_count += 1
            for h in self.hooks:
                h.after_step(self, value, logs)
            if cfg.checkpoint_every and self.state.global_step % cfg.checkpoint_every == 0:
                for h in self.hooks:
                    if isinstance(h, CheckpointHook):
                        h.save_last(self)
            if self.should_stop:
                return

    def run(self, *, resume_from: Path | None = None) -> LoopState:
        """Train until ``config.epochs`` are done or early stopping; returns the final :class:`LoopState`."""
        cfg = self.config
        self._resume_rng: dict[str, Any] | None = None
        if resume_from is not None:
            self.load_checkpoint(Path(resume_from))
        for h in self.hooks:
            h.before_train(self)
        while self.state.epoch < cfg.epochs and not self.state.stopped_early and not self.should_stop:
            epoch = self.state.epoch
            if self.state.step_in_epoch and self._resume_rng is not None:
                _set_rng_state(self._resume_rng)  # mid-epoch resume: continue the RNG streams where they were
            else:
                self.state.step_in_epoch = 0
                self.state.epoch_loss_sum, self.state.epoch_loss_count = 0.0, 0
                seed_everything(derive_seed(cfg.seed, epoch))
            self._resume_rng = None
            for h in self.hooks:
                h.before_epoch(self)
            started = time.perf_counter()
            self.train_mode(self.model)
            self._train_batches(epoch, self.state.step_in_epoch)
            if self.should_stop and self.state.step_in_epoch < self.data.num_batches(epoch):
                break
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": self.state.global_step,
                "train_loss": self.state.epoch_loss_sum / max(1, self.state.epoch_loss_count),
                "lr": float(self.optimizer.param_groups[-1]["lr"]),
            }
            if self.validate_fn is not None:
                self.model.eval()
                with torch.no_grad():
                    record.update({k: float(v) for k, v in self.validate_fn(self.model).items()})
            record["epoch_seconds"] = round(time.perf_counter() - started, 3)
            value = record.get(cfg.monitor)
            if self._improved(value):
                self.state.best, self.state.best_epoch, self.state.bad_epochs = float(value), epoch + 1, 0  # type: ignore[arg-type]
            else:
                self.state.bad_epochs += 1
            record["best"] = self.state.best_epoch == epoch + 1
            self.state.history.append(record)
            self.state.epoch += 1
            self.state.step_in_epoch = 0
            for h in self.hooks:
                h.after_epoch(self, record)
        for h in self.hooks:
            h.after_train(self)
        return self.state


# ---- hooks ---------------------------------------------------------------------------------------------------------


class CheckpointHook(Hook):
    """Writes ``<dir>/last.pt`` (full state, for resume) after every epoch and ``<dir>/best.pt`` (model weights and
    the epoch's record) whenever the monitored metric improves. Mid-epoch ``last.pt`` when
    ``LoopConfig.checkpoint_every`` is set."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def last(self) -> Path:
        return self.directory / "last.pt"

    @property
    def best(self) -> Path:
        return self.directory / "best.pt"

    def save_last(self, loop: TrainLoop) -> None:
        loop.save_checkpoint(self.last)

    def after_epoch(self, loop: TrainLoop, record: dict[str, Any]) -> None:
        if record.get("best") or not self.best.exists():
            atomic_save({"format": "visionloop-weights/1", "model": loop.model.state_dict(), "record": record},
                        self.best)
        self.save_last(loop)


class MetricsLogger(Hook):
    """Appends one JSON line per epoch to ``path`` (``metrics.jsonl``); on resume it rewrites the file from the
    checkpoint's history, dropping lines of epochs that the kill undid."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def before_train(self, loop: TrainLoop) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(r) + "\n" for r in loop.state.history]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, self.path)

    def after_epoch(self, loop: TrainLoop, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


class EarlyStopping(Hook):
    """Stops when ``LoopConfig.monitor`` has not improved for ``patience`` epochs (the loop counts them)."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience

    def after_epoch(self, loop: TrainLoop, record: dict[str, Any]) -> None:
        if self.patience is not None and loop.state.bad_epochs >= self.patience:
            loop.state.stopped_early = True
            record["stopped_early"] = True


class ProgressBar(Hook):
    """A tqdm bar per epoch with the running loss; a one-line summary after each epoch. Writes to stderr."""

    def __init__(self, *, enabled: bool = True, describe: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.enabled = enabled
        self.describe = describe
        self._bar: Any = None

    def before_epoch(self, loop: TrainLoop) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        n = loop.data.num_batches(loop.state.epoch)
        self._bar = tqdm(total=n, initial=loop.state.step_in_epoch, leave=False, dynamic_ncols=True,
                         desc=f"epoch {loop.state.epoch + 1}/{loop.config.epochs}")

    def after_step(self, loop: TrainLoop, loss: float, logs: dict[str, float]) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.4f}")

    def after_epoch(self, loop: TrainLoop, record: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.enabled:
            from tqdm.auto import tqdm

            text = self.describe(record) if self.describe else " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
            tqdm.write(f"epoch {record['epoch']}: {text}")


class ProgressFileHook(Hook):
    """Progress as JSON lines for a supervising process (:mod:`visionloop.core.progress`): the run id at the start,
    the fraction done after steps (throttled), each epoch's record (train loss, validation metrics) at its end."""

    def __init__(self, out: ProgressFile, *, run_id: str) -> None:
        self.out, self.run_id = out, run_id

    def _fraction(self, loop: TrainLoop) -> float:
        epochs = max(1, loop.config.epochs)
        n = max(1, loop.data.num_batches(loop.state.epoch)) if loop.state.epoch < epochs else 1
        return (loop.state.epoch + min(1.0, loop.state.step_in_epoch / n)) / epochs

    def before_train(self, loop: TrainLoop) -> None:
        self.out.write(fraction=self._fraction(loop), message=f"training run {self.run_id}", run=self.run_id,
                       epoch=loop.state.epoch, epochs=loop.config.epochs, force=True)

    def after_step(self, loop: TrainLoop, loss: float, logs: dict[str, float]) -> None:
        n = loop.data.num_batches(loop.state.epoch)
        self.out.write(fraction=self._fraction(loop), run=self.run_id,
                       message=f"epoch {loop.state.epoch + 1}/{loop.config.epochs}, step "
                               f"{loop.state.step_in_epoch}/{n}, loss {loss:.4f}")

    def after_epoch(self, loop: TrainLoop, record: dict[str, Any]) -> None:
        self.out.write(fraction=self._fraction(loop), message=f"epoch {record['epoch']}/{loop.config.epochs} done",
                       run=self.run_id, epoch=loop.state.epoch, record=record, force=True)


class AdaptiveThreads(Hook):
    """Torch's thread count follows the cores other processes leave free (:class:`~visionloop.training.threads.
    ThreadGovernor`), checked after each step."""

    def __init__(self, governor: ThreadGovernor) -> None:
        self.governor = governor

    def before_train(self, loop: TrainLoop) -> None:
        self.governor.start()

    def after_step(self, loop: TrainLoop, loss: float, logs: dict[str, float]) -> None:
        self.governor.poll()


def default_hooks(run_dir: Path, *, progress: bool = True, patience: int | None = None,
                  progress_file: str | Path | None = None) -> list[Hook]:
    """Checkpoints under ``run_dir/checkpoints``, ``run_dir/metrics.jsonl``, early stopping, a progress bar, and the
    JSON-lines progress of :class:`ProgressFileHook` when ``progress_file`` is given (the ``progress_file``
    setting), and :class:`AdaptiveThreads` when the platform's job runner asks for it
    (:data:`~visionloop.training.threads.ENV_VARIABLE`)."""
    run_dir = Path(run_dir)
    hooks: list[Hook] = [EarlyStopping(patience), CheckpointHook(run_dir / "checkpoints"),
                         MetricsLogger(run_dir / "metrics.jsonl"), ProgressBar(enabled=progress)]
    if progress_file:
        hooks.append(ProgressFileHook(ProgressFile(progress_file), run_id=run_dir.name))
    governor = governor_from_env()
    if governor is not None:
        hooks.append(AdaptiveThreads(governor))
    return hooks
