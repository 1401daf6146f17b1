"""Export never writes outside its output folder, whatever the project's image, subset and class names hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_image_bytes

from visionloop.core import Boxes, Label
from visionloop.formats import FORMATS
from visionloop.formats.exporter import export_project
from visionloop.storage import NewImage

EVIL_NAMES = ["../../x/secret.jpg", "/abs/y.jpg", "..\\..\\win.jpg", "C:/drive.jpg", "a/../../../up.jpg", "ok.jpg"]


def _add(project, seed: int, name: str, subset: str | None = None) -> int:
    data = make_image_bytes(seed=seed)
    sha = project.blobs.put(data)
    meta = {"subset": subset} if subset else {}
    [(image_id, _)] = project.add_images([NewImage(sha256=sha, width=64, height=48, format="jpeg", name=name,
                                                   meta=meta)])
    return image_id


@pytest.mark.parametrize("fmt", ["yolo", "voc", "coco", "csv"])
def test_detection_export_of_escaping_names_stays_inside(project_factory, tmp_path: Path, fmt: str) -> None:
    if fmt not in FORMATS:
        pytest.skip(f"{fmt} not registered")
    p = project_factory("detection")
    cid = p.class_ids(["cell"])["cell"]
    for seed, name in enumerate(EVIL_NAMES):
        image_id = _add(p, seed, name, subset="../../sub" if seed % 2 else None)
        p.save_annotation(image_id, Boxes([[1, 1, 10, 10]], [cid]), base_revision=None, author="t")
    out = tmp_path / "deep" / "out"
    before = {q for q in tmp_path.rglob("*") if q.is_file()}
    summary = export_project(p, out, format=fmt)
    assert summary["images"] == len(EVIL_NAMES)
    written = {q for q in tmp_path.rglob("*") if q.is_file()} - before
    assert written and all(out in q.parents for q in written), sorted(map(str, written - {
        q for q in written if out in q.parents}))
    assert not (tmp_path / "x").exists() and not (tmp_path / "deep" / "x").exists()
    images = [q for q in written if q.suffix == ".jpg"]
    assert len(images) == len(EVIL_NAMES)  # none overwrote another


def test_class_folders_export_of_an_escaping_class_name_stays_inside(project_factory, tmp_path: Path) -> None:
    p = project_factory("classification")
    ids = p.class_ids(["../../../escaped", "cat", "a/b"])
    for seed, cls in enumerate(["../../../escaped", "cat", "a/b"]):
        image_id = _add(p, seed, f"{seed}.jpg")
        p.save_annotation(image_id, Label(ids[cls]), base_revision=None, author="t")
    out = tmp_path / "a" / "b" / "out"
    export_project(p, out, format="class_folders")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "escaped").exists()
    folders = sorted(q.name for q in out.iterdir() if q.is_dir())
    assert folders == ["_._.._.._escaped", "a_b", "cat"]
    assert sum(1 for q in out.rglob("*.jpg")) == 3


def test_yolo_export_from_an_imported_zip_stays_inside(project_factory, tmp_path: Path) -> None:
    """The issue's case: a dataset inside a zip whose image is named ../../x/secret.jpg (a COCO file_name)."""
    import json
    import zipfile

    from visionloop.ingest.importer import import_source

    victim = tmp_path / "x" / "secret.jpg"
    victim.parent.mkdir()
    victim.write_bytes(b"precious")
    doc = {"images": [{"id": 1, "file_name": "../../x/secret.jpg", "width": 64, "height": 48},
                      {"id": 2, "file_name": "ok.jpg", "width": 64, "height": 48}],
           "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "iscrowd": 0}],
           "categories": [{"id": 1, "name": "cell"}]}
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ds/annotations/instances_default.json", json.dumps(doc))
        zf.writestr("ds/images/ok.jpg", make_image_bytes(seed=1))
    p = project_factory("detection")
    report = import_source(p, archive)
    assert report.images_added == 1
    assert any("../../x/secret.jpg" in (q.path + q.reason) for q in report.problems)
    out = tmp_path / "export" / "out"
    export_project(p, out, format="yolo")
    assert victim.read_bytes() == b"precious"
