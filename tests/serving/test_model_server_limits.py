"""Every buffer of the model server is bounded, checked with real HTTP requests to a live 127.0.0.1 server.

The model call is held behind a gate the test opens (``GatedRunner`` wraps the real Predictor), so queues and
in-flight bytes fill deterministically, without timing; every wait is bounded.
"""

from __future__ import annotations

import hashlib
import io
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.deploy_fixtures import jpeg_bytes
from tests.waiting import wait_for
from visionloop.core.errors import VisionloopError
from visionloop.core.package import load_package
from visionloop.inference.predictor import Predictor
from visionloop.serving.model_server.app import create_inference_app
from visionloop.serving.model_server.batching import BatchConfig
from visionloop.serving.model_server.limits import DEFAULT_MAX_INFLIGHT_BYTES, ServerLimits
from visionloop.serving.model_server.prediction_log import PredictionLogger
from visionloop.serving.model_server.server import InferenceServerThread

WAIT_S = 60.0


class GatedRunner:
    """The real Predictor, whose model calls wait until the test opens ``gate``; ``entered`` is set on the first."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.n_sessions = predictor, 1
        self.gate, self.entered = threading.Event(), threading.Event()

    def predict_chunk(self, images: list[Any], *, score_threshold: float | None = None) -> list[Any]:
        self.entered.set()
        if not self.gate.wait(WAIT_S):
            raise TimeoutError("the test never opened the gate")
        return self.predictor.predict_chunk(images, score_threshold=score_threshold)


def noise_png(side: int, seed: int = 0) -> bytes:
    """A real PNG of random pixels: about 3 x side**2 bytes, since noise does not compress."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def metric(text: str, name: str, **labels: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()))


@pytest.fixture
def gated_server(cell_package: Path) -> Iterator[Callable[..., tuple[InferenceServerThread, GatedRunner]]]:
    """``start(batching=..., **limits)`` -> a live server of the cell classifier behind a closed gate."""
    started: list[tuple[InferenceServerThread, GatedRunner]] = []

    def start(*, batching: BatchConfig, **limits: int) -> tuple[InferenceServerThread, GatedRunner]:
        pkg = load_package(cell_package)
        runner = GatedRunner(Predictor(pkg, sessions=1))
        app = create_inference_app(runners={"cells": (pkg, runner)}, batching=batching, **limits)
        server = InferenceServerThread(app).start()
        started.append((server, runner))
        return server, runner

    yield start
    for server, runner in started:
        runner.gate.set()
        server.stop()
        runner.predictor.close()


def post(url: str, body: bytes, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, content=body, timeout=WAIT_S, **kwargs)


def test_full_model_queue_is_503_with_retry_after(gated_server, cell_data) -> None:  # noqa: ANN001
    server, runner = gated_server(batching=BatchConfig(max_batch=1, max_wait_ms=0, max_queue=2))
    predict = f"{server.url}/v1/models/cells/predict"
    image = jpeg_bytes(cell_data.val[0][0])
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, predict, image)
        assert runner.entered.wait(WAIT_S), "the first request never reached the model"
        queued: list[Future[httpx.Response]] = [pool.submit(post, predict, image) for _ in range(2)]
        wait_for("two queued requests", lambda: metric(httpx.get(f"{server.url}/metrics").text,
                                                       "visionloop_inference_queue_depth", model="cells") == 2)
        r = post(predict, image)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert "2 requests waiting" in r.json()["detail"] and "retry" in r.json()["detail"]
        batch = httpx.post(f"{predict}/batch", files=[("files", ("a.jpg", image, "image/jpeg"))], timeout=WAIT_S)
        assert batch.status_code == 503 and batch.headers["retry-after"] == "1", batch.text
        runner.gate.set()
        assert [f.result(WAIT_S).status_code for f in (first, *queued)] == [200, 200, 200]
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "visionloop_inference_errors_total", model="cells", kind="503") == 2
    assert post(predict, image).status_code == 200  # room again once the queue drained


def test_bytes_in_flight_are_bounded_503_and_given_back(gated_server, cell_data) -> None:  # noqa: ANN001
    big = noise_png(300)
    assert 200_000 < len(big) < 300_000
    server, runner = gated_server(batching=BatchConfig(max_batch=1, max_wait_ms=0),
                                  max_request_bytes=300_000, max_batch_bytes=300_000, max_inflight_bytes=400_000)
    predict = f"{server.url}/v1/models/cells/predict"
    small = jpeg_bytes(cell_data.val[0][0])
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(post, predict, big)
        assert runner.entered.wait(WAIT_S)
        inflight = metric(httpx.get(f"{server.url}/metrics").text, "visionloop_inference_inflight_bytes")
        assert inflight == len(big)
        r = post(predict, big)  # fits the request limit, not what is left of the budget
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert "in flight" in r.json()["detail"] and "400,000" in r.json()["detail"]
        fits = pool.submit(post, predict, small)  # 250 kB + a small one stay under 400 kB: queued, not refused
        runner.gate.set()
        assert held.result(WAIT_S).status_code == 200 and fits.result(WAIT_S).status_code == 200
    assert metric(httpx.get(f"{server.url}/metrics").text, "visionloop_inference_inflight_bytes") == 0
    assert post(predict, big).status_code == 200  # every byte was given back


def test_batch_request_total_bytes_is_413(gated_server, cell_data) -> None:  # noqa: ANN001
    server, runner = gated_server(batching=BatchConfig(), max_request_bytes=200_000, max_batch_bytes=300_000,
                                  max_inflight_bytes=1_000_000)
    runner.gate.set()
    url = f"{server.url}/v1/models/cells/predict/batch"
    part = noise_png(220)  # each file is within the per-file limit, three together are not
    assert 100_000 < len(part) < 200_000
    files = [("files", (f"{i}.png", part, "image/png")) for i in range(3)]
    r = httpx.post(url, files=files, timeout=WAIT_S)
    assert r.status_code == 413 and "exceeds the limit of 300,000 bytes" in r.json()["detail"], r.text
    # the same body streamed without a Content-Length is cut off at the limit too
    encoded = httpx.Request("POST", url, files=files)
    body, ctype = encoded.read(), encoded.headers["content-type"]
    r = httpx.post(url, content=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                   headers={"Content-Type": ctype}, timeout=WAIT_S)
    assert r.status_code == 413 and "exceeds the limit of 300,000 bytes" in r.json()["detail"], r.text
    ok = httpx.post(url, files=[("files", ("a.jpg", jpeg_bytes(cell_data.val[0][0]), "image/jpeg")),
                                ("files", ("b.png", part, "image/png"))], timeout=WAIT_S)
    assert ok.status_code == 200 and [x["ok"] for x in ok.json()["results"]] == [True, True]


def test_limits_that_could_never_be_met_are_refused() -> None:
    with pytest.raises(VisionloopError, match="max_inflight_bytes"):
        ServerLimits(max_batch_bytes=100, max_request_bytes=10, max_inflight_bytes=50)
    with pytest.raises(VisionloopError, match="at least 1"):
        ServerLimits(max_pixels=0)
    with pytest.raises(VisionloopError, match="max_queue"):
        BatchConfig(max_queue=0)  # asyncio.Queue(0) would be unbounded


class GatedLogger(PredictionLogger):
    """The real logger whose disk writes wait for ``gate``."""

    def __init__(self, directory: Path, **kwargs: Any) -> None:
        self.gate = threading.Event()
        super().__init__(directory, **kwargs)

    def _write(self, sample: Any) -> None:
        if not self.gate.wait(WAIT_S):
            raise TimeoutError("the test never opened the gate")
        super()._write(sample)


def test_prediction_log_queue_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    logger = GatedLogger(tmp_path, rate=1.0, max_pending=3, max_pending_bytes=10_000)
    queued = [logger.maybe_log(model="m", model_sha256=None, data=bytes([i]) * 1000, prediction={"i": i})
              for i in range(10)]  # three wait (one more if the writer took one meanwhile); the rest are dropped
    assert queued[:3] == [True, True, True] and queued.count(True) in (3, 4)
    assert logger.dropped == 10 - queued.count(True)
    assert not logger.maybe_log(model="m", model_sha256=None, data=b"x" * 20_000, prediction={})  # over the bytes
    assert logger.dropped == 11 - queued.count(True)
    logger.gate.set()
    logger.flush()
    assert logger.logged == queued.count(True) and logger.pending_bytes == 0
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == logger.logged
    logger.close()


def test_prediction_log_counters_are_in_the_metrics(cell_package: Path, cell_data, tmp_path: Path) -> None:  # noqa: ANN001
    app = create_inference_app({"cells": cell_package}, sessions=1, log_predictions=1.0, log_dir=tmp_path)
    with InferenceServerThread(app) as server, httpx.Client(base_url=server.url, timeout=WAIT_S) as client:
        for im, _ in cell_data.val[:3]:
            assert client.post("/v1/models/cells/predict", content=jpeg_bytes(im)).status_code == 200
        app.state.model_server.prediction_logger.flush()
        text = client.get("/metrics").text
    assert metric(text, "visionloop_inference_prediction_log_logged_total") == 3
    assert metric(text, "visionloop_inference_prediction_log_dropped_total") == 0
    assert metric(text, "visionloop_inference_prediction_log_pending_bytes") == 0


def test_upload_names_never_become_paths(cell_package: Path, cell_data, tmp_path: Path) -> None:  # noqa: ANN001
    """A client's file names are echoed in the answer only; logged images are named by their sha256 in the log."""
    log_dir = tmp_path / "log"
    app = create_inference_app({"cells": cell_package}, sessions=1, log_predictions=1.0, log_dir=log_dir)
    names = ["../../escaped.jpg", "/tmp/abs.jpg", "..\\\\win.jpg"]
    files = [("files", (n, jpeg_bytes(im), "image/jpeg")) for n, (im, _) in zip(names, cell_data.val, strict=False)]
    with InferenceServerThread(app) as server:
        r = httpx.post(f"{server.url}/v1/models/cells/predict/batch", files=files, timeout=WAIT_S)
        app.state.model_server.prediction_logger.flush()
    assert r.status_code == 200 and [x["ok"] for x in r.json()["results"]] == [True] * 3
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(["log/predictions.jsonl",
                              *(f"log/images/{hashlib.sha256(f[1][1]).hexdigest()}.jpg" for f in files)])


def test_a_client_leaving_mid_upload_frees_its_bytes(gated_server, cell_data) -> None:  # noqa: ANN001
    server, runner = gated_server(batching=BatchConfig(), max_inflight_bytes=DEFAULT_MAX_INFLIGHT_BYTES)
    runner.gate.set()
    with socket.create_connection((server.host, server.port), timeout=WAIT_S) as s:
        s.sendall(b"POST /v1/models/cells/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b"\0" * 300_000)
        wait_for("the server to read the first bytes", lambda: metric(
            httpx.get(f"{server.url}/metrics").text, "visionloop_inference_inflight_bytes") > 0)
    wait_for("the bytes to be given back", lambda: metric(
        httpx.get(f"{server.url}/metrics").text, "visionloop_inference_inflight_bytes") == 0)
    wait_for("the answer to be counted", lambda: metric(
        httpx.get(f"{server.url}/metrics").text, "visionloop_inference_requests_total", model="cells", status="400") == 1)
    assert post(f"{server.url}/v1/models/cells/predict", jpeg_bytes(cell_data.val[0][0])).status_code == 200
