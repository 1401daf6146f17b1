"""``visionloop label-errors PROJECT``: find label-error candidates, store them and print the ranked list;
``visionloop label-error-state PROJECT ID...``: mark candidates fixed, dismissed or open again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, err_console, handle_errors

__all__ = ["label_error_state", "label_errors", "register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
AsOpt = Annotated[str, typer.Option("--as", help="user recorded as the author")]


def _package_predictions(p: Any, package: str, image_ids: list[int], progress: Any) -> dict[int, Any]:
    """A package's boxes (project class ids) for ``image_ids`` of the project, at the lowest score it keeps."""
    import numpy as np

    from visionloop.core.annotations import Boxes
    from visionloop.core.errors import NotFoundError
    from visionloop.inference import Predictor
    from visionloop.serving.projects_api.deployments import list_package_dirs

    known = {d.name: d for d in list_package_dirs(p)}
    if package not in known:
        raise NotFoundError("package", package, choices=sorted(known) or ["none yet: export one"])
    out: dict[int, Any] = {}
    with Predictor(known[package], max_pixels=p.settings.max_image_pixels) as predictor:
        step = 8
        for start in range(0, len(image_ids), step):
            records = p.images(ids=image_ids[start:start + step])
            results = predictor.predict_batch([p.blobs.read(r.sha256) for r in records], return_errors=True)
            for rec, res in zip(records, results, strict=True):
                dets = getattr(res, "detections", None)
                if dets is None:
                    continue
                out[rec.id] = Boxes(np.asarray([d.xyxy for d in dets], np.float64).reshape(-1, 4),
                                    np.asarray([d.class_id for d in dets], np.int64),
                                    np.asarray([d.score for d in dets], np.float64))
            progress("predictions", min(len(image_ids), start + step), len(image_ids))
    return out


class _Bars:
    """One tqdm bar per stage, on stderr; and the job's progress file when the platform runs the command."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}
        self.stream: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(desc=stage, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)
        bar.total = total
        bar.n = done
        bar.refresh()
        if self.stream is not None:
            self.stream.write(fraction=done / total if total else 1.0, message=f"{stage} {done}/{total}",
                              force=done == total)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@handle_errors
def label_errors(
    project: Annotated[Path, typer.Argument(help="project directory")],
    version: Annotated[str | None, typer.Option("--version", help="dataset version (default: the current "
                                                                  "annotations)")] = None,
    run: Annotated[str | None, typer.Option("--run", help="a detection run (id or 'latest') whose predictions give "
                                                          "missing and loose boxes")] = None,
    package: Annotated[str | None, typer.Option("--package", help="or a model package of the project, by name")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="cross-validation folds")] = 5,
    method: Annotated[str, typer.Option("--method", help="confident-learning issue set: prune_by_noise_rate, both, "
                                                         "prune_by_class, confident_joint, confusion")] = (
        "prune_by_noise_rate"),
    score: Annotated[str, typer.Option("--score", help="ranking: self_confidence or normalized_margin")] = (
        "self_confidence"),
    min_score: Annotated[float, typer.Option("--min-score", min=0.0, max=1.0, help="a prediction this confident "
                                                                                   "counts for missing/loose boxes")] = 0.5,
    model: Annotated[str, typer.Option("--model", help="backbone of the features (offline ImageNet weights by "
                                                       "default)")] = "tf_efficientnet_lite0",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="candidates to print")] = 50,
    author: AsOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Find the images (and boxes) whose label is probably wrong: out-of-sample probabilities by cross-validation on
    cached backbone features, ranked by confident learning; with --run or --package (detection) also missing and
    loose boxes. The candidates are stored (each open until fixed or dismissed) and the likeliest are printed."""
    import torch

    from visionloop.core.errors import ConflictError
    from visionloop.core.progress import progress_file
    from visionloop.quality.confident_learning import IssueMethod, RankScore
    from visionloop.storage import Project
    from visionloop.storage.label_issues import list_label_issues, save_label_issue_run
    from visionloop.storage.runs import resolve_run
    from visionloop.training.out_of_sample import examples_of, find_candidates, run_predictions

    if run and package:
        raise ConflictError("give --run or --package, not both")
    try:
        method_v, score_v = IssueMethod(method), RankScore(score)
    except ValueError:
        raise ConflictError(f"--method is one of {[m.value for m in IssueMethod]} and --score one of "
                            f"{[s.value for s in RankScore]}") from None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bars = _Bars()
    try:
        with Project.open(project) as p:
            bars.stream = progress_file(p.settings.progress_file)
            predictions, source = None, None
            if run or package:
                if p.task.value not in ("detection", "segmentation"):
                    raise ConflictError("--run/--package find missing and loose boxes of detection projects")
                if run:
                    source = f"run:{resolve_run(p, run)}"
                    predictions = run_predictions(p, run, version=version, device=device, progress=bars)
                else:
                    source = f"package:{package}"
                    items, _ = examples_of(p, version)
                    predictions = _package_predictions(p, str(package), [it.image.id for it in items], bars)
            report = find_candidates(p, version=version, folds=folds, method=method_v, score=score_v,
                                     predictions=predictions, min_score=min_score, model=model, device=device,
                                     progress=bars)
            params = {"folds": folds, "score": score_v.value, "min_score": min_score, "model": model}
            saved = save_label_issue_run(p, report.candidates, created_by=author, method=method_v.value,
                                         params=params, version=version, source=source, summary=report.summary)
            page = list_label_issues(p, run_id=saved.id, limit=limit)
    finally:
        bars.close()
    if as_json:
        emit({"run": saved.to_json(), "total": page.total,
              "candidates": [i.to_json() for i in page.items]}, as_json=True)
        return
    err_console.print(f"label-error run {saved.id}: {page.total} candidates in {report.summary['examples']} "
                      f"examples ({', '.join(f'{k} {v}' for k, v in report.summary['kinds'].items()) or 'none'})")
    emit([{"id": i.id, "rank": i.rank, "kind": i.kind.value, "image": i.image_name, "box": i.box_index,
           "given": i.given, "suggested": i.suggested, "score": round(i.score, 3)} for i in page.items]
         or "no candidates", as_json=False, title="label-error candidates")


@handle_errors
def label_error_state(
    project: Annotated[Path, typer.Argument(help="project directory")],
    ids: Annotated[list[int], typer.Argument(help="candidate ids (from visionloop label-errors)")],
    state: Annotated[str, typer.Option("--state", help="fixed, dismissed or open")],
    note: Annotated[str | None, typer.Option("--note", help="why (kept in the candidate's history)")] = None,
    author: AsOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Mark label-error candidates fixed, dismissed, or open again (who and when are recorded)."""
    from visionloop.storage import Project
    from visionloop.storage.label_issues import set_label_issue_state

    with Project.open(project) as p:
        changed = set_label_issue_state(p, ids, state, author=author, note=note)
    emit({"changed": changed, "state": state}, as_json=as_json, title="label-error state")


def register(app: typer.Typer) -> None:
    app.command("label-errors")(label_errors)
    app.command("label-error-state")(label_error_state)
