"""Training: a small loop with hooks, run directories, strategies, and ``train`` for every task."""

from visionloop.training.api import train
from visionloop.training.runs import RunConfig, RunResult, list_runs, load_run

__all__ = ["RunConfig", "RunResult", "list_runs", "load_run", "train"]
