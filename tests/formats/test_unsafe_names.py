"""Names from data files never read or write outside their folder, in COCO, LabelMe, Label Studio, VIA and CVAT.

Each case puts a real image outside the dataset folder, names it from the annotation file by ``../`` or an absolute
path, and checks that the import does not read it and reports the name; export of a sample named ``../../x`` writes
nothing outside the output folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from visionloop.core.annotations import Boxes
from visionloop.core.task import Task
from visionloop.formats import get_format
from visionloop.formats.base import FormatDataset, Sample

ASSETS = Path(__file__).parent / "assets"


def _coco(formats_dir: Path, data: Path, evil: str) -> None:
    shutil.copytree(formats_dir / "coco_dataset" / "coco_instances", data)
    f = data / "annotations" / "instances_train.json"
    doc = json.loads(f.read_text())
    doc["images"][0]["file_name"] = evil
    f.write_text(json.dumps(doc))


def _labelme(formats_dir: Path, data: Path, evil: str) -> None:
    shutil.copytree(ASSETS / "labelme", data)
    (data / "street_01.jpg").unlink()
    doc = json.loads((data / "street_01.json").read_text())
    doc.update(imagePath=evil, imageData=None)
    (data / "street_01.json").write_text(json.dumps(doc))


def _labelstudio(formats_dir: Path, data: Path, evil: str) -> None:
    shutil.copytree(ASSETS / "labelstudio", data)
    f = next(data.glob("*.json"))
    doc = json.loads(f.read_text())
    doc[0]["data"]["image"] = evil
    f.write_text(json.dumps(doc))


def _via(formats_dir: Path, data: Path, evil: str) -> None:
    shutil.copytree(ASSETS / "via" / "project", data)
    f = next(data.glob("*.json"))
    doc = json.loads(f.read_text())
    next(iter(doc["_via_img_metadata"].values()))["filename"] = evil
    f.write_text(json.dumps(doc))


def _cvat(formats_dir: Path, data: Path, evil: str) -> None:
    shutil.copytree(formats_dir / "cvat_dataset" / "for_images" / "export_task", data)
    xml = data / "train.xml"
    xml.write_text(xml.read_text().replace('name="img0.jpg"', f'name="{evil}"'))


BUILDERS: dict[str, Callable[[Path, Path, str], None]] = {
    "coco": _coco, "labelme": _labelme, "labelstudio": _labelstudio, "via": _via, "cvat": _cvat}


@pytest.mark.parametrize("how", ["climb", "absolute"])
@pytest.mark.parametrize("fmt", list(BUILDERS))
def test_names_leading_out_are_not_read(fmt: str, how: str, formats_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret" / "secret.jpg"
    outside.parent.mkdir()
    shutil.copyfile(ASSETS / "labelme" / "street_01.jpg", outside)
    data = tmp_path / "deep" / "data"
    data.parent.mkdir()
    evil = "../../secret/secret.jpg" if how == "climb" else str(outside)
    BUILDERS[fmt](formats_dir, data, evil)
    ds = get_format(fmt).load(data)
    root = data.resolve()
    for s in ds.samples:
        assert s.image_path is None or root in s.image_path.resolve().parents, s.image_path
    assert any("secret" in f"{p.path} {p.reason}" for p in ds.problems), [p.reason for p in ds.problems]


@pytest.mark.parametrize("fmt", list(BUILDERS))
def test_export_writes_only_inside_its_folder(fmt: str, tmp_path: Path) -> None:
    image = tmp_path / "in" / "street.jpg"
    image.parent.mkdir()
    shutil.copyfile(ASSETS / "labelme" / "street_01.jpg", image)
    ds = FormatDataset(task=Task.DETECTION, classes=["car"], samples=[
        Sample(name="../../x/secret.jpg", image_path=image, width=100, height=60, subset="../../up",
               annotation=Boxes([[1, 2, 30, 40]], [0]))])
    out = tmp_path / "a" / "b" / "out"
    get_format(fmt).save(ds, out)
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - {image}
    assert written and all(out in p.parents for p in written), sorted(map(str, written))
    again = get_format(fmt).load(out)
    assert len(again.samples) == 1 and again.samples[0].image_path is not None
