"""Training: a small loop with hooks, strategies, and ``train`` for every task (run records: ``storage.runs``)."""

from visionloop.models.runs import load_run
from visionloop.storage.runs import RunConfig, RunResult, list_runs
from visionloop.training.api import train

__all__ = ["RunConfig", "RunResult", "list_runs", "load_run", "train"]
