"""Project commands: init, import, export, stats, classes, version, derive, serve-projects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionloop.cli.output import emit, err_console, handle_errors
from visionloop.core.ontology import class_keys
from visionloop.core.task import Task

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
ProjectArg = Annotated[Path, typer.Argument(help="project directory")]


def _open(path: Path):  # noqa: ANN202
    from visionloop.storage import Project

    return Project.open(path)


@handle_errors
def init(
    project: ProjectArg,
    task: Annotated[Task, typer.Option(help="what each image's annotation says")],
    name: Annotated[str | None, typer.Option(help="project name (default: folder name)")] = None,
    db_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL, e.g. postgresql+psycopg://...")] = None,
    blob_url: Annotated[str | None, typer.Option(help="blob store URL (folder or s3://, gs://)")] = None,
    blob_option: Annotated[list[str] | None, typer.Option(
        help="fsspec option of a remote blob store as KEY=VALUE, repeatable (e.g. endpoint_url=http://minio:9000 for "
             "an S3-compatible server); saved in visionloop.toml, so keep credentials in the environment")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project for one task."""
    from visionloop.storage import Project

    options: dict[str, str] = {}
    for item in blob_option or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: write KEY=VALUE, e.g. endpoint_url=http://minio:9000",
                                     param_hint="--blob-option")
        options[key.strip()] = value
    with Project.create(project, task=task, name=name, db_url=db_url, blob_url=blob_url,
                        blob_options=options or None) as p:
        emit({"project": str(project), "name": p.name, "task": p.task.value}, as_json=as_json, title="created")


@handle_errors
def import_(
    project: ProjectArg,
    source: Annotated[Path, typer.Argument(help="folder, annotation file or archive (.zip, .tar.gz)")],
    format: Annotated[str | None, typer.Option("--format", help="format name (default: detect)")] = None,
    no_new_classes: Annotated[bool, typer.Option(help="drop instances of classes not in the project")] = False,
    author: Annotated[str, typer.Option(help="author recorded on the revisions")] = "import",
    on_conflict: Annotated[str, typer.Option(
        "--on-conflict", help="byte-identical images annotated differently: keep the first (default), the last, "
        "or merge both; each conflict is reported")] = "first",
    as_json: JsonOpt = False,
) -> None:
    """Import images and annotations; re-running the same import adds nothing and completes a killed one."""
    from visionloop.ingest import import_source

    if on_conflict not in ("first", "last", "merge"):
        raise typer.BadParameter("--on-conflict must be first, last or merge")
    with _open(project) as p:
        report = import_source(p, source, format=format, author=author, create_classes=not no_new_classes,
                               progress=not as_json, on_conflict=on_conflict)
    data = report.to_json()
    if as_json:
        emit(data, as_json=True)
        return
    problems = data.pop("problems")
    conflicts = data.pop("conflicts", [])
    in_two_subsets = data.pop("subset_conflicts", [])
    emit({**data, "problems": len(problems), "conflicts": len(conflicts), "subset_conflicts": len(in_two_subsets)},
         as_json=False, title="import")
    for prob in problems[:30]:
        typer.echo(f"  {prob['action']}: {prob['path']}: {prob['reason']}")
    if len(problems) > 30:
        typer.echo(f"  ... and {len(problems) - 30} more (use --json for all)")


@handle_errors
def export(
    project: ProjectArg,
    out: Annotated[Path, typer.Argument(help="output folder")],
    format: Annotated[str, typer.Option("--format", help="format name, e.g. coco, voc, yolo, cvat")],
    version: Annotated[str | None, typer.Option(help="export a frozen dataset version (default: current heads)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export annotations and images in a format other tools read."""
    from visionloop.formats.exporter import export_project

    with _open(project) as p:
        emit(export_project(p, out, format=format, version=version), as_json=as_json, title="export")


@handle_errors
def stats(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Images, annotations and instances per class."""
    with _open(project) as p:
        emit(p.stats(), as_json=as_json, title="stats")


classes_app = typer.Typer(help="List and edit classes: rename, merge, split (recorded, annotations rewritten).")


@classes_app.command("list")
@handle_errors
def classes_list(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """All classes with ids, colours, keyboard keys and flags (retired ones included)."""
    with _open(project) as p:
        onto = p.ontology()
        keys = class_keys(onto)
        emit([{**row, "key": keys.get(row["id"])} for row in onto.to_json()], as_json=as_json, title="classes")


@classes_app.command("add")
@handle_errors
def classes_add(
    project: ProjectArg, name: str,
    orientation_sensitive: Annotated[bool, typer.Option(help="mirroring changes the class: never flip")] = False,
    colour_sensitive: Annotated[bool, typer.Option(help="colour tells classes apart: no colour jitter")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a class."""
    with _open(project) as p:
        c = p.add_class(name, orientation_sensitive=orientation_sensitive, colour_sensitive=colour_sensitive)
        emit({"id": c.id, "name": c.name}, as_json=as_json)


@classes_app.command("flag")
@handle_errors
def classes_flag(
    project: ProjectArg, name: str,
    orientation_sensitive: Annotated[bool | None, typer.Option("--orientation-sensitive/--no-orientation-sensitive")] = None,
    colour_sensitive: Annotated[bool | None, typer.Option("--colour-sensitive/--no-colour-sensitive")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the flags augmentation follows."""
    flags = {k: v for k, v in {"orientation_sensitive": orientation_sensitive,
                               "colour_sensitive": colour_sensitive}.items() if v is not None}
    with _open(project) as p:
        c = p.set_class_flags(name, **flags)
        emit({"id": c.id, "name": c.name, "orientation_sensitive": c.orientation_sensitive,
              "colour_sensitive": c.colour_sensitive}, as_json=as_json)


@classes_app.command("rename")
@handle_errors
def classes_rename(project: ProjectArg, old: str, new: str, author: str = "cli", as_json: JsonOpt = False) -> None:
    """Rename a class; its id and annotations stay."""
    from visionloop.storage.ontology_ops import rename_class

    with _open(project) as p:
        emit(_jsonable(rename_class(p, old, new, author=author)), as_json=as_json, title="rename")


@classes_app.command("merge")
@handle_errors
def classes_merge(
    project: ProjectArg,
    sources: Annotated[list[str], typer.Argument(help="classes to merge")],
    into: Annotated[str, typer.Option("--into", help="target class (existing or new)")],
    author: str = "cli", as_json: JsonOpt = False,
) -> None:
    """Merge classes into one; annotations get new revisions, old ones are kept."""
    from visionloop.storage.ontology_ops import merge_classes

    with _open(project) as p:
        emit(_jsonable(merge_classes(p, sources, into, author=author)), as_json=as_json, title="merge")


@classes_app.command("split")
@handle_errors
def classes_split(
    project: ProjectArg, source: str,
    into: Annotated[list[str], typer.Option("--into", help="new class (repeat)")],
    assign: Annotated[Path | None, typer.Option(help="CSV image_id,object_index,class of instances to move")] = None,
    author: str = "cli", as_json: JsonOpt = False,
) -> None:
    """Split a class into new ones; instances named in --assign move, the rest stay for review."""
    import csv

    from visionloop.storage.ontology_ops import split_class

    mapping = None
    if assign is not None:
        with assign.open(newline="", encoding="utf-8") as f:
            mapping = {(int(r["image_id"]), int(r["object_index"])): r["class"] for r in csv.DictReader(f)}
    with _open(project) as p:
        emit(_jsonable(split_class(p, source, into, assign=mapping, author=author)), as_json=as_json, title="split")


def _jsonable(obj: object) -> object:
    from dataclasses import asdict, is_dataclass

    return asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else obj


version_app = typer.Typer(help="Immutable dataset versions with leak-free train/val/test splits.")


def _version_json(info) -> dict:  # noqa: ANN001
    return {"version": info.name, "task": info.task.value, "hash": info.hash, "created_at": info.created_at,
            "splits": info.summary.get("splits", {}), "summary": info.summary, "params": info.params}


@version_app.command("create")
@handle_errors
def version_create(
    project: ProjectArg,
    name: Annotated[str | None, typer.Option(help="version name (default v1, v2, ...)")] = None,
    seed: Annotated[int, typer.Option(help="split seed")] = 0,
    val: Annotated[float, typer.Option(help="validation fraction (random splits)")] = 0.15,
    test: Annotated[float, typer.Option(help="test fraction (random splits)")] = 0.15,
    splits: Annotated[str, typer.Option(help=(
        "random or source. random: a seeded, leak-free, stratified split by --val/--test. source: the "
        "train/val/test each image came with (COCO instances_<subset>.json, train/ val/ folders, VOC ImageSets, "
        "YOLO images/train), to reproduce a published split; every image needs one, else an error says how many lack "
        "it (none is put in train silently); near-duplicates across the source's splits are reported, not moved"))
    ] = "random",
    include_unannotated: bool = False,
    approved_only: Annotated[bool, typer.Option(help="only images whose review state is approved")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Freeze images, annotation revisions, classes and a split."""
    from rich.markup import escape

    from visionloop.storage.versions import create_version, version_warnings

    with _open(project) as p:
        info = create_version(p, name=name, seed=seed, fractions=(1 - val - test, val, test),
                              include_unannotated=include_unannotated, splits=splits, approved_only=approved_only)
        emit(_version_json(info), as_json=as_json, title="version")
        for warning in version_warnings(info):
            err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


@version_app.command("list")
@handle_errors
def version_list(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """All versions."""
    from visionloop.storage.versions import list_versions

    with _open(project) as p:
        rows = [{k: v for k, v in _version_json(i).items() if k in {"version", "hash", "created_at", "splits"}}
                for i in list_versions(p)]
        emit(rows, as_json=as_json, title="versions")


@version_app.command("show")
@handle_errors
def version_show(project: ProjectArg, name: str, as_json: JsonOpt = False) -> None:
    """One version's hash, splits and class counts."""
    from visionloop.storage.versions import get_version

    with _open(project) as p:
        emit(_version_json(get_version(p, name)), as_json=as_json, title=name)


@handle_errors
def derive(
    project: ProjectArg,
    version: Annotated[str, typer.Option(help="source version")],
    to: Annotated[str, typer.Option(help="detection, tagging or crops")],
    out_project: Annotated[Path, typer.Argument(help="new project directory")],
    margin: Annotated[float, typer.Option(help="crop margin, fraction of box size per side")] = 0.1,
    as_json: JsonOpt = False,
) -> None:
    """Make a new project by information reduction (masks -> boxes -> tags, boxes -> crops)."""
    from visionloop.quality.derive import derive_project

    with _open(project) as p:
        emit(_jsonable(derive_project(p, version, to=to, out=out_project, margin=margin)), as_json=as_json,
             title="derive")


@handle_errors
def serve_projects(
    projects: Annotated[list[Path], typer.Argument(help="project directories")],
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Run the platform (the web app at /, the project API, docs) for these projects; the first start creates an admin
    per project."""
    from visionloop.cli.user_cmds import announce_first_admins
    from visionloop.core.settings import Settings
    from visionloop.web import run_platform

    settings = Settings()
    announce_first_admins(projects, settings=settings, url=f"http://{host}:{port}")
    typer.echo(f"open http://{host}:{port}/ in a browser to sign in")
    run_platform(projects, host=host, port=port, settings=settings)


@handle_errors
def demo(
    project: Annotated[Path, typer.Argument(help="where to create the sample project")] = Path("data/sample-bccd"),
    source: Annotated[Path, typer.Option(help="sample data")] = Path("examples/bccd-sample"),
    host: str = "127.0.0.1",
    port: int = 8000,
    no_serve: bool = False,
    train: Annotated[bool, typer.Option("--train/--no-train", help="at the first start, train and deploy a first "
                                        "model in the background (the platform's job queue)")] = True,
) -> None:
    """Create (once) the sample BCCD project from examples/, then serve it.

    At the first start the sample also gets its first model: a dataset version ``v1`` and a training job with the
    task's defaults (on the sample's 85 training images: 12 epochs at 320 px; measured test mAP50 0.83: WBC 0.90,
    RBC 0.80, platelets 0.80), evaluated, packaged and deployed when done, so a newcomer sees predictions in the
    editor; the job runs in the server's background queue, with its progress on the Jobs and Train pages.
    """
    from visionloop.ingest import import_source
    from visionloop.storage import Project
    from visionloop.storage.jobs import create_job
    from visionloop.storage.versions import create_version

    new = not (project / "visionloop.toml").exists()
    p = Project.create(project, task="detection") if new else Project.open(project)
    with p:
        report = import_source(p, source, progress=True)
        typer.echo(f"sample project {project}: {p.stats()['images']} images, {report.images_added} new")
        if new and train:
            version = create_version(p, seed=0, author="demo")
            create_job(p, kind="train", params={"version": version.name, "deploy": True},
                       created_by="demo")
            typer.echo(f"a first model trains in the background on {version.name}: follow it on the Jobs page")
    if not no_serve:
        serve_projects([project], host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("import")(import_)
    app.command("export")(export)
    app.command("stats")(stats)
    app.add_typer(classes_app, name="classes")
    app.add_typer(version_app, name="version")
    app.command("derive")(derive)
    app.command("serve-projects")(serve_projects)
    app.command("demo")(demo)
