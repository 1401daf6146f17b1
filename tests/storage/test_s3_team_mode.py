"""Team mode: a project whose blobs live in an S3 bucket (a real S3-compatible server on 127.0.0.1, moto) and whose
database is PostgreSQL when ``VISIONLOOP_TEST_POSTGRES_URL`` is set (CI sets it), SQLite otherwise.

Import, version, train (one tiny epoch) and evaluate, for classification and for detection: nothing may ask the blob
store for a local path, and no blob may land on local disk.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import fresh_postgres_database

moto_server = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency (pip install -e .[dev])")
s3fs = pytest.importorskip("s3fs", reason="s3fs is a dev dependency (pip install -e .[dev])")

BUCKET = "visionloop-team"
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60)}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1, with one bucket; dummy credentials in the environment."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True).mkdir(BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``VISIONLOOP_TEST_POSTGRES_URL`` (dropped afterwards), or a
    SQLite file when it is not set."""
    base = os.environ.get("VISIONLOOP_TEST_POSTGRES_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'team.sqlite'}"
        return
    with fresh_postgres_database(base, prefix="vl_team") as url:
        yield url


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _class_folders(root: Path, n: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            arr = np.clip(np.array(colour) + rng.integers(-50, 50, (32, 32, 3)), 0, 255)
            (root / name / f"{name}-{i}.png").write_bytes(_png(arr))
    return root


def _coco(root: Path, n: int = 8) -> Path:
    """``n`` 128x96 grey images, each with a red and a green rectangle, as a COCO file."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        arr = np.full((96, 128, 3), 110) + rng.integers(-20, 20, (96, 128, 3))
        for k, (x, y) in enumerate([(8 + 4 * i, 10), (70, 40 + 3 * i)]):
            arr[y:y + 30, x:x + 36] = list(COLOURS.values())[k]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": k + 1, "bbox": [x, y, 36, 30],
                         "area": 36 * 30, "iscrowd": 0})
        (root / "images" / f"im{i}.png").write_bytes(_png(np.clip(arr, 0, 255)))
        images.append({"id": i + 1, "file_name": f"im{i}.png", "width": 128, "height": 96})
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(COLOURS)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root


def _team_project(tmp_path: Path, task: str, endpoint: str, db: str):  # noqa: ANN202
    from visionloop.storage import Project

    prefix = secrets.token_hex(4)
    return Project.create(tmp_path / task, task=task, db_url=db, blob_url=f"s3://{BUCKET}/{prefix}",
                          blob_options={"endpoint_url": endpoint}), prefix


def _bucket_keys(endpoint: str, prefix: str) -> list[str]:
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    return list(fs.find(f"{BUCKET}/{prefix}"))


def _nothing_local(root: Path) -> None:
    assert not (root / "blobs").exists()
    assert not any(p.suffix in (".png", ".jpg") for p in root.rglob("*") if "runs" not in p.parts)


def test_remote_blobs_are_read_through_a_bounded_cache() -> None:
    from visionloop.core.errors import VisionloopError
    from visionloop.storage.blobs import BlobStore

    store = BlobStore(f"memory://visionloop-cache-{secrets.token_hex(4)}", cache_bytes=10)
    shas = [store.put(bytes([i]) * 6) for i in range(3)]
    assert [store.source(s) for s in shas] == [bytes([i]) * 6 for i in range(3)]
    assert store._cached <= 10 and list(store._cache) == [shas[2]]  # the newest blob stays, the bound holds
    with pytest.raises(VisionloopError, match="source"):
        store.path(shas[0])


@pytest.mark.postgres
def test_classification_on_an_s3_bucket(tmp_path: Path, s3_endpoint: str, db_url: str) -> None:
    from visionloop.evaluation.api import evaluate_run
    from visionloop.ingest.importer import import_source
    from visionloop.storage import Project
    from visionloop.storage.versions import create_version
    from visionloop.training import train

    p, prefix = _team_project(tmp_path, "classification", s3_endpoint, db_url)
    with p:
        assert not p.blobs.local
        report = import_source(p, _class_folders(tmp_path / "cls"), format="class_folders")
        assert report.images_added == 16 and not report.problems
        assert len(_bucket_keys(s3_endpoint, prefix)) == 16
        create_version(p, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=0)
        run = train(p, version="v1", model="test_resnet", pretrained=False, image_size=32, strategy="finetune",
                    epochs=1, progress=False)
        assert run.metrics["status"] == "done"
    with Project.open(tmp_path / "classification") as again:  # the bucket's endpoint comes back from the toml file
        assert again.blobs.url == p.blobs.url and not again.blobs.local
        result = evaluate_run(again, run.run_id, split="test")
    assert result["n"] == 4 and 0.0 <= result["accuracy"] <= 1.0
    assert Path(result["report"]).is_file()
    _nothing_local(tmp_path / "classification")


@pytest.mark.postgres
def test_detection_on_an_s3_bucket(tmp_path: Path, s3_endpoint: str, db_url: str) -> None:
    from visionloop.evaluation.api import evaluate_run
    from visionloop.ingest.importer import import_source
    from visionloop.storage.versions import create_version
    from visionloop.training.detection import DetectionHParams, train_detection

    p, prefix = _team_project(tmp_path, "detection", s3_endpoint, db_url)
    with p:
        report = import_source(p, _coco(tmp_path / "coco"), format="coco")
        assert report.images_added == 8 and not report.problems
        assert len(_bucket_keys(s3_endpoint, prefix)) == 8
        create_version(p, name="v1", fractions=(0.5, 0.25, 0.25), phash_distance=0)
        hp = DetectionHParams(epochs=1, batch_size=2, eval_size=96, train_sizes=(96,), max_size=128, warmup_steps=1)
        run = train_detection(p, version="v1", hparams=hp, pretrained="none", progress=False)
        assert run.metrics["epochs"] == 1
        result = evaluate_run(p, run.run_id, split="test")
    assert result["images"] == 2 and 0.0 <= result["map50"] <= 1.0
    assert Path(result["report"]).is_file()
    _nothing_local(tmp_path / "detection")


def test_cli_init_takes_the_endpoint_of_an_s3_compatible_server(tmp_path: Path, s3_endpoint: str) -> None:
    """``visionloop init --blob-option endpoint_url=...``: the project's blobs go to that server, and it is kept."""
    from typer.testing import CliRunner

    from visionloop.cli.main import app
    from visionloop.storage import Project

    prefix = f"cli-{secrets.token_hex(4)}"
    runner, proj = CliRunner(), tmp_path / "cells"
    bad = runner.invoke(app, ["init", str(proj), "--task", "classification", "--blob-option", "endpoint_url"])
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output and not proj.exists()
    made = runner.invoke(app, ["init", str(proj), "--task", "classification", "--blob-url", f"s3://{BUCKET}/{prefix}",
                               "--blob-option", f"endpoint_url={s3_endpoint}", "--json"])
    assert made.exit_code == 0, made.output
    imported = runner.invoke(app, ["import", str(proj), str(_class_folders(tmp_path / "src", n=2)), "--json"])
    assert imported.exit_code == 0, imported.output
    with Project.open(proj) as p:  # reopened from visionloop.toml alone: the endpoint was kept
        assert p.stats()["images"] == 4 and p.blobs.source(p.images()[0].sha256) is not None
    assert len(_bucket_keys(s3_endpoint, prefix)) == 4
    _nothing_local(proj)
