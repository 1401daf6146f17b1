"""The ``visionloop`` command."""

from __future__ import annotations

import typer

from visionloop.cli import (
    active_cmds,
    deploy_cmds,
    drift_cmds,
    loop_cmds,
    preannotate_cmds,
    project_cmds,
    quality_cmds,
    review_cmds,
    similar_cmds,
    tiles_cmds,
    train_cmds,
    user_cmds,
    webhook_cmds,
)

app = typer.Typer(
    name="visionloop", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="From raw images to a deployed image recognition system that keeps improving.",
)
project_cmds.register(app)
train_cmds.register(app)
deploy_cmds.register(app)
user_cmds.register(app)
tiles_cmds.register(app)
preannotate_cmds.register(app)
review_cmds.register(app)
similar_cmds.register(app)
quality_cmds.register(app)
active_cmds.register(app)
drift_cmds.register(app)
webhook_cmds.register(app)
loop_cmds.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
