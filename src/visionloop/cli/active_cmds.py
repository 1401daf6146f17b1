"""``visionloop next``: the unlabelled images to label next, in active-learning order.

The ranking is :func:`visionloop.active.next.rank_unlabelled`; this module parses, calls and prints (a table for
people, ``--json`` for scripts and the platform's jobs). Progress of the predictions goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from visionloop.active.next import DEFAULT_BACKBONE, MAX_N, Diversity, Strategy
from visionloop.cli.output import console, emit, err_console, handle_errors

__all__ = ["next_images", "register"]


@handle_errors
def next_images(
    project: Annotated[Path, typer.Argument(help="project directory")],
    n: Annotated[int, typer.Option("--n", min=1, max=MAX_N, help="how many images")] = 100,
    strategy: Annotated[Strategy, typer.Option(
        "--strategy", help="auto: entropy with a model, typiclust (cold start) without; entropy, margin, "
        "least_confidence: the model's uncertainty; typiclust: typical images of clusters; random")] = Strategy.AUTO,
    diversity: Annotated[Diversity, typer.Option(
        "--diversity", help="cluster: the middles of clusters of the most uncertain (weighted KMeans); kcenter: "
        "k-center greedy over them; both keep a batch from being near-copies; none: the most uncertain as they "
        "come")] = Diversity.CLUSTER,
    package: Annotated[str | None, typer.Option(
        "--package", help="a package folder or a name under PROJECT/packages (default: the deployed package)")] = None,
    run: Annotated[str | None, typer.Option("--run", help="a training run id, its own model (needs torch)")] = None,
    backbone: Annotated[str, typer.Option(
        "--backbone", help="whose stored embeddings diversity and the cold start read (visionloop embed "
        "--backbone)")] = DEFAULT_BACKBONE,
    factor: Annotated[int | None, typer.Option("--candidates", min=1, max=100, help="the diversity step chooses "
                                               "among this many times N of the most uncertain images (default: 10 "
                                               "for cluster, 5 for kcenter)")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="seeds random, the pool sample and the clustering")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The N unlabelled images (not gold, not in open work) to label next, most useful first: by the model's
    uncertainty with a diversity step, or typical images for a cold start when the project has no model yet."""
    from visionloop.active.next import rank_unlabelled
    from visionloop.storage import Project

    def progress(done: int, total: int) -> None:
        if done == total or done % 512 < 32:
            err_console.print(f"predicted {done}/{total} images", highlight=False)

    with Project.open(project) as p:
        out = rank_unlabelled(p, n=n, strategy=strategy, diversity=diversity, package=package, run=run,
                              backbone=backbone, factor=factor, seed=seed, progress=progress)
    if as_json:
        emit(out.to_json(), as_json=True)
        return
    model = f"{out.model['source']} {out.model['name']}" if out.model else "none"
    console.print(f"strategy [bold]{out.strategy}[/bold]" + (f" + {out.diversity}" if out.diversity != "none" else "")
                  + f", model {model}; {len(out.results)} of {out.pool} unlabelled images", highlight=False)
    for note in out.notes:
        console.print(f"[yellow]{note}[/yellow]", highlight=False)
    emit([{"rank": k + 1, "id": r.id, "name": r.name, "score": f"{r.score:.4f}", "reason": r.reason}
          for k, r in enumerate(out.results)] or "nothing to label", as_json=False, title="next")


def register(app: typer.Typer) -> None:
    app.command("next")(next_images)
