"""Commands ``train``, ``evaluate``, ``predict`` (every task; detection/segmentation runs are delegated), ``models``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.output import emit, err_console, handle_errors

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
ProjectArg = Annotated[Path, typer.Argument(help="project directory")]


def _open(path: Path):  # noqa: ANN202
    from visionloop.storage import Project

    return Project.open(path)


@handle_errors
def train(
    project: ProjectArg,
    version: Annotated[str | None, typer.Option("--version", help="dataset version to train on")] = None,
    model: Annotated[str | None, typer.Option(help="model name (timm or torchvision); default per task")] = None,
    strategy: Annotated[str, typer.Option(help="auto | finetune | frozen | linear (classification, tagging)")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="training epochs (default: chosen per strategy)")] = None,
    resume: Annotated[str | None, typer.Option(help="continue the interrupted run RUN")] = None,
    weights: Annotated[Path | None, typer.Option(help="pretrained weights file to start from")] = None,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same result)")] = 0,
    image_size: Annotated[int | None, typer.Option(help="input size in pixels; detection/segmentation: the shorter side (default: from the data)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="batch size")] = None,
    lr: Annotated[float | None, typer.Option(help="learning rate: of the head for classifiers (backbone x0.3); the SGD step lr for detectors")] = None,
    threshold_mode: Annotated[str | None, typer.Option(help="tagging thresholds: f1 | precision | recall")] = None,
    threshold_target: Annotated[float | None, typer.Option(help="target precision/recall for the thresholds")] = None,
    no_pretrained: Annotated[bool, typer.Option("--no-pretrained", help="random initialisation")] = False,
    author: Annotated[str | None, typer.Option(help="who trains (named in the model.trained event)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a model on a dataset version; prints the run id (use it with evaluate, predict, export)."""
    from visionloop.training.api import train as train_fn

    if version is None and resume is None:
        raise typer.BadParameter("give --version V (or --resume RUN)", param_hint="--version")
    options = {k: v for k, v in {"image_size": image_size, "batch_size": batch_size, "lr": lr,
                                 "threshold_mode": threshold_mode, "threshold_target": threshold_target}.items()
               if v is not None}
    if no_pretrained:
        options["pretrained"] = False
    with _open(project) as p:
        if p.task.value in ("classification", "tagging"):
            options["log"] = lambda s: err_console.print(f"[dim]{s}[/dim]")
        # progress goes to stderr: shown with --json too when a person watches the terminal
        result = train_fn(p, version=version, model=model, strategy=strategy, epochs=epochs, resume=resume,
                          weights=str(weights) if weights else None, seed=seed,
                          progress=not as_json or sys.stderr.isatty(), author=author, **options)
    emit({"run": result.run_id, "run_dir": str(result.run_dir), **result.metrics}, as_json=as_json, title="trained")


@handle_errors
def evaluate(
    project: ProjectArg,
    run: Annotated[str, typer.Option("--run", help="run id (or 'latest')")],
    split: Annotated[str, typer.Option(help="train | val | test")] = "test",
    as_json: JsonOpt = False,
) -> None:
    """Score a run on a split of its dataset version and write runs/<id>/report.html."""
    from visionloop.evaluation.api import evaluate_run

    with _open(project) as p:
        result = evaluate_run(p, run, split=split)
    if as_json:
        slim = {k: v for k, v in result.items() if k not in ("pr_curves", "reliability")}
        emit(slim, as_json=True)
        return
    keys = ["run", "split", "n", "images", "main_metric", "accuracy", "balanced_accuracy", "top1", "top5", "mAP",
            "macro_f1", "ece", "n_errors", "map", "map50", "map75", "miou", "pixel_accuracy", "image_jaccard",
            "thresholds_source", "report"]
    emit({k: round(result[k], 4) if isinstance(result[k], float) else result[k] for k in keys if k in result},
         as_json=False, title="evaluation")
    emit([{"class": n, **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}}
          for n, m in result["per_class"].items()], as_json=False, title="per class")


@handle_errors
def predict(
    project: ProjectArg,
    images: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively)")],
    run: Annotated[str, typer.Option("--run", help="run id (or 'latest')")],
    score_threshold: Annotated[float | None, typer.Option(help="score threshold for every class (detection, "
                                                                 "tagging; default: the run's per-class thresholds, "
                                                                 "chosen on the validation split)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Predict images with a trained run: the same answers, keys and thresholds as ``predict-package`` on its export
    (JSON lines with --json)."""
    from visionloop.cli.prediction_output import print_predictions
    from visionloop.export.api import run_predictor
    from visionloop.inference import iter_images

    paths = [f for src in images for f in iter_images(src)]
    with _open(project) as p, run_predictor(p, run) as pred:
        print_predictions(pred.predict_paths(paths, score_threshold=score_threshold), as_json=as_json)


@handle_errors
def models(
    pattern: Annotated[str | None, typer.Argument(help="only names containing this text")] = None,
    task: Annotated[str | None, typer.Option(help="classification | tagging | detection | segmentation")] = None,
    library: Annotated[str | None, typer.Option(help="visionloop | timm | torchvision (who implements it)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the model names that `train --model` takes (ours first, then timm's and torchvision's)."""
    from visionloop.models.registry import list_specs

    rows = [{"name": s.name, "library": s.library, "tasks": ", ".join(s.tasks), "input": s.input_size or "from data",
             "description": s.description} for s in list_specs(pattern, library=library, task=task)]
    emit(rows, as_json=as_json, title=f"{len(rows)} models")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate``, ``predict`` and ``models`` to ``app``."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.command("models")(models)
