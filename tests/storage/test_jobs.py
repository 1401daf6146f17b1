"""The jobs table: states move by compare-and-set, the first end wins, a restart marks running jobs interrupted."""

from __future__ import annotations

import pytest

from visionloop.core.errors import NotFoundError
from visionloop.storage import jobs
from visionloop.storage.jobs import JobState


def test_job_states_move_once(project_factory):
    p = project_factory("detection")
    a = jobs.create_job(p, kind="export", params={"format": "coco"}, created_by="ann")
    assert a.state is JobState.QUEUED and a.params == {"format": "coco"} and a.created_by == "ann"
    assert jobs.start_job(p, a.id, pid=123)
    assert not jobs.start_job(p, a.id)  # running already
    assert jobs.update_job(p, a.id, progress={"fraction": 0.5, "message": "half"}, log="line\n")
    assert jobs.finish_job(p, a.id, JobState.DONE, result={"images": 3})
    assert not jobs.finish_job(p, a.id, JobState.CANCELLED)  # the first end wins
    assert not jobs.update_job(p, a.id, log="late")
    done = jobs.get_job(p, a.id)
    assert (done.state, done.result, done.log, done.pid) == (JobState.DONE, {"images": 3}, "line\n", 123)
    assert done.final and done.finished_at is not None and done.started_at is not None

    b = jobs.create_job(p, kind="train", params={}, created_by="ann")
    assert jobs.finish_job(p, b.id, JobState.CANCELLED, error="cancelled by ann")
    assert not jobs.start_job(p, b.id)  # a job cancelled while queued never starts
    assert [j.id for j in jobs.list_jobs(p)] == [b.id, a.id]
    assert [j.id for j in jobs.list_jobs(p, kind="export")] == [a.id]
    with pytest.raises(ValueError, match="final"):
        jobs.finish_job(p, b.id, JobState.RUNNING)
    with pytest.raises(NotFoundError):
        jobs.get_job(p, 999)


def test_restart_marks_running_jobs_interrupted(project_factory):
    p = project_factory("detection")
    running = jobs.create_job(p, kind="train", params={}, created_by="x")
    waiting = jobs.create_job(p, kind="export", params={}, created_by="x")
    jobs.start_job(p, running.id, pid=1)
    assert jobs.interrupt_running(p) == [running.id]
    assert jobs.get_job(p, running.id).state is JobState.INTERRUPTED
    assert "resume" in (jobs.get_job(p, running.id).error or "")
    assert [j.id for j in jobs.queued_jobs(p)] == [waiting.id]
