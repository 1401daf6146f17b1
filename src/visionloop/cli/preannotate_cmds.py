"""``visionloop preannotate PROJECT``: the project's model predicts its unlabelled images; the predictions are kept
as suggestions the editor offers to accept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, err_console, handle_errors

__all__ = ["preannotate", "register"]


def _model(p: Any, package: str | None, run: str | None) -> tuple[Path, Any]:
    """The package folder to predict with and the suggestions' source: a package of the project by name, or a run
    (its package ``PROJECT/packages/<run id>``, exported first when there is none from that run)."""
    from visionloop.core.errors import ConflictError
    from visionloop.core.package import PackageError, load_package
    from visionloop.serving.jobs.kinds import package_dir
    from visionloop.serving.projects_api.deployments import DEPLOYMENT_FILE, list_package_dirs
    from visionloop.storage.runs import resolve_run
    from visionloop.storage.suggestions import ModelSource

    if package and run:
        raise ConflictError("give --package or --run, not both")
    if run:
        run_id = resolve_run(p, run)
        path = package_dir(p, run_id)
        try:
            exported = load_package(path).manifest.run_id == run_id
        except (PackageError, OSError):
            exported = False
        if not exported:
            from visionloop.export.api import export_run

            err_console.print(f"exporting run {run_id} to {path}")
            export_run(p, run_id, path, name=run_id, overwrite=True)
        return path, (ModelSource.RUN, run_id)
    if not package:  # the deployed one
        import json

        try:
            package = json.loads((Path(p.root) / DEPLOYMENT_FILE).read_text(encoding="utf-8"))["package"]
        except (OSError, ValueError, KeyError):
            raise ConflictError("nothing is deployed in this project: give --package NAME or --run RUN") from None
    known = {d.name: d for d in list_package_dirs(p)}
    if package not in known:
        from visionloop.core.errors import NotFoundError

        raise NotFoundError("package", package, choices=sorted(known) or ["none yet: export one"])
    return known[package], (ModelSource.PACKAGE, package)


@handle_errors
def preannotate(
    project: Annotated[Path, typer.Argument(help="project directory")],
    package: Annotated[str | None, typer.Option("--package", help="a package of the project by name "
                                                                  "(default: the deployed one)")] = None,
    run: Annotated[str | None, typer.Option("--run", help="a training run id, or 'latest' (exported first)")] = None,
    only_unlabelled: Annotated[bool, typer.Option("--only-unlabelled/--all", help="only images without an "
                                                                                  "annotation")] = True,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="predict at most N images this time")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=256)] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Predict the project's images with its model and keep the predictions as suggestions for the editor.
    Images the same model already suggested for are skipped, so an interrupted run picks up where it stopped."""
    from visionloop.core.progress import progress_file
    from visionloop.inference import Predictor
    from visionloop.inference.preannotate import package_ref
    from visionloop.inference.preannotate import preannotate as run_preannotation
    from visionloop.storage import Project

    with Project.open(project) as p:
        path, (source, name) = _model(p, package, run)
        stream = progress_file(p.settings.progress_file)
        with Predictor(path, max_pixels=p.settings.max_image_pixels) as predictor:
            ref = package_ref(predictor, source=source, name=name)

            def progress(done: int, total: int) -> None:
                message = f"pre-annotated {done}/{total} images with {name}"
                if stream is not None:
                    stream.write(fraction=done / total if total else 1.0, message=message, force=done == total)
                err_console.print(message)

            report = run_preannotation(p, predictor, ref, only_unlabelled=only_unlabelled, limit=limit,
                                       batch_size=batch_size, on_progress=progress)
    emit(report.to_json(), as_json=as_json, title="preannotate")


def register(app: typer.Typer) -> None:
    app.command("preannotate")(preannotate)
