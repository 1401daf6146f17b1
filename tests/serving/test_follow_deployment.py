"""Follow mode against a real platform: a model server follows the package deployed in a project (deploy, rollback by
the API and by ``visionloop deploy rollback``, a refused package), and the deployment history and package download
routes of the project API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.deploy_fixtures import CELL_SIZE, jpeg_bytes
from tests.serving.conftest import bearer_headers
from tests.serving.test_serve_cli import free_port
from visionloop.cli.main import app as cli
from visionloop.core.package import load_package
from visionloop.core.settings import Settings
from visionloop.serving.model_server.app import create_inference_app
from visionloop.serving.model_server.follow import FollowSettings, fetch_deployed_package
from visionloop.serving.model_server.server import InferenceServerThread
from visionloop.serving.projects_api.server import ServerThread
from visionloop.storage import Project
from visionloop.storage.users import Role

API = "/api/v1/projects/cells"


def unpack(archive: Path, out: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(out)
    return out


@pytest.fixture
def project_root(tmp_path: Path, cell_package: Path, cell_package_v2: Path, detector_package: Path) -> Path:
    with Project.create(tmp_path / "cells", task="classification"):
        pass
    packages = tmp_path / "cells" / "packages"
    unpack(cell_package, packages / "v1")
    unpack(cell_package_v2, packages / "v2")
    shutil.copytree(detector_package, packages / "detector")
    return tmp_path / "cells"


def wait_until(check: Callable[[], bool], *, what: str, timeout: float = 90.0) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` did not happen (a wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


def test_a_model_server_follows_the_projects_deployment(project_root: Path, cell_data) -> None:  # noqa: ANN001
    with Project.open(project_root) as p:
        admin, viewer = bearer_headers(p, Role.ADMIN), bearer_headers(p, Role.VIEWER)
    v1, v2 = (load_package(project_root / "packages" / k).manifest.model_sha256[:12] for k in ("v1", "v2"))
    image = jpeg_bytes(cell_data.val[0][0].resize(CELL_SIZE))
    with ServerThread(project_root, settings=Settings()) as platform, httpx.Client(
            base_url=platform.url, timeout=120) as web:
        assert web.get(f"{API}/deployment/package", headers=viewer).status_code == 404  # nothing deployed yet
        assert web.post(f"{API}/deployment/rollback", headers=admin).status_code == 409  # nothing to go back to
        first = web.post(f"{API}/deployment", json={"package": "v1"}, headers=admin).json()
        assert first["package_version"] == v1 and first["previous"] is None and first["run_id"] == "run-1"
        assert web.post(f"{API}/deployment/rollback", headers=admin).status_code == 409  # nothing before v1

        settings = FollowSettings(project_url=f"{platform.url}{API}", token=viewer["Authorization"][7:],
                                  model="cells", interval_s=0.2)
        pkg = fetch_deployed_package(settings, project_root.parent / "downloaded.vlpkg")
        assert pkg.manifest.model_sha256[:12] == v1
        server_app = create_inference_app({"cells": pkg}, sessions=1, follow=settings)
        follower = server_app.state.follower
        with InferenceServerThread(server_app) as server, httpx.Client(base_url=server.url, timeout=120) as ms:
            def serving() -> str:
                return ms.get("/v1/models/cells").json()["package_version"]

            assert serving() == v1
            second = web.post(f"{API}/deployment", json={"package": "v2"}, headers=admin).json()
            assert second["previous"]["package"] == "v1" and second["previous"]["package_version"] == v1
            wait_until(lambda: serving() == v2, what="the model server taking v2")
            answer = ms.post("/v1/models/cells/predict", content=image).json()
            assert (answer["package_version"], answer["run_id"]) == (v2, "run-2")

            back = web.post(f"{API}/deployment/rollback", headers=admin)
            assert back.status_code == 200 and back.json()["package"] == "v1"
            assert back.json()["previous"]["package"] == "v2" and back.json()["history"][0]["package"] == "v2"
            wait_until(lambda: serving() == v1, what="the model server rolling back to v1")
            history = server_app.state.model_server.control.history
            assert history[-1]["action"] == "rollback"  # served.previous was v2: no download

            rolled = CliRunner().invoke(cli, ["deploy", "rollback", str(project_root), "--by", "ops", "--json"])
            assert rolled.exit_code == 0, rolled.output
            assert json.loads(rolled.output)["package"] == "v2"
            # the platform picks the file's change up at its next request; the follower then rolls forward to v2
            assert web.get(f"{API}/deployment", headers=viewer).json()["deployed_by"] == "ops"
            wait_until(lambda: serving() == v2, what="the model server following the CLI's rollback")
            shown = CliRunner().invoke(cli, ["deploy", "show", str(project_root), "--json"])
            assert json.loads(shown.output)["previous"]["package"] == "v1"

            changes = follower.changes
            web.post(f"{API}/deployment", json={"package": "detector"}, headers=admin).raise_for_status()
            wait_until(lambda: follower.last_error is not None, what="the follower refusing the detector")
            assert "detection" in follower.last_error and serving() == v2 and follower.changes == changes
            follows = ms.get("/v1/models/cells").json()["follows"]
            assert follows["project_url"] == f"{platform.url}{API}" and "detection" in follows["last_error"]
            assert ms.post("/v1/models/cells/predict", content=image).json()["package_version"] == v2


def test_deployment_package_and_rollback_routes(project_root: Path) -> None:
    with Project.open(project_root) as p:
        admin, viewer = bearer_headers(p, Role.ADMIN), bearer_headers(p, Role.VIEWER)
    with ServerThread(project_root, settings=Settings()) as platform, httpx.Client(
            base_url=platform.url, timeout=120) as web:
        web.post(f"{API}/deployment", json={"package": "v1"}, headers=admin).raise_for_status()
        web.post(f"{API}/deployment", json={"package": "v2"}, headers=admin).raise_for_status()
        assert web.get(f"{API}/deployment/package").status_code == 401
        assert web.post(f"{API}/deployment/rollback").status_code == 401
        assert web.post(f"{API}/deployment/rollback", headers=viewer).status_code == 403
        got = web.get(f"{API}/deployment/package", headers=viewer)
        assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
        archive = project_root.parent / "got.vlpkg"
        archive.write_bytes(got.content)
        assert load_package(archive).manifest.model_sha256[:12] == got.headers["x-package-version"]
        assert load_package(archive).manifest.run_id == "run-2"
        # a package folder overwritten with another model is not rolled back to by name alone
        shutil.rmtree(project_root / "packages" / "v1")
        shutil.copytree(project_root / "packages" / "detector", project_root / "packages" / "v1")
        refused = web.post(f"{API}/deployment/rollback", headers=admin)
        assert refused.status_code == 409 and "another model" in refused.json()["detail"]
        assert web.get(f"{API}/deployment", headers=viewer).json()["package"] == "v2"


def test_serve_command_follows_a_project_with_control_and_canary(project_root: Path, cell_package_v2: Path) -> None:
    """``visionloop serve --follow`` with no package serves the deployed one; --admin-token opens control;
    --canary starts a challenger; a malformed --canary is a one-line error."""
    with Project.open(project_root) as p:
        admin, viewer = bearer_headers(p, Role.ADMIN), bearer_headers(p, Role.VIEWER)
    v1 = load_package(project_root / "packages" / "v1").manifest.model_sha256[:12]
    cmd = [sys.executable, "-c", "from visionloop.cli.main import main; main()", "serve"]
    bad = subprocess.run([*cmd, f"cells={cell_package_v2}", "--canary", "cells=nowhere"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0 and "NAME=PATH:SHARE" in bad.stderr
    with ServerThread(project_root, settings=Settings()) as platform:
        httpx.post(f"{platform.url}{API}/deployment", json={"package": "v1"}, headers=admin,
                   timeout=120).raise_for_status()
        port = free_port()
        proc = subprocess.Popen(
            [*cmd, "--follow", f"{platform.url}{API}", "--follow-token", viewer["Authorization"][7:],
             "--follow-model", "cells", "--port", str(port), "--sessions", "1", "--admin-token", "adm",
             "--canary", f"cells={cell_package_v2}:0.5"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            def ready() -> bool:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                try:
                    return httpx.get(f"{url}/ready", timeout=5).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(ready, what="the model server starting")
            info = httpx.get(f"{url}/v1/models/cells", timeout=30).json()
            assert info["package_version"] == v1 and info["canary"]["share"] == 0.5
            assert httpx.post(f"{url}/v1/models/cells/rollback", timeout=30).status_code == 401
            nothing = httpx.post(f"{url}/v1/models/cells/rollback", headers={"Authorization": "Bearer adm"},
                                 timeout=30)
            assert nothing.status_code == 409 and "no previous package" in nothing.json()["detail"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
