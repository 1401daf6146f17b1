"""What each kind of job runs: the ``visionloop`` command lines (steps) of a job, and what is added to its result.

A step is a module run as a program in a child process (``python -m MODULE ARGS``): every kind runs the same
``visionloop`` command a person would type (``visionloop.cli.main``) with ``--json``, whose printed JSON is the job's
result. The export of a dataset adds a second step, the standard library's ``zipfile`` command, so the download is
one file. A path in a job's parameters (an import's ``source``) is relative to the job's folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionloop.core.errors import NotFoundError
from visionloop.storage.embeddings import embedding_keys
from visionloop.storage.jobs import Job
from visionloop.storage.project import Project
from visionloop.storage.versions import get_version

__all__ = ["CLI_MODULE", "EXPORT_ZIP", "JOBS_DIR", "KINDS", "PACKAGES_DIR", "STAGING_PREFIX", "JobKind", "Step",
           "embed_after_import", "evaluate_after_training", "loop_after_drift", "get_kind", "package_after_evaluation", "job_dir", "package_dir", "public_guard"]

CLI_MODULE = "visionloop.cli.main"
JOBS_DIR = "jobs"
EXPORT_ZIP = "export.zip"
PACKAGES_DIR = "packages"
DEFAULT_EMBED_BACKBONE = "tf_efficientnet_lite0"
STAGING_PREFIX = ".staging-"
"""A folder ``PROJECT/jobs/.staging-*`` holds an upload still arriving; it becomes its job's ``upload`` folder."""


@dataclass(frozen=True)
class Step:
    module: str
    args: list[str]


def job_dir(project: Project, job_id: int) -> Path:
    """``PROJECT/jobs/<id>``: the job's uploads, progress, log, printed result and outputs."""
    return Path(project.root).resolve() / JOBS_DIR / str(job_id)


def package_dir(project: Project, name: str) -> Path:
    """``PROJECT/packages/<name>``: a model package exported by a job."""
    return Path(project.root).resolve() / PACKAGES_DIR / name


def _root(p: Project) -> str:
    """The project's folder as an absolute path: a job's command runs in that folder, where a relative path (a
    server started with ``visionloop demo data/sample-bccd``) would point elsewhere."""
    return str(Path(p.root).resolve())


def _cli(*args: str) -> Step:
    return Step(CLI_MODULE, [*args, "--json"])


def _optional(params: dict[str, Any], **flags: str) -> list[str]:
    out: list[str] = []
    for key, flag in flags.items():
        if params.get(key) not in (None, ""):
            out += [flag, str(params[key])]
    return out


def _import_steps(p: Project, job: Job) -> list[Step]:
    source = job_dir(p, job.id) / job.params["source"]  # the upload, inside the job's folder
    return [_cli("import", _root(p), str(source), "--author", job.created_by,
                 *_optional(job.params, format="--format", on_conflict="--on-conflict"))]


def _export_steps(p: Project, job: Job) -> list[Step]:
    out = job_dir(p, job.id)
    return [_cli("export", _root(p), str(out / "export"), "--format", job.params["format"],
                 *_optional(job.params, version="--version")),
            Step("zipfile", ["-c", str(out / EXPORT_ZIP), str(out / "export")])]


def _train_steps(p: Project, job: Job) -> list[Step]:
    if job.params.get("resume"):
        return [_cli("train", _root(p), "--resume", job.params["resume"], "--author", job.created_by)]
    return [_cli("train", _root(p), "--version", job.params["version"], "--author", job.created_by,
                 *_optional(job.params, model="--model", strategy="--strategy", epochs="--epochs",
                            image_size="--image-size", batch_size="--batch-size"))]


def _evaluate_steps(p: Project, job: Job) -> list[Step]:
    return [_cli("evaluate", _root(p), "--run", job.params["run"], "--split", job.params.get("split", "test"))]


def _package_steps(p: Project, job: Job) -> list[Step]:
    args = ["export-model", _root(p), str(package_dir(p, job.params["name"])), "--run", job.params["run"],
            "--name", job.params["name"], "--overwrite"]
    return [_cli(*args, *(["--int8"] if job.params.get("int8") else []))]


def _preannotate_steps(p: Project, job: Job) -> list[Step]:
    flags = [] if job.params.get("only_unlabelled", True) else ["--all"]
    return [_cli("preannotate", _root(p), *_optional(job.params, package="--package", run="--run", limit="--limit"),
                 *flags)]


def _embed_steps(p: Project, job: Job) -> list[Step]:
    return [_cli("embed", _root(p), *_optional(job.params, backbone="--backbone"))]


def _label_errors_steps(p: Project, job: Job) -> list[Step]:
    return [_cli("label-errors", _root(p), "--as", job.created_by,
                 *_optional(job.params, version="--version", run="--run", package="--package", folds="--folds",
                            method="--method"))]


def _drift_steps(p: Project, job: Job) -> list[Step]:
    flags = ["--all-samples"] if job.params.get("all_samples") else []
    return [_cli("drift", _root(p), *_optional(job.params, window="--window", package="--package",
                                               reference="--reference", backbone="--backbone"), *flags)]


def _loop_steps(p: Project, job: Job) -> list[Step]:
    """One check of the retrain-and-compare loop (a cycle when due); a person's or a drift alert's cycle is forced."""
    force = job.params.get("force", job.params.get("trigger") in ("manual", "drift"))
    return [_cli("loop", _root(p), "--once", "--as", job.created_by, *(["--force"] if force else []),
                 *_optional(job.params, trigger="--trigger", min_new="--min-new", margin="--margin"))]


def _guard_verdict(p: Project, job: Job) -> dict[str, Any]:
    """The int8 guard's verdict (the run's ``int8-guard.json``), written whether the int8 model was kept or refused."""
    if not job.params.get("int8"):
        return {}
    path = Path(p.root) / "runs" / job.params["run"] / "int8-guard.json"
    try:
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"int8_guard": None}
    return {"int8_guard": public_guard(verdict)}


def public_guard(verdict: Any) -> dict[str, Any] | None:
    """The int8 guard's verdict without the package's path on the server's disk (its name is the package's)."""
    return {k: v for k, v in verdict.items() if k != "package"} if isinstance(verdict, dict) else None


def evaluate_after_training(p: Project, job: Job, result: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The evaluate job that follows a finished training job (so every run trained from the page has its report):
    on the version's test split, or its validation split when it has no test images."""
    run = result.get("run")
    if not run:
        return None
    try:
        with open(Path(p.root) / "runs" / run / "config.json", encoding="utf-8") as f:
            version = json.load(f)["version"]["name"]
        splits = get_version(p, version).splits
    except (OSError, ValueError, KeyError, NotFoundError):
        return None
    split = next((s for s in ("test", "val") if splits.get(s)), None)
    deploy = {"deploy": True} if job.params.get("deploy") else {}
    if split:
        return "evaluate", {"run": run, "split": split, **deploy}
    return ("package", {"run": run, "name": run, **deploy}) if deploy else None


def package_after_evaluation(p: Project, job: Job, result: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The package job that follows the evaluation of a run trained with ``deploy`` (its deployment comes next)."""
    run = job.params.get("run")
    return ("package", {"run": run, "name": run, "deploy": True}) if job.params.get("deploy") and run else None


def embed_after_import(p: Project, job: Job, result: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The embed job that follows an import that added images to a project with stored embeddings (so similarity,
    duplicates and outliers cover the new images): for the default backbone's embeddings when stored, else for the
    first stored ones."""
    keys = embedding_keys(p.root)
    if not result.get("images_added") or not keys:
        return None
    key = DEFAULT_EMBED_BACKBONE if DEFAULT_EMBED_BACKBONE in keys else keys[0]
    return "embed", {"backbone": f"run:{key[4:]}" if key.startswith("run-") else key}


def loop_after_drift(p: Project, job: Job, result: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The loop job that follows a drift check that alerted and asked for the loop (the project's ``[loop]
    on_drift`` setting): queued only where the ``loop`` job kind exists."""
    if not result.get("loop_requested") or "loop" not in KINDS:
        return None
    return "loop", {"trigger": "drift", "drift_report": result.get("id")}


def _nothing(p: Project, job: Job) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class JobKind:
    """``steps(project, job)``: the commands to run; ``extra(project, job)``: fields added to the result (also when
    the job failed); ``hidden``: keys of the printed result left out (paths of the server's disk)."""

    name: str
    steps: Callable[[Project, Job], list[Step]]
    extra: Callable[[Project, Job], dict[str, Any]] = _nothing
    hidden: frozenset[str] = frozenset({"out", "run_dir", "package", "report", "source"})


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("import", _import_steps),
    JobKind("export", _export_steps),
    JobKind("train", _train_steps),
    JobKind("evaluate", _evaluate_steps),
    JobKind("package", _package_steps, _guard_verdict),
    JobKind("preannotate", _preannotate_steps),
    JobKind("embed", _embed_steps),
    JobKind("label_errors", _label_errors_steps),
    JobKind("drift", _drift_steps),
    JobKind("loop", _loop_steps),
)}


def get_kind(name: str) -> JobKind:
    try:
        return KINDS[name]
    except KeyError:
        raise NotFoundError("job kind", name, choices=list(KINDS)) from None
