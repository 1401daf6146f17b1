"""Background jobs of the platform: real ``visionloop`` commands in child processes, through the HTTP API.

A job is polled until it ends within a generous bound (a stuck job fails the test instead of hanging it); nothing
asserts how long anything took.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.serving.jobs.kinds import JOBS_DIR
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import Project
from visionloop.storage import jobs as store
from visionloop.storage.jobs import JobState
from visionloop.storage.users import Role
from visionloop.storage.versions import create_version

API = "/api/v1"
SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"
BOUND_S = 300.0
"""Longest a job of these tests may take on a loaded machine before the test calls it stuck."""


def sample_files(n: int) -> list[tuple[str, bytes]]:
    """(relative name, bytes) of the first ``n`` BCCD sample images and their VOC annotations."""
    out = []
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:n]:
        out.append((f"BCCD/Annotations/{xml.name}", xml.read_bytes()))
        jpg = SAMPLE / "JPEGImages" / f"{xml.stem}.jpg"
        out.append((f"BCCD/JPEGImages/{jpg.name}", jpg.read_bytes()))
    return out


@dataclass
class Platform:
    client: TestClient
    project: Project
    admin: dict[str, str]
    viewer: dict[str, str]

    def url(self, path: str) -> str:
        return f"{API}/projects/{self.project.name}{path}"

    def wait(self, job_id: int, *, until: set[str] | None = None) -> dict:
        """Poll the job until it is in one of ``until`` (default: any final state)."""
        until = until or {"done", "failed", "cancelled", "interrupted"}
        deadline = time.monotonic() + BOUND_S
        while True:
            job = self.client.get(self.url(f"/jobs/{job_id}"), headers=self.viewer).json()
            if job["state"] in until:
                return job
            assert time.monotonic() < deadline, f"job {job_id} is stuck: {job}"
            time.sleep(0.2)


def make_platform(root: Path, settings: Settings) -> Iterator[Platform]:
    project = Project.create(root / "cells", task="detection")
    with TestClient(create_app(root, settings=settings)) as client:
        served = client.app.state.projects.get("cells")
        yield Platform(client, served, bearer_headers(served, Role.ADMIN), bearer_headers(served, Role.VIEWER))
    project.close()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    yield from make_platform(tmp_path, Settings(job_threads=1))


def upload(platform: Platform, files: list[tuple[str, bytes]], **fields: str):
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return platform.client.post(platform.url("/imports"), files=parts, data=fields, headers=platform.admin)


def test_import_export_download_through_jobs(platform: Platform) -> None:
    started = upload(platform, sample_files(4))
    assert started.status_code == 202, started.text
    job = platform.wait(started.json()["id"])
    assert job["state"] == "done", job
    report = job["result"]
    assert report["images_added"] == 4 and report["format"] == "voc" and report["problems"] == []
    assert "source" not in report  # no path of the server's disk reaches a client
    assert job["progress"]["fraction"] == 1.0 and job["created_by"] == "admin-user"
    assert platform.project.count_images() == 4
    job_folder = Path(platform.project.root) / JOBS_DIR / str(job["id"])
    assert not (job_folder / "upload").exists()  # the uploaded copy is removed once imported

    exported = platform.client.post(platform.url("/exports"), json={"format": "coco"}, headers=platform.admin)
    assert exported.status_code == 202, exported.text
    done = platform.wait(exported.json()["id"])
    assert done["state"] == "done" and done["result"]["images"] == 4, done
    zipped = platform.client.get(platform.url(f"/exports/{done['id']}/download"), headers=platform.viewer)
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert any(n.endswith(".json") for n in names) and sum(n.endswith(".jpg") for n in names) == 4

    listed = platform.client.get(platform.url("/jobs"), headers=platform.viewer).json()
    assert [j["kind"] for j in listed] == ["export", "import"] and listed[0]["log"] is None
    unknown = platform.client.post(platform.url("/exports"), json={"format": "nope"}, headers=platform.admin)
    assert unknown.status_code == 404 and "coco" in unknown.json()["choices"]


def test_upload_names_leading_out_are_refused_and_nothing_is_kept(platform: Platform) -> None:
    for bad in ("../evil.jpg", "/etc/evil.jpg", "a/../../evil.jpg", "C:/evil.jpg"):
        r = upload(platform, [("ok.jpg", b"x"), (bad, b"x")])
        assert r.status_code == 400, (bad, r.text)
        assert "file name refused" in r.json()["detail"] and "unsafe path" in r.json()["detail"]
    jobs_root = Path(platform.project.root) / JOBS_DIR
    assert not jobs_root.exists() or list(jobs_root.iterdir()) == []
    assert not (Path(platform.project.root).parent / "evil.jpg").exists()
    assert store.list_jobs(platform.project) == []
    not_multipart = platform.client.post(platform.url("/imports"), json={"files": []}, headers=platform.admin)
    assert not_multipart.status_code == 400 and "multipart/form-data" in not_multipart.json()["detail"]


def test_an_archive_with_an_entry_leading_out_imports_the_rest(platform: Platform) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in sample_files(2):
            z.writestr(name, data)
        z.writestr("../../escaped.txt", b"outside")
    r = upload(platform, [("cells.zip", buf.getvalue())])
    assert r.status_code == 202, r.text
    job = platform.wait(r.json()["id"])
    assert job["state"] == "done", job
    assert job["result"]["images_added"] == 2
    assert any("escaped" in p["path"] for p in job["result"]["problems"]), job["result"]["problems"]
    assert not (Path(platform.project.root).parent / "escaped.txt").exists()


def test_oversize_upload_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    for platform in make_platform(tmp_path, Settings(job_threads=1, import_max_bytes=10_000)):
        r = upload(platform, [("big.jpg", b"x" * 20_000)])
        assert r.status_code == 413 and "import_max_bytes" in r.json()["detail"], r.text
        small = platform.client.post(platform.url("/exports"), content=b"x" * 100, headers=platform.admin)
        assert small.status_code != 413  # other routes keep the API's own limit
        assert store.list_jobs(platform.project) == []


def test_cancel_stops_the_child_and_a_second_job_waits_its_turn(platform: Platform) -> None:
    for name, data in sample_files(6):
        (Path(platform.project.root) / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(platform.project.root) / "in" / name).write_bytes(data)
    import_source(platform.project, Path(platform.project.root) / "in")
    create_version(platform.project, name="v1")
    strategy = platform.client.post(platform.url("/runs"), json={"version": "v1", "strategy": "linear"},
                                    headers=platform.admin)
    assert strategy.status_code == 409 and "fine-tuned end to end" in strategy.json()["detail"]
    train = platform.client.post(platform.url("/runs"), json={"version": "v1", "epochs": 50, "image_size": 128},
                                 headers=platform.admin)
    assert train.status_code == 202, train.text
    export = platform.client.post(platform.url("/exports"), json={"format": "yolo"}, headers=platform.admin).json()
    running = platform.wait(train.json()["id"], until={"running"})
    pid = store.get_job(platform.project, running["id"]).pid
    deadline = time.monotonic() + BOUND_S
    while pid is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
        pid = store.get_job(platform.project, running["id"]).pid
    assert platform.client.get(platform.url(f"/jobs/{export['id']}"), headers=platform.viewer).json()["state"] == \
        "queued"  # one heavy job at a time
    niced = min(19, os.getpriority(os.PRIO_PROCESS, 0) + Settings().job_nice)
    while os.getpriority(os.PRIO_PROCESS, pid) != niced:  # the child lowers its priority as its first step
        assert time.monotonic() < deadline
        time.sleep(0.05)
    environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    assert environ["OMP_NUM_THREADS"] == "1" and environ["VISIONLOOP_PROGRESS_FILE"].endswith("progress.jsonl")
    viewer_cancel = platform.client.post(platform.url(f"/jobs/{running['id']}/cancel"), headers=platform.viewer)
    assert viewer_cancel.status_code == 403
    assert platform.client.post(platform.url(f"/jobs/{running['id']}/cancel"),
                                headers=platform.admin).status_code == 200
    cancelled = platform.wait(running["id"])
    assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled by admin-user", cancelled
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the child and its process group are gone
    after = platform.wait(export["id"])
    assert after["state"] == "done", after
    first = store.get_job(platform.project, running["id"])
    second = store.get_job(platform.project, export["id"])
    assert second.started_at >= first.finished_at
    again = platform.client.post(platform.url(f"/jobs/{running['id']}/cancel"), headers=platform.admin)
    assert again.status_code == 409 and "nothing to cancel" in again.json()["detail"]


def test_a_restart_marks_running_jobs_interrupted_and_runs_queued_ones(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "cells", task="detection")
    was_running = store.create_job(project, kind="train", params={"version": "v1"}, created_by="ann")
    store.start_job(project, was_running.id, pid=999_999)
    waiting = store.create_job(project, kind="export", params={"format": "coco"}, created_by="ann")
    project.close()
    with TestClient(create_app(tmp_path / "cells", settings=Settings(job_threads=1))) as client:
        served = client.app.state.projects.get("cells")
        headers = bearer_headers(served, Role.VIEWER)
        got = client.get(f"{API}/projects/cells/jobs/{was_running.id}", headers=headers).json()
        assert got["state"] == "interrupted" and "resume" in got["error"]
        deadline = time.monotonic() + BOUND_S
        while store.get_job(served, waiting.id).state is not JobState.DONE:
            assert time.monotonic() < deadline and not store.get_job(served, waiting.id).final
            time.sleep(0.2)


def test_upload_limit_over_real_http(tmp_path: Path) -> None:
    from visionloop.serving.projects_api.server import ServerThread

    project = Project.create(tmp_path / "cells", task="detection")
    headers = bearer_headers(project, Role.ADMIN)
    project.close()
    url = f"{API}/projects/cells/imports"
    with ServerThread(tmp_path, settings=Settings(job_threads=1, import_max_bytes=50_000)) as server, \
            httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        sized = http.post(url, files=[("files", ("big.jpg", b"x" * 60_000))])
        assert sized.status_code == 413 and "import_max_bytes" in sized.json()["detail"], sized.text

        boundary = "vlboundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode()

        def chunked():  # no Content-Length: the limit is found while the body arrives
            yield head
            for _ in range(20):
                yield b"x" * 5_000
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = http.post(url, content=chunked(),
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert streamed.status_code == 413 and "import_max_bytes" in streamed.json()["detail"], streamed.text
        small = http.post(url, files=[("files", (n, d)) for n, d in sample_files(1)])
        assert small.status_code == 202, small.text
        jobs_root = tmp_path / "cells" / JOBS_DIR
        assert [p.name for p in jobs_root.iterdir()] == [str(small.json()["id"])]  # nothing left of the refused


def test_a_job_gets_the_servers_settings_but_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import SecretStr

    from visionloop.serving.jobs.runner import child_env

    monkeypatch.setenv("VISIONLOOP_ADMIN_PASSWORD", "s3cret")
    settings = Settings(job_threads=3, max_image_pixels=123, admin_password=SecretStr("s3cret"), weights_dir=None)
    env = child_env(settings, tmp_path / "progress.jsonl")
    assert env["VISIONLOOP_MAX_IMAGE_PIXELS"] == "123" and env["OMP_NUM_THREADS"] == "3"
    assert env["VISIONLOOP_PROGRESS_FILE"] == str(tmp_path / "progress.jsonl")
    assert "VISIONLOOP_ADMIN_PASSWORD" not in env and "VISIONLOOP_WEIGHTS_DIR" not in env


def test_the_queue_and_the_kept_exports_are_bounded(tmp_path: Path) -> None:
    from visionloop.core.errors import ConflictError
    from visionloop.serving.jobs import JobQueue
    from visionloop.serving.projects_api.project_registry import ProjectRegistry

    Project.create(tmp_path / "cells", task="detection").close()
    registry = ProjectRegistry.open([tmp_path / "cells"], settings=Settings())
    try:
        idle = JobQueue(registry, Settings(job_max_queued=1))  # not started: nothing takes jobs off it
        project = registry.get("cells")
        idle.submit(project, kind="export", params={"format": "coco"}, created_by="ann")
        with pytest.raises(ConflictError, match="job_max_queued"):
            idle.submit(project, kind="export", params={"format": "coco"}, created_by="ann")
        assert len(store.list_jobs(project)) == 1
    finally:
        registry.close()

    for platform in make_platform(tmp_path / "keep", Settings(job_threads=1, job_keep_exports=1)):
        ids = []
        for fmt in ("coco", "yolo"):
            made = platform.client.post(platform.url("/exports"), json={"format": fmt}, headers=platform.admin)
            ids.append(platform.wait(made.json()["id"])["id"])
        old = platform.client.get(platform.url(f"/exports/{ids[0]}/download"), headers=platform.viewer)
        assert old.status_code == 404 and "export again" in old.json()["detail"]
        assert platform.client.get(platform.url(f"/exports/{ids[1]}/download"),
                                   headers=platform.viewer).status_code == 200


def test_a_failed_job_names_no_path_of_the_server(platform: Platform) -> None:
    started = upload(platform, [("notes/readme.txt", b"no images here")])
    assert started.status_code == 202, started.text
    job = platform.client.get(platform.url(f"/jobs/{platform.wait(started.json()['id'])['id']}"),
                              headers=platform.admin).json()
    assert job["state"] == "failed" and job["error"], job
    root = str(Path(platform.project.root).resolve())
    assert root not in job["error"] and root not in (job["log"] or ""), job
    assert "upload" in job["error"]  # the folder is still named, relative to the project


def test_jobs_work_for_a_project_served_by_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``visionloop demo data/sample-bccd`` serves a relative path, while a job's command runs in the project folder."""
    monkeypatch.chdir(tmp_path)
    Project.create(Path("data") / "cells", task="detection").close()
    with TestClient(create_app(Path("data") / "cells", settings=Settings(job_threads=1))) as client:
        served = client.app.state.projects.get("cells")
        platform = Platform(client, served, bearer_headers(served, Role.ADMIN), bearer_headers(served, Role.VIEWER))
        started = upload(platform, sample_files(2))
        assert started.status_code == 202, started.text
        job = platform.wait(started.json()["id"])
        assert job["state"] == "done" and job["result"]["images_added"] == 2, job
