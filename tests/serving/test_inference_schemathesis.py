"""The inference server's OpenAPI schema, checked by schemathesis against a live server on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from visionloop.serving.model_server.app import create_inference_app
from visionloop.serving.model_server.server import InferenceServerThread


def test_openapi_schema_holds_against_live_server(cell_package: Path, tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("schemathesis is not installed (pip install -e .[dev])")
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    app = create_inference_app({"cells": cell_package}, tokens=["tok"], sessions=1, max_pixels=4_000_000,
                               max_request_bytes=2_000_000)
    with InferenceServerThread(app) as server:
        run = subprocess.run(
            [cli, "run", f"{server.url}/openapi.json", "--checks", checks, "--max-examples", "25", "--seed", "1",
             "--header", "Authorization: Bearer tok", "--request-timeout", "30",
             "--exclude-tag", "control"],  # admin only, off here: test_hot_reload runs schemathesis on them
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
