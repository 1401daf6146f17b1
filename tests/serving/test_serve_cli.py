"""``visionloop serve`` end to end: the command starts the model server on 127.0.0.1 with the limits it was given."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.deploy_fixtures import jpeg_bytes

WAIT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_command_runs_the_model_server_with_its_limits(cell_package: Path, cell_data) -> None:  # noqa: ANN001
    port = free_port()
    cli = [sys.executable, "-c", "from visionloop.cli.main import main; main()"]
    proc = subprocess.Popen(
        [*cli, "serve", f"cells={cell_package}", "--port", str(port), "--sessions", "1", "--token", "t0k",
         "--max-request-mb", "0.5", "--max-batch-mb", "1", "--max-inflight-mb", "2", "--max-queue", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": "Bearer t0k"}
    try:
        deadline = time.monotonic() + WAIT_S
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/ready", headers=auth, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.2)
        info = httpx.get(f"{url}/v1/models/cells", headers=auth).json()
        assert info["batching"]["max_queue"] == 4 and info["sessions"] == 1
        assert httpx.get(f"{url}/v1/models").status_code == 401
        image = jpeg_bytes(cell_data.val[0][0])
        assert httpx.post(f"{url}/v1/models/cells/predict", content=image, headers=auth, timeout=60).status_code == 200
        big = httpx.post(f"{url}/v1/models/cells/predict", content=b"\0" * 600_000, headers=auth, timeout=60)
        assert big.status_code == 413 and "524,288 bytes" in big.json()["detail"]
        files = [("files", (f"{i}.jpg", b"\0" * 400_000, "image/jpeg")) for i in range(3)]
        batch = httpx.post(f"{url}/v1/models/cells/predict/batch", files=files, headers=auth, timeout=60)
        assert batch.status_code == 413 and "limit of 1,048,576 bytes" in batch.json()["detail"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
