"""``visionloop drift PROJECT``: compare recent production samples with the deployed model's training data.

The check and its statistics live in :mod:`visionloop.active.drift_check`; this command picks the model (the
deployed package by default), runs the check, and prints the stored report (``--json`` for scripts and the
platform's ``drift`` job). Exit status 0 whether or not it alerts: the alert is in the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, err_console, handle_errors

__all__ = ["drift", "register"]


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The lines a person reads first."""
    d = report["details"]
    out = {"report": report["id"], "model": report["model"], "reference": report["reference"],
           "window": f"{report['window_start']} .. {report['window_end']}", "production samples":
           report["n_production"], "reference images": report["n_reference"]}
    for key in ("mmd", "mmd_p", "confidence_p", "psi"):
        if report[key] is not None:
            out[key] = round(report[key], 4)
    for name, c in report["image_stats"].items():
        out[name] = f"mean {c['reference_mean']:.1f} -> {c['production_mean']:.1f}, PSI {c['psi']:.3f}, p {c['p']:.3g}"
    out["alert"] = ", ".join(d["alerts"]) if report["alert"] else "no"
    if d.get("note"):
        out["note"] = d["note"]
    return out


@handle_errors
def drift(
    project: Annotated[Path, typer.Argument(help="project directory")],
    window: Annotated[str, typer.Option("--window", help="production samples received in the last WINDOW "
                                        "(a number and s, m, h, d or w)")] = "24h",
    package: Annotated[str | None, typer.Option("--package", help="a package of the project by name "
                                                "(default: the deployed one)")] = None,
    run: Annotated[str | None, typer.Option("--run", help="a training run id, or 'latest' (exported first)")] = None,
    reference: Annotated[str | None, typer.Option("--reference", help="a dataset version to compare with (default: "
                                                  "the model's training version)")] = None,
    all_samples: Annotated[bool, typer.Option("--all-samples", help="every sample of the window, not only the "
                                              "random slice (biased towards what the samplers chose)")] = False,
    backbone: Annotated[str, typer.Option("--backbone", help="whose embeddings the MMD compares")] =
    "tf_efficientnet_lite0",
    max_samples: Annotated[int, typer.Option("--max-samples", min=20, max=5000, help="images per side")] = 300,
    min_samples: Annotated[int, typer.Option("--min-samples", min=2, max=5000, help="fewer production samples: "
                                             "nothing is tested")] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    start_loop: Annotated[bool | None, typer.Option(
        "--start-loop/--no-start-loop", help="ask for a loop cycle when it alerts (default: the project's "
        "[loop] on_drift setting)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check PROJECT's recent production inputs for drift from its model's training data: MMD of embeddings,
    confidences, predicted classes and image size/brightness/blur; stores the report and alerts (a drift.alert
    webhook event) when a statistic crosses its threshold."""
    from visionloop.active.drift_check import DriftOptions, check_drift, loop_on_drift, parse_window
    from visionloop.cli.preannotate_cmds import _model
    from visionloop.core.progress import progress_file
    from visionloop.storage import Project

    span = parse_window(window)
    with Project.open(project) as p:
        path, (_, name) = _model(p, package, run)
        stream = progress_file(p.settings.progress_file)

        def progress(fraction: float, message: str) -> None:
            if stream is not None:
                stream.write(fraction=fraction, message=f"drift check: {message}", force=fraction >= 1.0)
            err_console.print(f"drift check: {message}")

        options = DriftOptions(window=span, random_only=not all_samples, backbone=backbone, reference=reference,
                               max_samples=max_samples, min_production=min_samples, seed=seed,
                               start_loop=loop_on_drift(p) if start_loop is None else start_loop)
        report = check_drift(p, path, options=options, package_name=name, progress=progress).to_json()
    if as_json:
        emit({**report, "loop_requested": report["details"]["loop_requested"]}, as_json=True)
    else:
        emit(_summary(report), as_json=False, title="drift")


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)
