"""``visionloop preannotate``: a real exported detector predicts the unlabelled BCCD images of a project, the
predictions are stored as suggestions, a second run resumes where the first stopped, progress goes to the job's
progress file, and bad choices of model are one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.deploy_fixtures import detector_package  # noqa: F401
from visionloop.cli.main import app
from visionloop.inference import Predictor
from visionloop.inference.preannotate import SUGGESTION_FLOOR, at_package_thresholds
from visionloop.ingest import import_source
from visionloop.storage import Project
from visionloop.storage.suggestions import ModelSource, list_suggestions

SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"


def make_project(root: Path, package: Path) -> Path:
    """Two annotated BCCD images (VOC) and three without annotations (plain JPEGs), the detector as a package."""
    xmls = sorted((SAMPLE / "Annotations").glob("*.xml"))
    voc = root / "voc" / "BCCD"
    for xml in xmls[:2]:
        for sub, name in (("Annotations", xml.name), ("JPEGImages", f"{xml.stem}.jpg")):
            (voc / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLE / sub / name, voc / sub / name)
    plain = root / "plain"
    plain.mkdir()
    for xml in xmls[2:5]:
        shutil.copy(SAMPLE / "JPEGImages" / f"{xml.stem}.jpg", plain / f"u-{xml.stem}.jpg")
    with Project.create(root / "p", task="detection") as p:
        import_source(p, voc.parent)
        import_source(p, plain, format="images")
    shutil.copytree(package, root / "p" / "packages" / "detector")
    return root / "p"


@pytest.mark.slow  # three runs of the command (the API test runs it in a job on every run)
def test_preannotate_stores_suggestions_resumes_and_reports_progress(tmp_path: Path,
                                                                      detector_package: Path) -> None:  # noqa: F811
    root = make_project(tmp_path, detector_package)
    progress = tmp_path / "progress.jsonl"
    runner = CliRunner()
    env = {"VISIONLOOP_PROGRESS_FILE": str(progress)}
    first = runner.invoke(app, ["preannotate", str(root), "--package", "detector", "--limit", "2",
                                "--batch-size", "1", "--json"], env=env)
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert (out["source"], out["model"], out["candidates"], out["skipped"], out["stored"]) == (
        "package", "detector", 3, 0, 2)
    records = [json.loads(line) for line in progress.read_text().splitlines()]
    assert records[-1]["fraction"] == 1.0 and "2/2" in records[-1]["message"]

    again = json.loads(runner.invoke(app, ["preannotate", str(root), "--package", "detector", "--json"],
                                     env=env).stdout)
    assert (again["skipped"], again["stored"], again["failed"]) == (2, 1, [])

    with Project.open(root) as p:
        unlabelled = sorted(im.id for im in p.images() if im.name.startswith("u-"))
        stored = list_suggestions(p, (ModelSource.PACKAGE, "detector"))
        assert [s.image_id for s in stored] == unlabelled  # the annotated images are left alone
        s = stored[0]
        with Predictor(root / "packages" / "detector", sessions=1) as predictor:
            assert s.ref.version == predictor.manifest.model_sha256
            data = p.image_bytes(s.image_id)
            floor = min(SUGGESTION_FLOOR, float(predictor.class_thresholds.min()))
            assert s.payload == predictor.predict(data, score_threshold=floor).to_json()
            assert at_package_thresholds(s.payload, s.thresholds) == predictor.predict(data).to_json()
        assert s.payload["detections"], "the detector found nothing: the test shows nothing"

    everything = json.loads(runner.invoke(app, ["preannotate", str(root), "--package", "detector", "--all",
                                                "--json"]).stdout)
    assert (everything["candidates"], everything["skipped"], everything["stored"]) == (5, 3, 2)


def test_bad_model_choices_are_one_clear_line(tmp_path: Path, detector_package: Path) -> None:  # noqa: F811
    root = make_project(tmp_path, detector_package)
    runner = CliRunner()
    nothing = runner.invoke(app, ["preannotate", str(root), "--json"])
    assert nothing.exit_code == 1 and "nothing is deployed" in nothing.output
    unknown = runner.invoke(app, ["preannotate", str(root), "--package", "nope", "--json"])
    assert unknown.exit_code == 1 and "package 'nope' not found; known: detector" in unknown.output
    both = runner.invoke(app, ["preannotate", str(root), "--package", "detector", "--run", "latest"])
    assert both.exit_code == 1 and "not both" in both.output
    norun = runner.invoke(app, ["preannotate", str(root), "--run", "latest"])
    assert norun.exit_code == 1 and "run 'latest' not found" in norun.output


def test_only_the_boxes_the_package_keeps_come_back_at_its_thresholds() -> None:
    payload = {"task": "detection", "width": 9, "height": 9, "detections": [
        {"xyxy": [0, 0, 1, 1], "class_id": 1, "name": "a", "score": 0.6},
        {"xyxy": [0, 0, 2, 2], "class_id": 2, "name": "b", "score": 0.6},
        {"xyxy": [0, 0, 3, 3], "class_id": 3, "name": "c", "score": 0.2}]}
    kept = at_package_thresholds(payload, {"score": 0.5, "per_class": {"2": 0.7}})
    assert [d["class_id"] for d in kept["detections"]] == [1]
    label = {"task": "classification", "width": 9, "height": 9, "label": {"class_id": 1, "name": "a", "score": 1}}
    assert at_package_thresholds(label, {"score": 0.5}) == label
