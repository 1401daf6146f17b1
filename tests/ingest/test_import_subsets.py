"""A byte-identical image that a source lists in two subsets is stored once with both, reported by the import and,
in a version made with the source's splits, as a leak between them (never one subset silently)."""

from __future__ import annotations

import shutil

from tests.conftest import make_image_bytes
from visionloop.ingest import import_source
from visionloop.storage.versions import create_version, version_items

TWIN_SHA = "990c47aa6e7aa69a0e1abe1be46050140a9ce5c24bfd14e833ff11213dcde661"


def test_real_yolo_sample_with_one_image_in_train_and_val(project_factory, formats_dir):
    """datumaro's ``yolo_dataset/labels``: ``images/train/1.jpg`` and ``images/val/1.jpg`` are the same bytes."""
    p = project_factory("detection")
    report = import_source(p, formats_dir / "yolo_dataset/labels")
    assert (report.images_seen, report.images_added, report.images_existing) == (2, 1, 1)
    [conflict] = report.subset_conflicts
    assert conflict.to_json() == {"sha256": TWIN_SHA, "subsets": ["train", "val"], "names": ["1.jpg", "1.jpg"]}
    assert report.to_json()["subset_conflicts"] == [conflict.to_json()]
    [problem] = [q for q in report.problems if q.action == "kept once, in all subsets"]
    assert problem.path == "1.jpg (train) = 1.jpg (val)" and "subsets train, val" in problem.reason
    [image] = p.images()
    assert image.meta["subset"] == "train" and image.meta["subsets"] == ["train", "val"]

    v = create_version(p, splits="source", phash_distance=-1)
    assert v.summary["leaks"] == {"groups": 1, "images": 1, "same_image": 1,
                                  "examples": [["1.jpg (train, kept here)", "1.jpg (val, same bytes)"]]}
    assert [it.split for it in version_items(p, v.name)] == ["train"]

    again = import_source(p, formats_dir / "yolo_dataset/labels")  # each report says what its source holds
    assert [c.to_json() for c in again.subset_conflicts] == [conflict.to_json()] and again.images_existing == 2
    assert p.images()[0].meta["subsets"] == ["train", "val"]


def test_subsets_met_in_two_imports_are_both_kept(project_factory, formats_dir, tmp_path):
    src = formats_dir / "yolo_dataset/labels"
    for subset in ("train", "val"):
        part = tmp_path / subset
        for kind in ("images", "labels"):
            (part / kind / subset).mkdir(parents=True)
        shutil.copy(src / "obj.names", part / "obj.names")
        shutil.copy(src / f"images/{subset}/1.jpg", part / f"images/{subset}/1.jpg")
        shutil.copy(src / f"labels/{subset}/1.txt", part / f"labels/{subset}/1.txt")
    p = project_factory("detection")
    assert import_source(p, tmp_path / "train").subset_conflicts == []
    second = import_source(p, tmp_path / "val")
    assert [c.subsets for c in second.subset_conflicts] == [["train", "val"]]
    assert p.images()[0].meta["subsets"] == ["train", "val"]
    assert create_version(p, splits="source", phash_distance=-1).summary["leaks"]["same_image"] == 1


def test_yolo_splits_named_by_data_yaml_reach_a_source_version(project_factory, tmp_path):
    """Folders with names of their own: data.yaml's train/val/test decide the source split of a version."""
    root = tmp_path / "ds"
    for k, sub in enumerate(["fit", "fit", "check", "final"]):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / f"{k}.jpg").write_bytes(make_image_bytes(seed=k))
        (root / sub / f"{k}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text("train: fit\nval: check\ntest: [final]\nnames: [cell]\n")
    p = project_factory("detection")
    assert import_source(p, root).problems == []
    v = create_version(p, splits="source", phash_distance=-1)
    assert v.splits == {"train": 2, "val": 1, "test": 1}


def test_cli_import_says_how_many_images_sit_in_two_subsets(tmp_path, formats_dir):
    from typer.testing import CliRunner

    from visionloop.cli.main import app

    runner, proj = CliRunner(), str(tmp_path / "p")
    assert runner.invoke(app, ["init", proj, "--task", "detection"]).exit_code == 0
    result = runner.invoke(app, ["import", proj, str(formats_dir / "yolo_dataset/labels")])
    assert result.exit_code == 0, result.output
    assert "990c47aa" not in result.output  # a count, not the records (--json has those)
    assert "kept once, in all subsets: 1.jpg (train) = 1.jpg (val)" in result.output
    [line] = [ln for ln in result.output.splitlines() if "subset_conflicts" in ln]
    assert [w for w in line.replace("│", " ").split()] == ["subset_conflicts", "1"]
