"""``visionloop label-errors`` and ``visionloop label-error-state`` through the real command line app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.core.annotations import Label
from visionloop.storage import Project
from visionloop.storage.label_issues import label_issue_history, list_label_issues
from visionloop.training.out_of_sample import examples_of


def test_label_errors_finds_stores_and_prints_a_flipped_label_then_marks_it_fixed(synthetic_project) -> None:
    p = synthetic_project("classification", n_per_class=10, classes=3)
    items, _ = examples_of(p, "v1")
    victim = items[7]
    other = next(c for c in p.ontology().active if c.id != victim.annotation.class_id)
    head, _ = p.head(victim.image.id)
    p.save_annotation(victim.image.id, Label(other.id), base_revision=head, author="t")
    runner = CliRunner()
    r = runner.invoke(app, ["label-errors", str(p.root), "--folds", "3", "--as", "rita", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # progress went to stderr: stdout is one JSON document
    first = out["candidates"][0]
    assert (first["image_id"], first["kind"], first["given"], first["state"], first["rank"]) == (
        victim.image.id, "wrong_label", other.name, "open", 1)
    assert out["run"]["created_by"] == "rita" and out["run"]["method"] == "prune_by_noise_rate" and out["run"]["version"] is None
    assert out["run"]["params"]["folds"] == 3 and out["total"] == len(out["candidates"])

    r = runner.invoke(app, ["label-error-state", str(p.root), str(first["id"]), "--state", "fixed", "--as", "rita",
                            "--note", "relabelled", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"changed": 1, "state": "fixed"}
    assert list_label_issues(p, states=["fixed"]).items[0].id == first["id"]
    assert [(e.author, e.note) for e in label_issue_history(p, first["id"])] == [("rita", "relabelled")]

    # the table for people
    r = runner.invoke(app, ["label-errors", str(p.root), "--version", "v1", "--folds", "3", "--limit", "5"])
    assert r.exit_code == 0, r.output
    assert "label-error" in r.output


def test_bad_requests_are_one_line_errors(synthetic_project) -> None:
    p = synthetic_project("classification", n_per_class=4, classes=2)
    runner = CliRunner()
    for args, says in [
        (["label-errors", str(p.root), "--method", "vote"], "--method is one of"),
        (["label-errors", str(p.root), "--run", "latest"], "detection projects"),
        (["label-errors", str(p.root), "--run", "a", "--package", "b"], "not both"),
        (["label-errors", str(p.root), "--version", "v9"], "v9"),
        (["label-error-state", str(p.root), "1", "--state", "fixed"], "label issue"),
    ]:
        r = runner.invoke(app, args)
        assert r.exit_code == 1, (args, r.output)
        assert says in r.output and "Traceback" not in r.output, (args, r.output)


@pytest.mark.slow
def test_a_detection_package_gives_missing_boxes(project_factory, detector_package: Path) -> None:
    """The package plumbing: a random-weight Faster R-CNN predicts every annotated image; at --min-score 0 its boxes
    that overlap no annotation become missing-box candidates beside the crops' wrong-class ones."""
    import numpy as np

    from tests.training.test_out_of_sample import _png
    from visionloop.core.annotations import Boxes
    from visionloop.storage import NewImage

    p: Project = project_factory("detection")
    ids = p.class_ids(["RBC", "WBC"])
    rng = np.random.default_rng(0)
    for k in range(8):
        arr = rng.integers(90, 140, (96, 128, 3)).astype(np.uint8)
        arr[10:40, 10:40] = (220, 30, 30)
        arr[50:80, 70:100] = (30, 60, 220)
        iid = p.add_images([NewImage(sha256=p.blobs.put(_png(arr)), width=128, height=96, format="png",
                                     name=f"{k}.png")])[0][0]
        p.save_annotation(iid, Boxes(np.array([[10, 10, 40, 40], [70, 50, 100, 80]], float),
                                     np.array([ids["RBC"], ids["WBC"]])), base_revision=None, author="t")
    shutil.copytree(detector_package, Path(p.root) / "packages" / "detector")
    r = CliRunner().invoke(app, ["label-errors", str(p.root), "--package", "detector", "--min-score", "0",
                                 "--folds", "2", "--limit", "1000", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["run"]["source"] == "package:detector"
    missing = [c for c in out["candidates"] if c["kind"] == "missing_box"]
    assert missing and all(len(c["box"]) == 4 and c["given"] is None for c in missing)
    scores = [c["score"] for c in out["candidates"]]
    assert scores == sorted(scores, reverse=True)
