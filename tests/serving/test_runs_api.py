"""Runs as the platform shows them, from run folders in the layout training and evaluation write: states, main
metrics, per-epoch history, the report (or where it will come from), comparisons; and the train options."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import bearer_headers
from visionloop.core.settings import Settings
from visionloop.serving.projects_api.app import create_app
from visionloop.serving.projects_api.run_records import flat
from visionloop.storage import Project, jobs
from visionloop.storage.users import Role

API = "/api/v1/projects/shop"


def write_run(root: Path, run: str, *, lr: float, loss: list[float], result: bool = True,
              per_class: dict | None = None) -> None:
    d = root / "runs" / run
    (d / "checkpoints").mkdir(parents=True)
    config = {"run_id": run, "task": "classification", "version": {"name": "v1", "hash": "h"},
              "model": {"name": "tf_efficientnet_lite0", "kwargs": {}}, "classes": [], "preprocess": {},
              "strategy": "finetune", "hparams": {"lr": lr, "epochs": len(loss)}, "created_at": f"{run}-created"}
    (d / "config.json").write_text(json.dumps(config))
    records = [{"epoch": i + 1, "train_loss": v, "lr": lr, "val_balanced_accuracy": 0.5 + i / 10, "best": i == 1}
               for i, v in enumerate(loss)]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if result:
        (d / "result.json").write_text(json.dumps({"run": run, "status": "done",
                                                   "val": {"balanced_accuracy": 0.7, "accuracy": 0.8}}))
    if per_class is not None:
        (d / "eval-test.json").write_text(json.dumps({"split": "test", "main_metric": "balanced_accuracy",
                                                      "balanced_accuracy": 0.66, "n": 12, "per_class": per_class,
                                                      "report": "/somewhere/on/the/server/report.html"}))
        (d / "report.html").write_text("<html><body>report</body></html>")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Project, dict[str, str]]]:
    with Project.create(tmp_path / "shop", task="classification") as p:
        root = Path(p.root)
    write_run(root, "20261201-100000-a-0001", lr=0.001, loss=[1.0, 0.5],
              per_class={"ok": {"precision": 0.5, "recall": 1.0}, "scratch": {"precision": 1.0, "recall": 0.5}})
    write_run(root, "20261201-110000-b-0002", lr=0.01, loss=[0.9, 0.4, 0.3],
              per_class={"ok": {"precision": 0.75, "recall": 1.0}, "dent": {"precision": 1.0, "recall": 1.0}})
    write_run(root, "20261201-120000-c-0003", lr=0.01, loss=[0.8], result=False)
    with TestClient(create_app(root, settings=Settings())) as client:
        project = client.app.state.projects.get("shop")
        yield client, project, bearer_headers(project, Role.VIEWER)


def test_runs_list_detail_history(served) -> None:
    client, project, viewer = served
    listed = client.get(f"{API}/runs", headers=viewer).json()
    assert [r["id"][-4:] for r in listed] == ["0003", "0002", "0001"]  # newest first
    assert [r["state"] for r in listed] == ["stopped", "done", "done"]
    a = listed[2]
    assert a["model"] == "tf_efficientnet_lite0" and a["version"] == "v1" and a["epochs"] == 2 and a["report"]
    assert a["main_metric"] == "balanced_accuracy"
    assert a["metrics"] == {"val_balanced_accuracy": 0.7, "val_accuracy": 0.8, "test_balanced_accuracy": 0.66}
    assert listed[0]["main_metric"] == "balanced_accuracy" and listed[0]["metrics"] == {}

    history = client.get(f"{API}/runs/{a['id']}/history", headers=viewer).json()
    assert history["series"]["train_loss"] == [1.0, 0.5] and history["series"]["epoch"] == [1, 2]
    assert history["series"]["val_balanced_accuracy"] == [0.5, 0.6] and history["best_epoch"] == 2

    detail = client.get(f"{API}/runs/latest", headers=viewer).json()
    assert detail["id"].endswith("0003") and detail["evaluation"] is None and detail["result"] is None
    detail = client.get(f"{API}/runs/{a['id']}", headers=viewer).json()
    assert detail["config"]["hparams"]["lr"] == 0.001 and "report" not in detail["evaluation"]
    missing = client.get(f"{API}/runs/nope", headers=viewer)
    assert missing.status_code == 404 and a["id"] in missing.json()["choices"]

    job = jobs.create_job(project, kind="train", params={"resume": listed[0]["id"]}, created_by="x")
    jobs.start_job(project, job.id)
    again = client.get(f"{API}/runs", headers=viewer).json()[0]
    assert again["state"] == "running" and again["job"] == job.id
    jobs.finish_job(project, job.id, jobs.JobState.CANCELLED)


def test_report_is_served_or_says_where_it_comes_from(served) -> None:
    client, project, viewer = served
    ok = client.get(f"{API}/runs/20261201-100000-a-0001/report", headers=viewer)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/html") and "report" in ok.text
    assert "script-src" not in ok.headers["content-security-policy"] and "sandbox" in ok.headers[
        "content-security-policy"]
    missing = client.get(f"{API}/runs/20261201-120000-c-0003/report", headers=viewer)
    assert missing.status_code == 404 and "POST .../runs/20261201-120000-c-0003/evaluate" in missing.json()["detail"]
    queued = jobs.create_job(project, kind="evaluate", params={"run": "20261201-120000-c-0003", "split": "test"},
                             created_by="x")
    jobs.finish_job(project, queued.id, jobs.JobState.CANCELLED)  # ended: no longer the report's source
    waiting = jobs.create_job(project, kind="evaluate", params={"run": "20261201-120000-c-0003", "split": "test"},
                              created_by="x")
    still = client.get(f"{API}/runs/20261201-120000-c-0003/report", headers=viewer).json()["detail"]
    assert f"evaluate job {waiting.id} is queued" in still
    jobs.finish_job(project, waiting.id, jobs.JobState.CANCELLED)


def test_compare_two_runs(served) -> None:
    client, _, viewer = served
    got = client.get(f"{API}/runs/compare", params={"a": "20261201-100000-a-0001", "b": "20261201-110000-b-0002"},
                     headers=viewer).json()
    assert got["config"]["hparams.lr"] == {"a": 0.001, "b": 0.01}
    assert got["config"]["hparams.epochs"] == {"a": 2, "b": 3}
    assert "run_id" not in got["config"] and "created_at" not in got["config"]
    assert got["split"] == "test"
    assert got["per_class"]["ok"]["precision"] == {"a": 0.5, "b": 0.75, "delta": 0.25}
    assert got["per_class"]["dent"]["recall"] == {"a": None, "b": 1.0, "delta": None}
    assert got["metrics"]["test_balanced_accuracy"]["delta"] == 0.0
    assert flat({"a": {"b": 1, "c": [1]}, "d": 2}) == {"a.b": 1, "a.c": [1], "d": 2}


def test_train_options_for_a_classification_version(served) -> None:
    client, project, viewer = served
    none = client.get(f"{API}/train/options", headers=viewer).json()
    assert none["task"] == "classification" and none["training_images"] is None
    assert none["default_model"] == "tf_efficientnet_lite0" and "linear" in none["strategies"]
    names = {m["name"] for m in none["models"]}
    assert none["default_model"] in names and len(names) > 50  # timm's and torchvision's classifiers
    assert none["auto"]["strategy"] == "linear" and none["auto"]["epochs"] == 1 and "training images" in \
        none["auto"]["reason"]
    unknown = client.get(f"{API}/train/options", params={"version": "v9"}, headers=viewer)
    assert unknown.status_code == 404
