"""``visionloop demo``: the sample project is made once, with a first model queued to train and deploy."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.storage import Project
from visionloop.storage.jobs import list_jobs
from visionloop.storage.versions import list_versions

SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"


def _source(root: Path, n: int = 6) -> Path:
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:n]:
        for sub, name in (("Annotations", xml.name), ("JPEGImages", f"{xml.stem}.jpg")):
            (root / "BCCD" / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLE / sub / name, root / "BCCD" / sub / name)
    return root


def test_first_start_queues_a_first_model_once(tmp_path: Path) -> None:
    source = _source(tmp_path / "src")
    runner = CliRunner()
    outputs = []
    for _ in range(2):  # the second start adds nothing and queues nothing more
        r = runner.invoke(app, ["demo", str(tmp_path / "sample"), "--source", str(source), "--no-serve"])
        assert r.exit_code == 0, r.output
        outputs.append(r.output)
    assert "trains in the background" in outputs[0] and "trains in the background" not in outputs[1]
    with Project.open(tmp_path / "sample") as p:
        assert p.stats()["images"] == 6
        assert [v.name for v in list_versions(p)] == ["v1"]
        jobs = list_jobs(p)
        assert [(j.kind, j.state.value, j.params) for j in jobs] == [
            ("train", "queued", {"version": "v1", "deploy": True})]  # the task's defaults: see the test below


def test_the_defaults_train_the_whole_sample_12_epochs_at_320_px(tmp_path: Path) -> None:
    """What the first-start job and the train page's defaults choose on the sample (measured: test mAP50 0.83)."""
    from visionloop.serving.projects_api.routes.train import train_options

    r = CliRunner().invoke(app, ["demo", str(tmp_path / "sample"), "--source", str(SAMPLE.parent), "--no-serve"])
    assert r.exit_code == 0, r.output
    with Project.open(tmp_path / "sample") as p:
        auto = train_options(p, "v1")["auto"]
    assert (auto["epochs"], auto["image_size"]) == (12, 320), auto
    assert "the median Platelets object" in auto["reason"] and "85 training images" in auto["reason"]


def test_no_train_makes_only_the_project(tmp_path: Path) -> None:
    source = _source(tmp_path / "src", 2)
    r = CliRunner().invoke(app, ["demo", str(tmp_path / "sample"), "--source", str(source), "--no-serve", "--no-train"])
    assert r.exit_code == 0, r.output
    with Project.open(tmp_path / "sample") as p:
        assert p.stats()["images"] == 2 and not list_jobs(p) and not list_versions(p)
