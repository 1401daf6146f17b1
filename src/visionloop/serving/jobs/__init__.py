"""Background jobs of the platform server: heavy work (import, export, training, evaluation, packages) run one at a
time as ``visionloop`` commands in child processes, recorded in the project database (:mod:`visionloop.storage.jobs`).
"""

from visionloop.serving.jobs.kinds import KINDS, JobKind, Step, job_dir, package_dir
from visionloop.serving.jobs.queue import FollowUp, JobQueue
from visionloop.serving.jobs.runner import StopRequest, run_steps

__all__ = ["KINDS", "FollowUp", "JobKind", "JobQueue", "Step", "StopRequest", "job_dir", "package_dir", "run_steps"]
