"""``visionloop review PROJECT ...`` (batches, the review queue, approve, reject, gold images) and
``visionloop annotators PROJECT`` (per-annotator statistics): the library's review workflow from a shell.

Commands that record a decision name its author with ``--as`` (a user of the project).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visionloop.cli.output import emit, handle_errors

__all__ = ["annotators", "register", "review_app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
AsOpt = Annotated[str, typer.Option("--as", help="user recorded as the author")]

review_app = typer.Typer(help="Work assignment and review: batches, the review queue, approve, reject, gold images.",
                         no_args_is_help=True)
batch_app = typer.Typer(help="Batches of work assigned to annotators.", no_args_is_help=True)
review_app.add_typer(batch_app, name="batch")


@review_app.callback()
def review(ctx: typer.Context, project: Annotated[Path, typer.Argument(help="project directory")]) -> None:
    """Work assignment and review of PROJECT."""
    ctx.obj = project


def _open(ctx: typer.Context):  # noqa: ANN202
    from visionloop.storage import Project

    return Project.open(ctx.obj)


@batch_app.command("create")
@handle_errors
def batch_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="batch name")],
    annotator: Annotated[list[str], typer.Option("--annotator", "-a", help="an annotator (repeat; images are dealt "
                                                 "round-robin in this order)")],
    image: Annotated[list[int] | None, typer.Option("--image", help="an image id (repeat); default: the filter")]
    = None,
    class_: Annotated[str | None, typer.Option("--class", help="filter: images with this class")] = None,
    split: Annotated[str | None, typer.Option(help="filter: train, val, test or none (of --version)")] = None,
    version: Annotated[str | None, typer.Option(help="filter: the version --split means")] = None,
    annotated: Annotated[bool | None, typer.Option("--annotated/--unannotated", help="filter")] = None,
    review_state: Annotated[str | None, typer.Option("--review", help="filter: current review state")] = None,
    q: Annotated[str | None, typer.Option("--name-contains", help="filter: part of the file name")] = None,
    per_annotator: Annotated[int | None, typer.Option(help="at most N images per annotator")] = None,
    mode: Annotated[str, typer.Option(help="normal or consensus")] = "normal",
    k: Annotated[int, typer.Option(help="consensus: annotators per image")] = 2,
    honeypot_rate: Annotated[float, typer.Option(help="share of the queue gold images take (0..1)")] = 0.0,
    threshold: Annotated[float, typer.Option(help="consensus: agreement below which an image goes to review")]
    = 0.8,
    seed: Annotated[int, typer.Option(help="seed of the honeypot draws")] = 0,
    author: AsOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Assign images (by id, or by the image list's filters) to annotators as a new batch."""
    from visionloop.serving.projects_api.image_queries import resolve_filter
    from visionloop.storage.work import create_batch

    with _open(ctx) as p:
        where: tuple[Any, ...] = ()
        describe: dict[str, Any] = {"by": "ids" if image else "filter"}
        if not image:
            chosen = {"class": class_, "split": split, "version": version, "annotated": annotated,
                      "review": review_state, "q": q}
            describe["filter"] = {key: v for key, v in chosen.items() if v is not None}
            where = resolve_filter(p, class_=class_, split=split, version=version, annotated=annotated,
                                   review=review_state, q=q).conditions
        batch = create_batch(p, name=name, annotators=annotator, created_by=author, image_ids=image or None,
                             where=where, per_annotator=per_annotator, mode=mode, k=k, honeypot_rate=honeypot_rate,
                             agreement_threshold=threshold, seed=seed, describe=describe)
    emit(batch.to_json(), as_json=as_json, title=f"batch {batch.name}")


@batch_app.command("list")
@handle_errors
def batch_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Batches, newest first, with their counts per state."""
    from visionloop.storage.work import list_batches

    with _open(ctx) as p:
        _, batches = list_batches(p, limit=1000)
    emit([{"name": b.name, "mode": b.mode.value, "k": b.k, "honeypot_rate": b.honeypot_rate, **b.counts}
          for b in batches] if not as_json else [b.to_json() for b in batches], as_json=as_json, title="batches")


@batch_app.command("honeypot-rate")
@handle_errors
def batch_honeypot_rate(ctx: typer.Context, name: str, rate: float, as_json: JsonOpt = False) -> None:
    """Set the share of a batch's queue that gold images take (0..1)."""
    from visionloop.storage.work import set_honeypot_rate

    with _open(ctx) as p:
        emit(set_honeypot_rate(p, name, rate).to_json(), as_json=as_json, title=f"batch {name}")


@review_app.command("queue")
@handle_errors
def queue(ctx: typer.Context, offset: int = 0, limit: int = 50, as_json: JsonOpt = False) -> None:
    """Images waiting for review, oldest submission first."""
    from visionloop.storage.work import review_queue

    with _open(ctx) as p:
        total, items = review_queue(p, offset=offset, limit=limit)
    emit({"total": total, "offset": offset, "limit": limit, "items": items} if as_json else items,
         as_json=as_json, title=f"review queue ({total})")


@review_app.command("approve")
@handle_errors
def approve(ctx: typer.Context, image: Annotated[list[int], typer.Argument(help="image ids")], author: AsOpt = "cli",
            as_json: JsonOpt = False) -> None:
    """Approve images waiting for review."""
    from visionloop.storage.work import approve_images

    with _open(ctx) as p:
        emit({"changed": approve_images(p, image, author=author)}, as_json=as_json, title="approve")


@review_app.command("reject")
@handle_errors
def reject(
    ctx: typer.Context, image: Annotated[int, typer.Argument(help="image id")],
    reason: Annotated[str, typer.Option(help="what to fix")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="issue tag (repeat): missing_object, wrong_class, "
                                                  "loose_box, extra_object, wrong_mask, other")] = None,
    point: Annotated[tuple[float, float] | None, typer.Option(help="comment point X Y (pixels)")] = None,
    box: Annotated[tuple[float, float, float, float] | None, typer.Option(help="comment box X1 Y1 X2 Y2")] = None,
    author: AsOpt = "cli", as_json: JsonOpt = False,
) -> None:
    """Reject an image waiting for review; it goes back to its annotator, first in their queue."""
    from visionloop.storage.work import reject_image

    if point is not None and box is not None:
        raise typer.BadParameter("give --point or --box, not both")
    comment = {"point": list(point)} if point is not None else {"box": list(box)} if box is not None else None
    with _open(ctx) as p:
        emit({"changed": reject_image(p, image, author=author, reason=reason, tags=tag, comment=comment)},
             as_json=as_json, title="reject")


@review_app.command("gold")
@handle_errors
def gold(
    ctx: typer.Context,
    image: Annotated[int | None, typer.Argument(help="image id to mark gold (its head annotation); none: list")]
    = None,
    remove: Annotated[bool, typer.Option("--remove", help="unmark the image")] = False,
    author: AsOpt = "cli", as_json: JsonOpt = False,
) -> None:
    """Mark an image gold for honeypots (its current head annotation, by a trusted person), unmark it, or list."""
    from visionloop.storage.gold import gold_annotations, mark_gold, unmark_gold

    with _open(ctx) as p:
        if image is None:
            out: Any = [{"image_id": g.image_id, "author": g.author, "created_at": g.created_at}
                        for g in gold_annotations(p).values()]
        elif remove:
            out = {"image_id": image, "removed": unmark_gold(p, image, author=author)}
        else:
            out = mark_gold(p, image, author=author).to_json()
    emit(out, as_json=as_json, title="gold")


@handle_errors
def annotators(
    project: Annotated[Path, typer.Argument(help="project directory")],
    name: Annotated[list[str] | None, typer.Option("--name", help="only these users (repeat)")] = None,
    gap_cap: Annotated[float, typer.Option(help="longest gap between saves that counts as work (seconds)")] = 600.0,
    as_json: JsonOpt = False,
) -> None:
    """Per-annotator statistics: images and objects per hour, time per image, acceptance, honeypot score,
    agreement with others, per-day series."""
    from visionloop.storage import Project
    from visionloop.storage.annotator_stats import annotator_stats

    with Project.open(project) as p:
        stats = annotator_stats(p, names=name or None, gap_cap_s=gap_cap)
    if as_json:
        emit([s.to_json() for s in stats], as_json=True)
        return
    emit([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.to_json().items() if k != "days"}
          for s in stats], as_json=False, title="annotators")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
    app.command("annotators")(annotators)
