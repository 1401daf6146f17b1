"""Production feedback from a live model server (the BCCD cell classifier) to a live project server, both on
127.0.0.1: delivery, a project server down (spooled on disk, delivered once when it is back, also after a restart),
a stuck project server that never holds a prediction up, a full spool that drops its oldest, two models compared,
and ``visionloop serve --feedback`` end to end."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.deploy_fixtures import CELL_CLASSES, jpeg_bytes
from tests.serving.conftest import bearer_headers
from tests.waiting import wait_for
from visionloop.active.samplers import load_sampling_config
from visionloop.core.errors import VisionloopError
from visionloop.core.settings import Settings
from visionloop.serving.app_thread import AppServerThread
from visionloop.serving.model_server.app import create_inference_app
from visionloop.serving.model_server.feedback import FeedbackSender, FeedbackSettings, Spool, feedback_url
from visionloop.serving.model_server.server import InferenceServerThread
from visionloop.serving.projects_api.app import create_app
from visionloop.storage import Project
from visionloop.storage.production import list_production_samples
from visionloop.storage.users import Role

WAIT_S = 120.0
EVERY = load_sampling_config({"samplers": [{"kind": "random", "rate": 1.0}]})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


@pytest.fixture
def cells_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A classification project of the three cell classes and an annotator's token (the model server's user)."""
    with Project.create(tmp_path / "cells", task="classification") as p:
        for c in CELL_CLASSES:
            p.add_class(c)
        return tmp_path / "cells", bearer_headers(p, Role.ANNOTATOR, user="edge-server")


@pytest.fixture(scope="module")
def crops(cell_data) -> list[bytes]:  # noqa: ANN001
    return [jpeg_bytes(im) for im, _ in cell_data.val[:12]]


def project_thread(root: Path, *, port: int = 0) -> AppServerThread:
    return AppServerThread(create_app(root, settings=Settings()), port=port, name="project server")


def settings(url: str, headers: dict[str, str], spool: Path, **kw: Any) -> FeedbackSettings:
    kw.setdefault("sampling", EVERY)
    return FeedbackSettings(url=url, token=headers["Authorization"].split()[1], spool_dir=spool, retry_min_s=0.05,
                            retry_max_s=0.2, **kw)


@pytest.fixture
def model_server(cell_package: Path) -> Iterator[Callable[..., tuple[InferenceServerThread, FeedbackSender]]]:
    started: list[InferenceServerThread] = []

    def start(feedback: FeedbackSettings, packages: dict[str, Path] | None = None,
              ) -> tuple[InferenceServerThread, FeedbackSender]:
        app = create_inference_app(packages or {"cells": cell_package}, sessions=1, feedback=feedback)
        server = InferenceServerThread(app).start()
        started.append(server)
        return server, app.state.model_server.feedback

    yield start
    for s in started:
        s.stop()


def predict_all(server: InferenceServerThread, images: list[bytes], model: str = "cells") -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.url, timeout=WAIT_S) as c:
        out = []
        for data in images:
            r = c.post(f"/v1/models/{model}/predict", content=data)
            assert r.status_code == 200, r.text
            out.append(r.json())
        return out


def stored(root: Path) -> list[Any]:
    with Project.open(root) as p:
        return list_production_samples(p, limit=1000)


def test_chosen_predictions_reach_the_project(cells_project, model_server, crops: list[bytes],  # noqa: ANN001
                                              tmp_path: Path) -> None:
    root, headers = cells_project
    with project_thread(root) as project:
        server, sender = model_server(settings(f"{project.url}/api/v1/projects/cells", headers, tmp_path / "spool"))
        answers = predict_all(server, crops[:3])
        wait_for("3 samples sent", lambda: sender.counts()["sent"] == 3)
        metrics = httpx.get(f"{server.url}/metrics").text
    samples = stored(root)
    assert [s.prediction["label"] for s in samples] == [a["label"] for a in answers]
    assert {s.model for s in samples} == {"cells"} and all(s.random_slice for s in samples)
    assert samples[0].samplers == [{"name": "random", "score": 0.0, "why": "random slice (100% of predictions)"}]
    assert samples[0].package_version and samples[0].model_sha256.startswith(samples[0].package_version)
    assert len({s.request_id for s in samples}) == 3 and samples[0].server
    assert metric(metrics, "visionloop_inference_feedback_sent_total") == 3
    assert metric(metrics, "visionloop_inference_feedback_spooled_total") == 0
    assert metric(metrics, "visionloop_inference_feedback_spool_files") == 0


def test_project_down_spools_then_delivers_exactly_once(cells_project, model_server, crops: list[bytes],  # noqa: ANN001
                                                        tmp_path: Path) -> None:
    root, headers = cells_project
    port, spool = free_port(), tmp_path / "spool"
    feedback = settings(f"http://127.0.0.1:{port}/api/v1/projects/cells", headers, spool)
    server, sender = model_server(feedback)
    predict_all(server, crops[:4])  # nobody listens on the project's port
    wait_for("4 samples spooled", lambda: sender.counts()["spool_files"] == 4)
    assert sender.counts()["sent"] == 0 and sender.counts()["spooled"] == 4 and sender.last_error
    kept = {p.name: p.read_bytes() for p in spool.glob("*.sample")}
    assert len(kept) == 4 and not list(spool.glob("*.tmp"))
    with project_thread(root, port=port):
        wait_for("the spool sent", lambda: sender.counts()["sent"] == 4 and sender.counts()["spool_files"] == 0)
        # the server restarts with a spool whose sample was in fact stored (its answer was lost): sent again,
        # stored once
        server.stop()
        oldest = sorted(kept)[0]
        (spool / oldest).write_bytes(kept[oldest])
        again = FeedbackSender(feedback)
        wait_for("the old sample sent again", lambda: again.counts()["sent"] == 1)
        again.close()
    samples = stored(root)
    assert len(samples) == 4 and len({s.request_id for s in samples}) == 4
    assert samples[0].request_id == json.loads(kept[oldest].partition(b"\n")[0])["request_id"]  # oldest first


class StuckProject:
    """A project server whose production route waits for ``gate`` (a slow or hung platform)."""

    def __init__(self) -> None:
        self.gate, self.entered, self.received = threading.Event(), threading.Event(), 0
        self.app = FastAPI()

        @self.app.post("/api/v1/projects/cells/production")
        async def production(request: Request) -> JSONResponse:
            await request.body()
            self.entered.set()
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
            self.received += 1
            return JSONResponse({"id": self.received}, status_code=201)


def test_a_stuck_project_never_holds_predictions_up(model_server, crops: list[bytes], tmp_path: Path) -> None:  # noqa: ANN001
    stuck = StuckProject()
    with AppServerThread(stuck.app, name="stuck project") as project:
        feedback = settings(f"{project.url}/api/v1/projects/cells", {"Authorization": "Bearer x"},
                            tmp_path / "spool", max_pending=2, timeout_s=WAIT_S)
        server, sender = model_server(feedback)
        predict_all(server, crops[:1])
        assert stuck.entered.wait(WAIT_S)  # the sender thread is inside its POST, waiting
        answers = predict_all(server, crops[1:6])  # every prediction answered while the sender hangs
        assert len(answers) == 5 and stuck.received == 0
        c = sender.counts()
        assert c["pending"] == 2 and c["dropped"] == 3 and c["sent"] == 0  # two wait in the queue, three dropped
        stuck.gate.set()
        sender.flush()
        wait_for("the queued samples sent", lambda: sender.counts()["sent"] == 3)
    assert stuck.received == 3 and sender.counts()["dropped"] == 3


def test_a_full_spool_drops_its_oldest(cells_project, model_server, crops: list[bytes], tmp_path: Path) -> None:  # noqa: ANN001
    root, headers = cells_project
    port, spool = free_port(), tmp_path / "spool"
    feedback = settings(f"http://127.0.0.1:{port}/api/v1/projects/cells", headers, spool, spool_max_files=3)
    server, sender = model_server(feedback)
    predict_all(server, crops[:5])
    wait_for("5 samples handled", lambda: sender.counts()["spooled"] == 5)
    c = sender.counts()
    assert c["spool_files"] == 3 and c["dropped"] == 2
    assert c["spool_bytes"] == sum(p.stat().st_size for p in spool.glob("*.sample"))
    waiting = sorted(Spool.read(p)[0]["request_id"] for p in spool.glob("*.sample"))
    with project_thread(root, port=port):
        wait_for("the spool sent", lambda: sender.counts()["sent"] == 3)
    assert sorted(s.request_id for s in stored(root)) == waiting
    # the byte bound: a sample larger than the whole spool is dropped, nothing written
    tiny = Spool(tmp_path / "tiny", max_bytes=100, max_files=10)
    assert tiny.add({"request_id": "a"}, b"x" * 200) == (False, 0) and len(tiny) == 0
    assert tiny.add({"request_id": "b"}, b"x" * 50) == (True, 0)
    assert tiny.add({"request_id": "c"}, b"x" * 50) == (True, 1) and len(tiny) == 1 and tiny.bytes <= 100


@pytest.fixture(scope="module")
def platelet_leaning_package(cell_classifier, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """A second cell classifier: the same features, its head's bias pushed toward Platelets."""
    import copy

    import torch

    from visionloop.export.onnx_export import export_model

    model, pp = copy.deepcopy(cell_classifier)
    with torch.no_grad():
        model[1].bias[CELL_CLASSES.index("Platelets")] += 8.0
    return export_model(model, task="classification", classes=CELL_CLASSES, preprocess=pp, name="cells-b",
                        out=tmp_path_factory.mktemp("pkgb") / "cells-b.vlpkg")


def test_two_models_compared_on_the_sampled_image(cells_project, model_server, crops: list[bytes],  # noqa: ANN001
                                                  cell_package: Path, platelet_leaning_package: Path,
                                                  tmp_path: Path) -> None:
    root, headers = cells_project
    sampling = load_sampling_config({"samplers": [{"kind": "disagreement"}]})
    with project_thread(root) as project:
        server, sender = model_server(
            settings(f"{project.url}/api/v1/projects/cells", headers, tmp_path / "spool", sampling=sampling),
            packages={"cells": cell_package, "cells-b": platelet_leaning_package})
        ours = predict_all(server, crops)
        theirs = predict_all(server, crops, model="cells-b")
        sender.flush()  # every comparison made and its sample sent
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a["label"]["name"] != b["label"]["name"]]
    assert 0 < len(differ) < len(crops)
    samples = stored(root)
    assert sorted((s.model, s.prediction["label"]["name"]) for s in samples) == sorted(
        [("cells", ours[i]["label"]["name"]) for i in differ] + [("cells-b", theirs[i]["label"]["name"])
                                                                 for i in differ])
    first = next(s for s in samples if s.model == "cells")
    assert first.samplers[0]["name"] == "disagreement" and first.samplers[0]["why"].endswith("(vs cells-b)")
    assert not first.random_slice


def test_settings_are_checked() -> None:
    assert feedback_url("http://h:8000/api/v1/projects/p/") == "http://h:8000/api/v1/projects/p"
    for bad in ("h:8000/api/v1/projects/p", "ftp://h/api/v1/projects/p", "http://h:8000/"):
        with pytest.raises(VisionloopError, match="project API address"):
            feedback_url(bad)
    with pytest.raises(VisionloopError, match="retry_min_s"):
        FeedbackSettings(url="http://h/api/v1/projects/p", sampling=EVERY, spool_dir=Path("s"), retry_min_s=0)
    with pytest.raises(VisionloopError, match="room"):
        FeedbackSettings(url="http://h/api/v1/projects/p", sampling=EVERY, spool_dir=Path("s"), spool_max_files=0)


@pytest.mark.slow
def test_serve_command_sends_feedback(cells_project, cell_package: Path, crops: list[bytes],  # noqa: ANN001
                                      tmp_path: Path) -> None:
    root, headers = cells_project
    config = tmp_path / "samplers.toml"
    config.write_text('[[samplers]]\nkind = "random"\nrate = 1.0\nper_minute = 2\n')
    cli = [sys.executable, "-c", "from visionloop.cli.main import main; main()"]
    bad = subprocess.run([*cli, "serve", str(cell_package), "--feedback-token", "t"], capture_output=True,
                         text=True, timeout=WAIT_S)
    assert bad.returncode != 0 and "need --feedback URL" in bad.stdout + bad.stderr
    port = free_port()
    with project_thread(root) as project:
        env = {**os.environ, "VISIONLOOP_FEEDBACK_TOKEN": headers["Authorization"].split()[1]}
        proc = subprocess.Popen(
            [*cli, "serve", f"cells={cell_package}", "--port", str(port), "--sessions", "1",
             "--feedback", f"{project.url}/api/v1/projects/cells", "--feedback-config", str(config),
             "--feedback-spool", str(tmp_path / "spool")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for("the model server", lambda: proc.poll() is None and _ready(url))
            for data in crops[:3]:
                assert httpx.post(f"{url}/v1/models/cells/predict", content=data, timeout=WAIT_S).status_code == 200
            wait_for("2 samples sent (the cap is 2 a minute)",
                     lambda: metric(httpx.get(f"{url}/metrics").text, "visionloop_inference_feedback_sent_total") == 2)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert len(stored(root)) == 2


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_a_canary_sample_names_the_challenger(cells_project, model_server, crops: list[bytes],  # noqa: ANN001
                                              cell_package: Path, platelet_leaning_package: Path,
                                              tmp_path: Path) -> None:
    """With a canary answering every request, the samples carry the challenger's version and hash."""
    from visionloop.core.package import load_package

    root, headers = cells_project
    with project_thread(root) as project:
        app = create_inference_app({"cells": cell_package}, sessions=1, canaries={"cells": (platelet_leaning_package,
                                                                                          1.0)},
                                   feedback=settings(f"{project.url}/api/v1/projects/cells", headers,
                                                     tmp_path / "spool"))
        with InferenceServerThread(app) as server:
            answers = predict_all(server, crops[:2])
            app.state.model_server.feedback.flush()
    challenger = load_package(platelet_leaning_package).manifest.model_sha256
    assert {a["package_version"] for a in answers} == {challenger[:12]}
    assert [(s.package_version, s.model_sha256) for s in stored(root)] == [(challenger[:12], challenger)] * 2


def test_a_long_spool_left_by_a_restart_is_sent_in_order(cells_project, tmp_path: Path) -> None:  # noqa: ANN001
    """40 samples in the spool of a server that stopped: a new sender sends them all, oldest first, a few at a time
    (between them it takes new samples)."""
    from tests.conftest import make_image_bytes

    root, headers = cells_project
    spool = Spool(tmp_path / "spool", max_bytes=10**8, max_files=100)
    label = {"class_id": 1, "name": "RBC", "score": 0.9}
    for i in range(40):
        spool.add({"request_id": f"old-{i:02d}", "model": "cells", "predicted_at": "2026-01-01T00:00:00+00:00",
                   "samplers": [{"name": "random"}], "random_slice": True,
                   "prediction": {"task": "classification", "width": 40, "height": 32, "label": label,
                                  "scores": [label]}}, make_image_bytes(40, 32, seed=i))
    with project_thread(root) as project:
        sender = FeedbackSender(settings(f"{project.url}/api/v1/projects/cells", headers, tmp_path / "spool"))
        wait_for("the spool sent", lambda: sender.counts()["sent"] == 40)
        sender.close()
    assert [s.request_id for s in stored(root)] == [f"old-{i:02d}" for i in range(40)]
    assert sender.counts()["spool_files"] == 0 and not list((tmp_path / "spool").iterdir())
