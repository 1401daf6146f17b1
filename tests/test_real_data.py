"""Issue 2 on the real data: BCCD (Pascal VOC boxes) and DSB2018 (instance masks), end to end through the CLI."""

import json

import numpy as np
from typer.testing import CliRunner

from visionloop.cli.main import app

runner = CliRunner()


def cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_bccd_import_counts_versions_and_reimport(bccd_dir, tmp_path):
    proj = str(tmp_path / "bccd")
    cli("init", proj, "--task", "detection")
    report = cli("import", proj, str(bccd_dir))
    assert report["format"] == "voc"
    stats = cli("stats", proj)
    assert stats["images"] == 364
    assert stats["classes"] == {"RBC": 4155, "WBC": 372, "Platelets": 361}
    assert stats["annotations"] == 4155 + 372 + 361
    again = cli("import", proj, str(bccd_dir))
    assert (again["images_added"], again["annotations_saved"]) == (0, 0)
    assert cli("stats", proj)["annotations"] == stats["annotations"]

    v1 = cli("version", "create", proj, "--seed", "0")
    assert {"version", "hash", "splits"} <= set(v1)
    assert sum(v1["splits"].values()) == 364 and all(v1["splits"][s] > 0 for s in ("train", "val", "test"))
    v2 = cli("version", "create", proj, "--seed", "0")
    assert v2["hash"] == v1["hash"] and v2["version"] != v1["version"]
    listed = cli("version", "list", proj)
    assert [v["version"] for v in listed] == [v1["version"], v2["version"]]


def test_bccd_export_reimport_is_equal_and_coco_loads_in_pycocotools(bccd_dir, tmp_path):
    from pycocotools.coco import COCO

    proj = str(tmp_path / "bccd")
    cli("init", proj, "--task", "detection")
    cli("import", proj, str(bccd_dir))
    cli("export", proj, str(tmp_path / "coco"), "--format", "coco")
    # the VOC ImageSets (train/val/test) come through as COCO subsets
    files = sorted((tmp_path / "coco").rglob("*.json"))
    assert [f.name for f in files] == ["instances_test.json", "instances_train.json", "instances_val.json"]
    cocos = [COCO(str(f)) for f in files]
    assert sum(len(c.getImgIds()) for c in cocos) == 364 and sum(len(c.getAnnIds()) for c in cocos) == 4888
    proj2 = str(tmp_path / "again")
    cli("init", proj2, "--task", "detection")
    cli("import", proj2, str(tmp_path / "coco"))
    assert cli("stats", proj2)["classes"] == cli("stats", proj)["classes"]

    from visionloop.storage import Project

    with Project.open(proj) as a, Project.open(proj2) as b:
        by_sha_a = {im.sha256: a.head(im.id)[1] for im in a.images()}
        names_a = {c.id: c.name for c in a.ontology().classes}
        names_b = {c.id: c.name for c in b.ontology().classes}
        for im in b.images():
            ann_b = b.head(im.id)[1]
            ann_a = by_sha_a[im.sha256]
            assert [names_b[c] for c in ann_b.class_id] == [names_a[c] for c in ann_a.class_id]
            np.testing.assert_allclose(ann_b.xyxy, ann_a.xyxy, atol=1e-3)


def test_dsb2018_instance_masks(dsb_dir, tmp_path):
    proj = str(tmp_path / "nuclei")
    cli("init", proj, "--task", "segmentation")
    report = cli("import", proj, str(dsb_dir / "stage1_train"))
    assert report["format"] == "kaggle_masks"
    stats = cli("stats", proj)
    assert stats["images"] == 120
    assert stats["annotations"] == 4597
