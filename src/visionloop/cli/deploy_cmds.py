"""Deploy commands: export-model, predict-package, serve (hot reload, canary, follow mode) and the ``deploy`` group
(``deploy rollback PROJECT``, ``deploy show PROJECT``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, err_console, handle_errors
from visionloop.cli.prediction_output import print_predictions

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@handle_errors
def export_model(
    project: Annotated[Path, typer.Argument(help="project directory")],
    out: Annotated[Path, typer.Argument(help="package to write: a folder, or a .zip/.vlpkg file")],
    run: Annotated[str, typer.Option("--run", help="run id, or 'latest'")] = "latest",
    int8: Annotated[bool, typer.Option("--int8", help="static int8 (QDQ) calibrated on training images, checked "
                                                      "on the validation split")] = False,
    force: Annotated[bool, typer.Option("--force", help="write the int8 model even when it loses more than "
                                                        "--max-drop (the loss is recorded in the package)")] = False,
    max_drop: Annotated[float, typer.Option(help="largest allowed drop of the main metric (0.01 = one point)")] = 0.01,
    name: Annotated[str | None, typer.Option(help="package name (default: project-run)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing package at OUT")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a training run as a model package (ONNX + manifest + model card)."""
    from visionloop.core.package import load_package
    from visionloop.export.api import export_run

    path = export_run(project, run, out, int8=int8, force=force, max_drop=max_drop, name=name, overwrite=overwrite)
    m = load_package(path).manifest
    data = {"package": str(path), "name": m.name, "task": str(m.task), "classes": len(m.classes),
            "run": m.run_id, "dataset_version": m.dataset_version, "precision": "int8" if m.int8 else "fp32"}
    if m.int8:
        data.update({"metric": m.int8.metric, "fp32": round(m.int8.fp32, 4), "int8": round(m.int8.int8, 4),
                     "drop": round(m.int8.drop, 4), "forced": m.int8.forced})
    emit(data, as_json=as_json, title="exported")


@handle_errors
def predict_package(
    package: Annotated[Path, typer.Argument(help="model package (folder or .zip/.vlpkg)")],
    images: Annotated[list[Path], typer.Argument(help="image files or folders (searched recursively)")],
    sessions: Annotated[int | None, typer.Option(help="onnxruntime sessions (default: one per core)")] = None,
    score_threshold: Annotated[float | None, typer.Option(help="score threshold for every class (detection, "
                                                                 "tagging; default: the package's per-class "
                                                                 "thresholds)")] = None,
    batch_size: Annotated[int, typer.Option(help="images per step")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Predict images with a model package (no PyTorch needed); JSON lines with --json."""
    from visionloop.inference import Predictor, iter_images

    paths = [p for src in images for p in iter_images(src)]
    with Predictor(package, sessions=sessions) as pred:
        rows = pred.predict_paths(paths, batch_size=batch_size, progress=not as_json and len(paths) > 1,
                                  score_threshold=score_threshold)
        print_predictions(rows, as_json=as_json)


def _canaries(specs: list[str]) -> dict[str, tuple[str, float]]:
    """``NAME=PATH:SHARE`` options as {name: (path, share)}."""
    from visionloop.core.errors import VisionloopError

    out: dict[str, tuple[str, float]] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        path, colon, share = rest.rpartition(":")
        try:
            out[name] = (path, float(share))
        except ValueError:
            colon = ""
        if not (sep and colon and name and path):
            raise VisionloopError(f"--canary {spec!r}: write NAME=PATH:SHARE, e.g. cells=packages/v2.vlpkg:0.1")
    return out


@handle_errors
def serve(
    packages: Annotated[list[str] | None, typer.Argument(
        help="model packages; NAME=PATH serves PATH as NAME (none with --follow: the project's deployed package)",
        show_default=False)] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
    token: Annotated[list[str] | None, typer.Option("--token", help="API token (repeat for several); also read "
                                                                     "from VISIONLOOP_API_TOKENS, comma-separated")] = None,
    batch: Annotated[bool, typer.Option("--batch/--no-batch", help="dynamic batching across requests")] = True,
    max_batch: Annotated[int, typer.Option(help="largest dynamic batch")] = 16,
    max_wait_ms: Annotated[float, typer.Option(help="longest wait for a batch to fill under load, ms")] = 2.0,
    sessions: Annotated[int | None, typer.Option(help="onnxruntime sessions per model (default: cores)")] = None,
    max_request_mb: Annotated[float, typer.Option(help="largest single-image body or image file, MiB")] = 20.0,
    max_batch_mb: Annotated[float, typer.Option(help="largest batch request body, all images together, MiB")] = 64.0,
    max_inflight_mb: Annotated[float, typer.Option(
        help="request bytes held at once by all requests (beyond: 503 with Retry-After), MiB")] = 256.0,
    max_queue: Annotated[int, typer.Option(help="images waiting per model (beyond: 503 with Retry-After)")] = 256,
    max_pixels: Annotated[int, typer.Option(help="largest image, pixels")] = 40_000_000,
    log_predictions: Annotated[float, typer.Option(help="fraction of predictions to log (0..1)")] = 0.0,
    log_dir: Annotated[Path | None, typer.Option(help="folder for logged images and predictions.jsonl")] = None,
    feedback: Annotated[str | None, typer.Option(
        help="send the predictions the samplers choose to a project: its API base, "
             "http://HOST:PORT/api/v1/projects/NAME")] = None,
    feedback_token: Annotated[str | None, typer.Option(
        help="token of an annotator-level project user for --feedback (or VISIONLOOP_FEEDBACK_TOKEN)")] = None,
    feedback_config: Annotated[Path | None, typer.Option(
        help="samplers, a JSON or TOML file (default: a 1% random slice and predictions under 0.5, each at most "
             "60 an hour)")] = None,
    feedback_spool: Annotated[Path, typer.Option(help="folder for samples waiting to be sent")] = Path(
        "feedback-spool"),
    feedback_spool_mb: Annotated[float, typer.Option(help="largest feedback spool, MiB (the oldest go first)")] = 512.0,
    admin_token: Annotated[list[str] | None, typer.Option(
        "--admin-token", help="token of the control routes (reload, rollback, canary; repeat for several; also "
                              "VISIONLOOP_ADMIN_TOKENS); without one they are off")] = None,
    packages_dir: Annotated[Path | None, typer.Option(
        help="folder whose packages POST /v1/models/NAME/reload {\"path\": ...} may load")] = None,
    max_package_mb: Annotated[float, typer.Option(help="largest package archive uploaded or downloaded, MiB")] = 1024.0,
    canary: Annotated[list[str] | None, typer.Option(
        "--canary", help="NAME=PATH:SHARE: the package at PATH answers SHARE (0..1] of NAME's requests, compared "
                         "with NAME's answers (agreement in /metrics and GET /v1/models/NAME)")] = None,
    follow: Annotated[str | None, typer.Option(
        help="follow a project's deployment: its API URL, http://HOST:PORT/api/v1/projects/NAME")] = None,
    follow_token: Annotated[str | None, typer.Option(help="project API token for --follow (viewer is enough)")] = None,
    follow_model: Annotated[str | None, typer.Option(
        help="the served model that follows (default: the only one served)")] = None,
    follow_interval: Annotated[float, typer.Option(help="seconds between polls of the project")] = 10.0,
) -> None:
    """Serve model packages over HTTP: POST /v1/models/NAME/predict, /v1/models, /health, /ready, /metrics; with
    --admin-token, POST /v1/models/NAME/reload and /rollback swap packages without downtime."""
    from visionloop.core.errors import VisionloopError
    from visionloop.serving.model_server.app import create_inference_app
    from visionloop.serving.model_server.batching import BatchConfig
    from visionloop.serving.model_server.follow import FollowSettings
    from visionloop.serving.model_server.reload import ReloadSettings
    from visionloop.serving.model_server.server import serve_inference
    from visionloop.serving.model_server.tokens import ADMIN_TOKENS_ENV, parse_tokens

    packages = packages or []
    named: dict[str, Any] = {}
    plain: list[Any] = []
    for spec in packages:
        name, sep, path = spec.partition("=")
        if sep and not Path(spec).exists():
            named[name] = path
        else:
            plain.append(spec)
    if named and plain:
        from visionloop.core.package import load_package

        for p in plain:
            named[load_package(p).name] = p
    max_package_bytes = int(max_package_mb * 1024 * 1024)
    follow_settings = None
    if follow is not None:
        if not follow_token:
            raise VisionloopError("--follow needs --follow-token, a project API token (viewer is enough)")
        if follow_model is None and len(named or plain) > 1:
            raise VisionloopError("--follow with several packages needs --follow-model NAME, the one that follows")
        follow_settings = FollowSettings(project_url=follow, token=follow_token, model=follow_model or "",
                                         interval_s=follow_interval, max_package_bytes=max_package_bytes)
        if not packages:
            deployed = _deployed_package(follow_settings)
            named = {follow_model or deployed.name: deployed}
        if not follow_settings.model:
            from dataclasses import replace

            from visionloop.core.package import load_package

            only = next(iter(named)) if named else load_package(plain[0]).name
            follow_settings = replace(follow_settings, model=only)
    elif not packages:
        raise VisionloopError("no model packages to serve; pass package paths, or --follow a project's deployment")
    feedback_settings = _feedback_settings(feedback, token=feedback_token, config=feedback_config,
                                           spool=feedback_spool, spool_mb=feedback_spool_mb)
    tokens = parse_tokens(token)
    admin_tokens = parse_tokens(admin_token, var=ADMIN_TOKENS_ENV)
    app = create_inference_app(
        named or plain, tokens=tokens, sessions=sessions, admin_tokens=admin_tokens,
        reload=ReloadSettings(packages_dir=packages_dir, max_package_bytes=max_package_bytes),
        canaries=_canaries(canary or []), follow=follow_settings,
        batching=BatchConfig(enabled=batch, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue),
        max_request_bytes=int(max_request_mb * 1024 * 1024), max_pixels=max_pixels,
        max_batch_bytes=int(max_batch_mb * 1024 * 1024), max_inflight_bytes=int(max_inflight_mb * 1024 * 1024),
        log_predictions=log_predictions, log_dir=log_dir, feedback=feedback_settings,
    )
    models = ", ".join(app.state.model_server.models)
    err_console.print(f"serving {models} on http://{host}:{port} (tokens: {'on' if tokens else 'off'}, "
                      f"batching: {'on' if batch else 'off'}, control: {'on' if admin_tokens else 'off'}"
                      + (f", {follow_settings.model} follows {follow}" if follow_settings else "") + ")")
    serve_inference(app, host=host, port=port)


def _deployed_package(settings: Any) -> Any:
    """The package deployed in the followed project, downloaded (a server started with --follow and no package)."""
    import tempfile

    from visionloop.serving.model_server.follow import fetch_deployed_package, fetch_deployment

    if not fetch_deployment(settings).get("package"):
        from visionloop.core.errors import VisionloopError

        raise VisionloopError(f"nothing is deployed in {settings.project_url}; deploy a package there first or pass "
                              "one to serve")
    with tempfile.TemporaryDirectory(prefix="visionloop-follow-") as tmp:
        return fetch_deployed_package(settings, Path(tmp) / "deployed.vlpkg")


ProjectArg = Annotated[Path, typer.Argument(help="project directory")]


@handle_errors
def deploy_rollback(
    project: ProjectArg,
    by: Annotated[str, typer.Option(help="who rolls back (recorded in deployment.json)")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Deploy the project's previous package again (checked first). A running platform picks it up at its next
    request, and model servers following the project roll back too."""
    from visionloop.core.settings import Settings
    from visionloop.serving.projects_api.deployments import Deployments
    from visionloop.storage import Project

    with Project.open(project) as p:
        deployments = Deployments(Settings())
        try:
            done = deployments.rollback(p, by=by).to_json()
        finally:
            deployments.close()
    emit(_deployment_row(done), as_json=as_json, title="rolled back")


@handle_errors
def deploy_show(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """The project's deployed package, the previous one (what rollback deploys) and the history."""
    from visionloop.storage import Project
    from visionloop.storage.deployment import read_deployment

    with Project.open(project) as p:
        record = read_deployment(p.root)
    emit(record if as_json else _deployment_row(record or {"package": None}), as_json=as_json, title="deployment")


def _deployment_row(d: dict[str, Any]) -> dict[str, Any]:
    prev = d.get("previous") or {}
    return {"package": d.get("package"), "package_version": d.get("package_version"),
            "deployed_at": str(d.get("deployed_at")), "deployed_by": d.get("deployed_by"),
            "previous": prev.get("package"), "previous_version": prev.get("package_version"),
            "history": len(d.get("history") or [])}


def _feedback_settings(url: str | None, *, token: str | None, config: Path | None, spool: Path,
                       spool_mb: float) -> Any:
    """The feedback sender's settings of ``serve`` (None without --feedback)."""
    import os

    from visionloop.active.samplers import load_sampling_config
    from visionloop.core.errors import VisionloopError
    from visionloop.serving.model_server.feedback import DEFAULT_SAMPLING, TOKEN_ENV, FeedbackSettings

    if url is None:
        if token or config:
            raise VisionloopError("--feedback-token and --feedback-config need --feedback URL, the project to send to")
        return None
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise VisionloopError(f"--feedback needs --feedback-token (or {TOKEN_ENV}): a token of an annotator-level "
                              "project user, made with `visionloop user add NAME --role annotator` and its token")
    sampling = load_sampling_config(config) if config is not None else DEFAULT_SAMPLING
    return FeedbackSettings(url=url, token=token, sampling=sampling, spool_dir=spool,
                            spool_max_bytes=int(spool_mb * 1024 * 1024))


def register(app: typer.Typer) -> None:
    """Add export-model, predict-package, serve and the ``deploy`` group to ``app``."""
    app.command("export-model")(export_model)
    app.command("predict-package")(predict_package)
    app.command("serve")(serve)
    group = typer.Typer(help="The package deployed in a project: show it, roll back.", no_args_is_help=True)
    group.command("rollback")(deploy_rollback)
    group.command("show")(deploy_show)
    app.add_typer(group, name="deploy")
