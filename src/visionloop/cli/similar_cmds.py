"""``visionloop embed | similar | duplicates | outliers``: embeddings of a project's images and what they find.

``embed`` computes what is missing (new imports; a new head annotation's boxes for crops) and drops deleted images;
the other commands run it first, so their answers cover every image. Progress goes to stderr, ``--json`` to stdout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, err_console, handle_errors
from visionloop.storage.embeddings import backbone_key

__all__ = ["duplicates", "embed", "outliers", "register", "similar"]

ProjectArg = Annotated[Path, typer.Argument(help="project directory")]
BackboneOpt = Annotated[str, typer.Option(
    "--backbone", help="a timm/torchvision classifier name (ImageNet weights; offline for tf_efficientnet_lite0 and "
    "mobilenet_v2) or run:<run-id> for a training run's backbone")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
DEFAULT = "tf_efficientnet_lite0"


@contextmanager
def _progress(label: str, p: Any) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, and the job's progress file when the platform runs the command."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from visionloop.core.progress import progress_file

    stream = progress_file(p.settings.progress_file)
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if stream is not None:
                stream.write(fraction=done / total if total else 1.0, message=f"{label} {done}/{total} images",
                             force=done == total)

        yield update


def _update(p: Any, backbone: str, *, kinds: list[str], recompute: bool = False, batch_size: int = 32) -> list[Any]:
    from visionloop.models.embed import embed_project, load_embedder

    embedder = load_embedder(backbone, project=p)
    reports = []
    for kind in kinds:
        with _progress(f"embedding {kind}", p) as progress:
            reports.append(embed_project(p, embedder, kind=kind, recompute=recompute, batch_size=batch_size,
                                         progress=progress))
    return reports


def _crop_kinds(p: Any, crops: bool | None) -> list[str]:
    from visionloop.core.task import Task

    return ["images", "crops"] if (p.task in (Task.DETECTION, Task.SEGMENTATION) if crops is None else crops) \
        else ["images"]


@handle_errors
def embed(
    project: ProjectArg,
    backbone: BackboneOpt = DEFAULT,
    crops: Annotated[bool | None, typer.Option("--crops/--no-crops", help="also embed every box of the head "
                                               "annotations (default: for detection projects)")] = None,
    recompute: Annotated[bool, typer.Option("--recompute", help="drop the stored vectors and embed everything "
                                            "again (after a change of backbone weights or preprocessing)")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=512)] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Compute the embeddings the project lacks (new images, changed boxes) and drop those of deleted images;
    stored under PROJECT/embeddings/<backbone>/."""
    from visionloop.storage import Project

    with Project.open(project) as p:
        reports = _update(p, backbone, kinds=_crop_kinds(p, crops), recompute=recompute, batch_size=batch_size)
    out = {"backbone": reports[0].key, "sets": [r.to_json() for r in reports]}
    emit(out, as_json=as_json, title="embed")
    if any(r.failed for r in reports):
        err_console.print(f"[yellow]{sum(len(r.failed) for r in reports)} images could not be read[/yellow]")


def _find_image(p: Any, ref: str) -> Any:
    """An image of the project by id or by file name (the first with that name)."""
    from visionloop.core.errors import NotFoundError

    if ref.isdigit():
        return p.image(int(ref))
    name = Path(ref).name
    offset = 0
    while True:
        page = p.images(offset=offset, limit=5000)
        hit = next((im for im in page if im.name == ref or Path(im.name).name == name), None)
        if hit is not None:
            return hit
        if len(page) < 5000:
            raise NotFoundError("image", ref, hint="give an image id or the file name it was imported with")
        offset += 5000


@handle_errors
def similar(
    project: ProjectArg,
    image: Annotated[str, typer.Argument(help="image id, or the file name it was imported with")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="how many similar images")] = 10,
    backbone: BackboneOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """The K images most like IMAGE (cosine similarity of embeddings; exact search for small projects, FAISS for
    large ones), best first, without IMAGE itself; embeds first what is missing."""
    from visionloop.quality.similarity import similar_images
    from visionloop.storage import Project

    with Project.open(project) as p:
        query = _find_image(p, image)
        _update(p, backbone, kinds=["images"])
        out = similar_images(p, backbone_key(backbone), query.id, k=k)
    emit(out if as_json else out["results"], as_json=as_json, title=f"like {query.name}")


@handle_errors
def duplicates(
    project: ProjectArg,
    threshold: Annotated[float, typer.Option("--threshold", min=-1.0, max=1.0, help="cosine similarity of "
                                             "embeddings from which two images are candidates")] = 0.90,
    layout_threshold: Annotated[float, typer.Option(
        "--layout-threshold", min=0.0, max=1.0,
        help="agreement of the candidates' layouts (grey thumbnails) needed too; 0 turns the check off")] = 0.80,
    backbone: BackboneOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """Exact duplicates (the same bytes) and groups of near-duplicates (re-encoded, resized, slightly cropped or
    brightened copies); embeds first what is missing."""
    from visionloop.quality.duplicates import project_duplicates
    from visionloop.storage import Project

    with Project.open(project) as p:
        _update(p, backbone, kinds=["images"])
        out = project_duplicates(p, backbone_key(backbone), threshold=threshold, layout_threshold=layout_threshold)
    if as_json:
        emit(out, as_json=True)
        return
    rows = [{"kind": kind, "images": ", ".join(f"{i['id']}:{i['name']}" for i in g["images"])}
            for kind in ("exact", "near") for g in out[kind]]
    emit(rows or "no duplicates", as_json=False, title="duplicates")


@handle_errors
def outliers(
    project: ProjectArg,
    n: Annotated[int, typer.Option("--n", min=1, max=10000, help="how many images to list")] = 20,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="neighbours the score averages over")] = 10,
    backbone: BackboneOpt = DEFAULT,
    as_json: JsonOpt = False,
) -> None:
    """The N images least like the rest (largest mean cosine distance to their K nearest neighbours), most unusual
    first; embeds first what is missing."""
    from visionloop.quality.duplicates import outliers as rank_outliers
    from visionloop.quality.similarity import stored_index
    from visionloop.storage import Project
    from visionloop.storage.embeddings import EmbeddingSet

    with Project.open(project) as p:
        _update(p, backbone, kinds=["images"])
        index, _ = stored_index(EmbeddingSet(p.root, backbone_key(backbone), "images"))
        found = rank_outliers(index, n=n, k=k)
        names = {im.id: im.name for im in p.images(ids=[o.id for o in found])} if found else {}
    results = [{**o.to_json(), "name": names.get(o.id, "")} for o in found]
    if as_json:
        emit({"backbone": backbone_key(backbone), "k": k, "results": results}, as_json=True)
    else:
        emit([{"id": r["id"], "name": r["name"], "score": r["score"]} for r in results], as_json=False,
             title="outliers")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
    app.command("similar")(similar)
    app.command("duplicates")(duplicates)
    app.command("outliers")(outliers)
