"""One wrong field in a real annotation file gives a per-file problem naming it, never a traceback.

Each case copies a real sample (other tools' files from ``shared/formats``, or this repo's format fixtures), breaks one
field as a user's or an attacker's file would, and loads it with the format's real ``load``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from visionloop.core.errors import FormatError
from visionloop.formats import get_format

ASSETS = Path(__file__).resolve().parents[1] / "formats" / "assets"


def _json_case(src: Path, pick: Callable[[Path], Path], mutate: Callable[[Any], None], tmp: Path) -> Path:
    dest = tmp / "data"
    shutil.copytree(src, dest)
    f = pick(dest)
    doc = json.loads(f.read_text(encoding="utf-8"))
    mutate(doc)
    f.write_text(json.dumps(doc), encoding="utf-8")
    return dest


def _coco(mutate: Callable[[Any], None]) -> Callable[[Path, Path], Path]:
    return lambda shared, tmp: _json_case(shared / "coco_dataset" / "coco_instances",
                                          lambda d: d / "annotations" / "instances_train.json", mutate, tmp)


def _labelme(mutate: Callable[[Any], None]) -> Callable[[Path, Path], Path]:
    return lambda shared, tmp: _json_case(ASSETS / "labelme", lambda d: d / "street_01.json", mutate, tmp)


def _labelstudio(mutate: Callable[[Any], None]) -> Callable[[Path, Path], Path]:
    return lambda shared, tmp: _json_case(ASSETS / "labelstudio", lambda d: next(d.glob("*.json")), mutate, tmp)


def _via(mutate: Callable[[Any], None]) -> Callable[[Path, Path], Path]:
    return lambda shared, tmp: _json_case(ASSETS / "via" / "project", lambda d: next(d.glob("*.json")), mutate, tmp)


def _first_region(doc: dict[str, Any]) -> dict[str, Any]:
    return next(iter(doc["_via_img_metadata"].values()))["regions"][0]


def _deep(doc: dict[str, Any]) -> None:
    doc["deep"] = "NEST"


def _deep_file(shared: Path, tmp: Path) -> Path:
    dest = _coco(_deep)(shared, tmp)
    f = dest / "annotations" / "instances_train.json"
    f.write_text(f.read_text().replace('"NEST"', "[" * 50_000 + "]" * 50_000))
    return dest


def _ls_width(doc: list[dict[str, Any]]) -> None:
    for task in doc:
        for ann in task.get("annotations", []):
            for r in ann["result"]:
                r["original_width"] = "w"


def _bomb(doc: dict[str, Any]) -> None:
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, "PNG")
    doc["imagePath"] = "missing.jpg"
    doc["imageData"] = base64.b64encode(buf.getvalue()).decode("ascii")


def _bomb_case(shared: Path, tmp: Path) -> Path:
    dest = _labelme(_bomb)(shared, tmp)
    (dest / "street_01.jpg").unlink()  # the embedded image is the only one
    return dest


def _via_csv(shared: Path, tmp: Path) -> Path:
    dest = tmp / "data"
    shutil.copytree(ASSETS / "via" / "csv", dest)
    f = next(dest.glob("*.csv"))
    rows = list(csv.reader(f.read_text(encoding="utf-8").splitlines()))
    rows[1][5] = "[1,2,3]"
    with open(f, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    return dest


def _cvat_width(shared: Path, tmp: Path) -> Path:
    dest = tmp / "data"
    shutil.copytree(shared / "cvat_dataset" / "for_images" / "export_task", dest)
    xml = dest / "train.xml"
    xml.write_text(re.sub(r'width="\d+"', 'width="wide"', xml.read_text(), count=1))
    return dest


def _yolo_class_inf(shared: Path, tmp: Path) -> Path:
    dest = tmp / "data"
    shutil.copytree(shared / "yolo_dataset" / "strict", dest)
    label = dest / "obj_train_data" / "1.txt"
    lines = label.read_text().splitlines()
    label.write_text("\n".join(["inf" + line[line.index(" "):] for line in lines[:1]] + lines[1:]) + "\n")
    return dest


def _short_colour(shared: Path, tmp: Path) -> Path:
    return _json_case(shared / "common_semantic_segmentation_dataset" / "dataset",
                      lambda d: d / "dataset_meta.json", lambda d: d["segmentation_colors"].__setitem__(3, [1]), tmp)


def _cvat_huge_mask(shared: Path, tmp: Path) -> Path:
    dest = _cvat_width(shared, tmp)
    xml = dest / "train.xml"
    xml.write_text(xml.read_text().replace('width="wide"', 'width="10000000" height="10000000"', 1).replace(
        'height="8" id="0"', 'id="0"').replace(
        "</image>", '<mask label="label1" rle="1, 2" left="0" top="0" width="3" height="1"/></image>', 1))
    return dest


def _huge_mask(doc: dict[str, Any]) -> None:
    doc.update(imageWidth=10_000_000, imageHeight=10_000_000)
    doc["shapes"].append({"label": "car", "shape_type": "mask", "points": [[0, 0], [2, 2]], "mask": "AAAA"})


def _yaml_anchors(shared: Path, tmp: Path) -> Path:
    """A 1 KB YAML of nested anchors (a billion-laughs bomb) before a real Roboflow data.yaml."""
    dest = tmp / "data"
    shutil.copytree(shared / "roboflow_dataset" / "yolo", dest)
    bomb = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    bomb += [f"{chr(97 + k)}: &{chr(97 + k)} [" + ", ".join([f"*{chr(96 + k)}"] * 9) + "]" for k in range(1, 9)]
    (dest / "data.yaml").write_text("\n".join(bomb) + "\n" + (dest / "data.yaml").read_text())
    return dest


CASES: dict[str, tuple[str, Callable[[Path, Path], Path], str]] = {
    # name: (format, build(shared assets, tmp) -> dataset folder, text the problem must contain)
    "coco bbox of 400 digits": ("coco", _coco(lambda d: d["annotations"][0].update(bbox=[10**400, 0, 1, 1])),
                                "bbox"),
    "coco negative RLE counts": ("coco", _coco(lambda d: d["annotations"][0].update(
        segmentation={"size": [10, 5], "counts": [-5, 10, 45]})), "RLE counts"),
    "coco RLE of 10^10 pixels": ("coco", _coco(lambda d: d["annotations"][0].update(
        segmentation={"size": [100_000, 100_000], "counts": "0"})), "segmentation size"),
    "cvat mask on a 10^7 x 10^7 image": ("cvat", _cvat_huge_mask, "width x height"),
    "labelme mask on a 10^7 x 10^7 image": ("labelme", _labelme(_huge_mask), "imageWidth x imageHeight"),
    "coco garbage RLE string": ("coco", _coco(lambda d: d["annotations"][0].update(
        segmentation={"size": [10, 5], "counts": "\u00ff\u00fe"})), "counts"),
    "coco RLE string of the wrong size": ("coco", _coco(lambda d: d["annotations"][0].update(
        segmentation={"size": [10, 5], "counts": "0o"})), "counts"),
    "coco category_id list": ("coco", _coco(lambda d: d["annotations"][0].update(category_id=[1])), "category_id"),
    "coco image_id object": ("coco", _coco(lambda d: d["annotations"][0].update(image_id={"a": 1})), "image_id"),
    "coco image id object": ("coco", _coco(lambda d: d["images"][0].update(id={"a": 1})), "image id"),
    "coco 5000-char file_name": ("coco", _coco(lambda d: d["images"][0].update(file_name="a" * 5000 + ".jpg")),
                                 "file_name"),
    "coco 50k-deep nesting": ("coco", _deep_file, "nested too deeply"),
    "coco width text": ("coco", _coco(lambda d: d["images"][0].update(width="w")), "width"),
    "coco segmentation int": ("coco", _coco(lambda d: d["annotations"][0].update(segmentation=7)), "segmentation"),
    "labelme 20000x20000 imageData": ("labelme", _bomb_case, "decompression-bomb"),
    "labelme group_id list": ("labelme", _labelme(lambda d: d["shapes"][0].update(group_id=[1])), "group_id"),
    "labelme flags list": ("labelme", _labelme(lambda d: d.update(flags=["a"])), "flags"),
    "labelme shape flags list": ("labelme", _labelme(lambda d: d["shapes"][0].update(flags=["a"])), "flags"),
    "labelme imageWidth text": ("labelme", _labelme(lambda d: d.update(imageWidth="w")), "imageWidth"),
    "labelme points text": ("labelme", _labelme(lambda d: d["shapes"][0].update(points="xy")), "points"),
    "labelstudio original_width text": ("labelstudio", _labelstudio(_ls_width), "original_width"),
    "labelstudio result not object": ("labelstudio", _labelstudio(
        lambda d: d[0]["annotations"][0]["result"].insert(0, 5)), "result"),
    "via regions text": ("via", _via(lambda d: next(iter(d["_via_img_metadata"].values())).update(regions="x")),
                         "regions"),
    "via region_attributes list": ("via", _via(lambda d: _first_region(d).update(region_attributes=[1, 2])),
                                   "region_attributes"),
    "via CSV shape list": ("via", _via_csv, "shape_attributes"),
    "cvat width text": ("cvat", _cvat_width, "width"),
    "yolo YAML nested anchors": ("yolo", _yaml_anchors, "YAML"),
    "yolo class id inf": ("yolo", _yolo_class_inf, "class id"),
}

RAISES: dict[str, tuple[str, Callable[[Path, Path], Path], str]] = {
    # cases where the whole dataset cannot be read: a clean FormatError naming the file, not a traceback
    "semantic_masks colour of one value": ("semantic_masks", _short_colour, "dataset_meta.json"),
    "semantic_masks colour of -1e308": ("semantic_masks", lambda shared, tmp: _json_case(
        shared / "common_semantic_segmentation_dataset" / "dataset", lambda d: d / "dataset_meta.json",
        lambda d: d["segmentation_colors"][3].__setitem__(2, -1e308), tmp), "0..255"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_field_is_a_problem(case: str, formats_dir: Path, tmp_path: Path) -> None:
    fmt, build, expected = CASES[case]
    folder = build(formats_dir, tmp_path)
    ds = get_format(fmt).load(folder)  # no exception
    reasons = [p.reason for p in ds.problems]
    assert any(expected in r for r in reasons), reasons
    assert ds.samples, "the rest of the file is still read"


@pytest.mark.parametrize("case", list(RAISES))
def test_wrong_field_that_spoils_the_dataset_is_a_format_error(case: str, formats_dir: Path, tmp_path: Path) -> None:
    fmt, build, expected = RAISES[case]
    folder = build(formats_dir, tmp_path)
    with pytest.raises(FormatError, match=expected):
        get_format(fmt).load(folder)


@pytest.mark.parametrize("case", ["via regions text", "cvat width text", "labelme imageWidth text", "coco width text"])
def test_wrong_field_of_an_image_keeps_the_image(case: str, formats_dir: Path, tmp_path: Path) -> None:
    """A field that spoils one image's annotation leaves the image in (unlabelled, or with its size measured)."""
    fmt, build, _ = CASES[case]
    original = {"via": ASSETS / "via" / "project", "labelme": ASSETS / "labelme",
                "cvat": formats_dir / "cvat_dataset/for_images/export_task",
                "coco": formats_dir / "coco_dataset/coco_instances"}[fmt]
    ds = get_format(fmt).load(build(formats_dir, tmp_path))
    assert len(ds.samples) == len(get_format(fmt).load(original).samples)
