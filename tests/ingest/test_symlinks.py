"""Symbolic links inside a folder being imported: followed while they stay inside it; one that leads outside is
never read (its bytes are not stored, its text never reaches a report) and is named as a per-file problem."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from tests.conftest import REPO, make_image_bytes
from visionloop.formats import yolo
from visionloop.formats._paths import LINK_OUT, candidate_files, walk_files
from visionloop.ingest import import_source

SECRET = "root:x:0:0:top secret line"

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links are not available")


def _outside(tmp_path):
    out = tmp_path / "outside"
    (out / "dir").mkdir(parents=True)
    (out / "secret.jpg").write_bytes(make_image_bytes(seed=90))
    (out / "dir" / "other.jpg").write_bytes(make_image_bytes(seed=91))
    (out / "secret.txt").write_text(f"{SECRET}\n")
    return out


def _not_read(report):
    return sorted(p.path for p in report.problems if p.action == "not read" and p.reason == LINK_OUT)


def _stored(project, data):
    return project.blobs.exists(hashlib.sha256(data).hexdigest())


def test_walk_follows_links_inside_and_never_outside(tmp_path):
    out = _outside(tmp_path)
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.jpg").write_bytes(b"a")
    (root / "alias.jpg").symlink_to(root / "sub" / "a.jpg")  # inside: fine
    (root / "same").symlink_to(root / "sub")  # a folder inside: walked once, as the folder it is
    (root / "up").symlink_to(root)  # a loop back to the root: not walked again
    (root / "secret.jpg").symlink_to(out / "secret.jpg")
    (root / "far").symlink_to(out / "dir")
    (root / "broken.jpg").symlink_to(tmp_path / "nothing-here.jpg")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "sub" / "pipe.jpg")  # reading it would block forever: not a file to read
    links_out = []
    found = sorted(p.relative_to(root).as_posix() for p in walk_files(root, links_out=links_out))
    assert found in (["alias.jpg", "same/a.jpg"], ["alias.jpg", "sub/a.jpg"])
    assert sorted(p.name for p in links_out) == ["broken.jpg", "far", "secret.jpg"]


def test_annotation_files_of_a_folder_leave_out_links_leading_out(tmp_path):
    """What CVAT, Label Studio and VIA read of a folder (its top-level annotation files)."""
    out = _outside(tmp_path)
    (out / "tasks.json").write_text("[]")
    root = tmp_path / "ls"
    root.mkdir()
    (root / "export.json").write_text("[]")
    (root / "alias.json").symlink_to(root / "export.json")
    (root / "tasks.json").symlink_to(out / "tasks.json")
    assert [p.name for p in candidate_files(root, ".json")] == ["alias.json", "export.json"]


def test_images_import_skips_links_leading_out(project_factory, tmp_path):
    out = _outside(tmp_path)
    root = tmp_path / "imgs"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "a.jpg").write_bytes(make_image_bytes(seed=1))
    (root / "cats" / "b.jpg").symlink_to(root / "cats" / "a.jpg")
    (root / "cats" / "secret.jpg").symlink_to(out / "secret.jpg")
    (root / "far").symlink_to(out / "dir")
    p = project_factory("classification")
    report = import_source(p, root, format="images")
    assert report.images_added == 1 and report.images_existing == 1  # the link inside is the same image
    assert _not_read(report) == ["cats/secret.jpg", "far"]
    assert not _stored(p, (out / "secret.jpg").read_bytes()) and not _stored(p, (out / "dir/other.jpg").read_bytes())


def test_class_folders_image_linked_out_is_not_stored(project_factory, tmp_path):
    """A format whose own walker meets the link: the importer still refuses to read the image."""
    out = _outside(tmp_path)
    root = tmp_path / "classes"
    for cls, seed in (("cat", 1), ("dog", 2)):
        (root / cls).mkdir(parents=True)
        (root / cls / f"{cls}.jpg").write_bytes(make_image_bytes(seed=seed))
    (root / "dog" / "secret.jpg").symlink_to(out / "secret.jpg")
    p = project_factory("classification")
    report = import_source(p, root, format="class_folders")
    assert report.images_added == 2
    assert "dog/secret.jpg" in _not_read(report)
    assert not _stored(p, (out / "secret.jpg").read_bytes())


def test_yolo_labels_and_names_linked_out_are_not_read(project_factory, formats_dir, tmp_path):
    out = _outside(tmp_path)
    root = tmp_path / "yolo"
    shutil.copytree(formats_dir / "yolo_dataset/labels", root)
    (root / "data.yaml").symlink_to(out / "secret.txt")  # would be read for class names
    (root / "images/train/2.jpg").symlink_to(out / "secret.jpg")
    (root / "images/val/3.jpg").write_bytes(make_image_bytes(seed=5))
    (root / "labels/val/3.txt").symlink_to(out / "secret.txt")  # its label file leads out
    ds = yolo.load(root)
    assert sorted(s.name for s in ds.samples) == ["1.jpg", "1.jpg", "3.jpg"]
    assert ds.classes[:2] == ["label_0", "label_1"]  # from obj.names: data.yaml was not read
    assert next(s for s in ds.samples if s.name == "3.jpg").annotation is None  # not read: unlabelled, not negative
    assert SECRET not in repr(ds.problems)
    p = project_factory("detection")
    report = import_source(p, root)
    assert _not_read(report) == ["data.yaml", "images/train/2.jpg", "labels/val/3.txt"]
    assert SECRET not in repr(report.to_json())
    assert not _stored(p, (out / "secret.jpg").read_bytes())


def test_voc_annotation_linked_out_is_not_read(project_factory, formats_dir, tmp_path):
    """datumaro's VOC sample, plus a link to an annotation file outside the folder (of a class never seen inside)."""
    root = tmp_path / "voc"
    shutil.copytree(formats_dir / "voc_dataset/voc_dataset1", root)
    xml = (root / "Annotations/2007_000001.xml").read_text()
    outside = tmp_path / "elsewhere.xml"
    outside.write_text(xml.replace("<name>cat</name>", "<name>secretclass</name>", 1))
    assert "secretclass" in outside.read_text()
    (root / "Annotations/linked.xml").symlink_to(outside)
    p = project_factory("detection")
    report = import_source(p, root, format="voc")
    assert _not_read(report) == ["Annotations/linked.xml"]
    assert "secretclass" not in p.ontology().names and report.conflicts == []
    assert report.annotations_saved == 1


def test_a_link_the_user_names_as_the_source_is_read(project_factory, tmp_path):
    out = _outside(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "chosen.jpg").symlink_to(out / "secret.jpg")
    p = project_factory("classification")
    report = import_source(p, tmp_path / "in" / "chosen.jpg", format="images")
    assert report.images_added == 1 and report.problems == []


def test_instance_mask_linked_out_is_not_read(project_factory, tmp_path):
    """DSB2018 layout (``<id>/images/<id>.png``, one mask PNG per nucleus in ``<id>/masks/``)."""
    import numpy as np
    from PIL import Image

    out = _outside(tmp_path)
    item = tmp_path / "nuclei" / "a1"
    (item / "images").mkdir(parents=True)
    (item / "masks").mkdir()
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(item / "images" / "a1.png")
    for name, where in (("m1.png", item / "masks"), ("far.png", out)):
        mask = np.zeros((48, 64), np.uint8)
        mask[4:20, 4:20] = 255
        Image.fromarray(mask).save(where / name)
    (item / "masks" / "m2.png").symlink_to(out / "far.png")
    p = project_factory("segmentation")
    report = import_source(p, tmp_path / "nuclei", format="kaggle_masks")
    assert _not_read(report) == ["a1/masks/m2.png"]
    assert p.stats()["annotations"] == 1


def test_semantic_mask_linked_out_is_not_read(project_factory, tmp_path):
    import numpy as np
    from PIL import Image

    out = _outside(tmp_path)
    root = tmp_path / "sem"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(2):
        Image.fromarray(np.full((48, 64, 3), 40 * k, np.uint8)).save(root / "images" / f"{k}.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[4:20, 4:20] = 1
    Image.fromarray(mask).save(root / "masks" / "0.png")
    Image.fromarray(mask).save(out / "1.png")
    (root / "masks" / "1.png").symlink_to(out / "1.png")
    p = project_factory("segmentation")
    report = import_source(p, root, format="semantic_masks")
    assert "masks/1.png" in _not_read(report)
    assert p.stats()["annotated_images"] == 1


def test_csv_table_linked_out_is_not_read(project_factory, tmp_path):
    out = _outside(tmp_path)
    root = tmp_path / "tags"
    root.mkdir()
    for k in range(2):
        (root / f"{k}.jpg").write_bytes(make_image_bytes(seed=k))
    (root / "train.csv").write_text("image,labels\n0.jpg,cat\n")
    (out / "val.csv").write_text("image,labels\n1.jpg,secretclass\n")
    (root / "val.csv").symlink_to(out / "val.csv")
    p = project_factory("tagging")
    report = import_source(p, root, format="csv")
    assert "val.csv" in _not_read(report)
    assert "secretclass" not in p.ontology().names and p.stats()["annotated_images"] == 1


def test_coco_annotation_file_linked_out_is_not_read(project_factory, formats_dir, tmp_path):
    """datumaro's COCO sample, with its val annotations replaced by a link to a file outside the folder."""
    root = tmp_path / "coco"
    shutil.copytree(formats_dir / "coco_dataset/coco_instances", root)
    val = root / "annotations/instances_val.json"
    outside = tmp_path / "elsewhere.json"
    outside.write_text(val.read_text().replace('"name":"a"', '"name":"secretclass"', 1))
    val.unlink()
    val.symlink_to(outside)
    p = project_factory("detection")
    report = import_source(p, root, format="coco")
    assert "secretclass" not in p.ontology().names
    assert report.images_added == 1  # only train's a.jpg: b.jpg is listed by the file that was not read


def test_labelme_annotation_file_linked_out_is_not_read(project_factory, tmp_path):
    root = tmp_path / "labelme"
    shutil.copytree(REPO / "tests/formats/assets/labelme", root)
    first = root / "street_01.json"
    outside = tmp_path / "elsewhere.json"
    outside.write_text(first.read_text())
    first.unlink()
    first.symlink_to(outside)
    p = project_factory("segmentation")
    report = import_source(p, root, format="labelme")
    names = {im.name for im in p.images()}
    assert not any(n.startswith("street_01") for n in names) and any(n.startswith("street_02") for n in names)
    assert report.images_added == len(names)
