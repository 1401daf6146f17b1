"""The jobs page: every job with its state, live progress, and cancel; the top bar shows the running one.

The jobs are recorded in the project's database the way the job queue records them (``storage.jobs``); the queue
only runs what is submitted to it, so these rows stay as the test sets them.
"""

from __future__ import annotations

from tests.web.conftest import PROJECT, USER_PASSWORD, sign_in
from visionloop.storage import jobs as store
from visionloop.storage.jobs import JobState


def test_jobs_page_live_progress_and_cancel(page, served, shot):
    project = served.server.app.state.projects.get(served.name)
    done = store.create_job(project, kind="export", params={"format": "coco"}, created_by="admin")
    store.start_job(project, done.id)
    store.finish_job(project, done.id, JobState.DONE, result={"images": 12})
    failed = store.create_job(project, kind="import", params={}, created_by="admin")
    store.finish_job(project, failed.id, JobState.FAILED, error="no images found in the upload: drop image files")
    running = store.create_job(project, kind="train", params={"version": "v1"}, created_by="admin")
    store.start_job(project, running.id)
    store.update_job(project, running.id, progress={"fraction": 0.25, "message": "epoch 1/4", "run": "r1"})

    page.goto(f"{served.url}/#/p/{PROJECT}/jobs")
    row = page.locator(f"tr[data-job='{running.id}']")
    row.wait_for()
    assert row.get_attribute("data-state") == "running"
    assert "epoch 1/4" in row.inner_text() and "25%" in row.inner_text()
    assert "Run r1" in row.inner_text()  # the run's page is linked while it trains
    assert "Download zip" in page.locator(f"tr[data-job='{done.id}']").inner_text()
    assert "no images found" in page.locator(f"tr[data-job='{failed.id}']").inner_text()
    # the top bar shows the running job
    indicator = page.locator("#job-indicator")
    indicator.wait_for(state="visible")
    assert "Training 25%" in indicator.inner_text()

    # progress moves without a reload
    store.update_job(project, running.id, progress={"fraction": 0.75, "message": "epoch 3/4", "run": "r1"})
    row.filter(has_text="epoch 3/4").wait_for()
    indicator.filter(has_text="Training 75%").wait_for()  # the top bar follows the page
    shot(page, "jobs")

    # cancel asks first, then the job ends as cancelled
    row.locator("button", has_text="Stop").click()
    page.locator(".modal button.danger").click()
    page.locator(f"tr[data-job='{running.id}'][data-state='cancelled']").wait_for()
    assert store.get_job(project, running.id).state is JobState.CANCELLED
    indicator.wait_for(state="hidden")

    # the details show the parameters and the error
    page.locator(f"tr[data-job='{failed.id}'] .link-button").click()
    page.locator(".modal .error-box", has_text="no images found").wait_for()


def test_a_viewer_sees_jobs_but_cannot_cancel(new_page, served):
    project = served.server.app.state.projects.get(served.name)
    queued = store.create_job(project, kind="export", params={"format": "voc"}, created_by="admin")
    served.add_user("vic", "viewer")
    page = new_page()
    sign_in(page, served.url, "vic", USER_PASSWORD)
    page.goto(f"{served.url}/#/p/{PROJECT}/jobs")
    row = page.locator(f"tr[data-job='{queued.id}']")
    row.wait_for()
    assert row.get_attribute("data-state") == "queued"
    assert row.locator("button", has_text="Cancel").count() == 0
    store.finish_job(project, queued.id, JobState.CANCELLED, error="test over")
