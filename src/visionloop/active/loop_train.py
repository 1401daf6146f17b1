"""The challenger: trained on the new version with the champion's recipe (its run config: model, strategy, image
size, epochs and the other hyper-parameters, seed, pretrained weights), through the training API the CLI uses."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from visionloop.storage.runs import RunResult, load_config

__all__ = ["recipe", "train_challenger"]

_CLASSIFY_SKIP = {"model", "strategy", "epochs", "weights", "device", "num_workers"}
"""Options of a classification run that are passed another way (``model``, ``strategy``, ``epochs``, ``weights``) or
belong to the machine, not the recipe (``device``, ``num_workers``)."""


def recipe(project: Any, run_id: str) -> dict[str, Any]:
    """The arguments of :func:`visionloop.training.api.train` that repeat run ``run_id``'s recipe on another version:
    ``model``, ``epochs``, ``seed`` and ``strategy`` with the classification options, or a detector's image size
    (evaluation size), batch size, learning rate and pretrained weights (what ``visionloop train`` takes)."""
    cfg = load_config(project, run_id)
    hp = dict(cfg.hparams)
    if cfg.task in ("classification", "tagging"):
        from visionloop.training.classify import ClassifyParams

        known = {f.name for f in fields(ClassifyParams)}
        return {"model": hp.get("model") or cfg.model.get("name"), "strategy": hp.get("strategy") or cfg.strategy,
                "epochs": hp.get("epochs"), "seed": cfg.seed,
                "options": {k: v for k, v in hp.items() if k in known and k not in _CLASSIFY_SKIP}}
    options: dict[str, Any] = {}
    if hp.get("eval_size"):
        options["image_size"] = int(hp["eval_size"])
    if hp.get("batch_size"):
        options["batch_size"] = int(hp["batch_size"])
        if hp.get("lr"):
            options["lr"] = float(hp["lr"]) * int(hp["batch_size"])  # train() takes the step lr
    if (cfg.weights or {}).get("pretrained") == "none":
        options["pretrained"] = False
    return {"model": cfg.model.get("name"), "strategy": "auto", "epochs": hp.get("epochs"), "seed": cfg.seed,
            "options": options}


def train_challenger(project: Any, champion_run: str, *, version: str, epochs: int | None = None,
                     progress: bool = False) -> RunResult:
    """Train on ``version`` with the recipe of ``champion_run``; ``epochs`` overrides the recipe's (tests). The run
    records its own ``model.trained`` event (``train`` does)."""
    from visionloop.training.api import train

    r = recipe(project, champion_run)
    options = dict(r["options"])
    if project.task.value in ("classification", "tagging"):
        options["log"] = lambda _line: None
    return train(project, version=version, model=r["model"], strategy=r["strategy"],
                 epochs=epochs if epochs is not None else r["epochs"], seed=r["seed"], progress=progress, **options)
