"""What an import reads when no format is named: a format, plain images when the folder holds nothing else, or an
error listing the formats tried; a corrupted annotation file is never imported as plain images without a word."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.core.errors import FormatError
from visionloop.formats import FORMATS, IMAGES, detect_format, detect_source
from visionloop.ingest.importer import import_source


def _coco_copy(formats_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "coco"
    shutil.copytree(formats_dir / "coco_dataset" / "coco_instances", dest)
    return dest


def test_only_images_are_images(tmp_path: Path, image_factory, project_factory) -> None:
    image_factory("shots/a.jpg")
    image_factory("shots/b.png")
    (tmp_path / "shots" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "shots" / "README.md").write_text("holiday photos")
    assert detect_source(tmp_path / "shots") == IMAGES
    report = import_source(project_factory("detection"), tmp_path / "shots")
    assert report.format == IMAGES and report.images_added == 2


def test_unknown_folder_lists_formats_tried_and_files(tmp_path: Path, image_factory) -> None:
    image_factory("mixed/a.jpg")
    (tmp_path / "mixed" / "notes.xyz").write_text("something")
    with pytest.raises(FormatError) as err:
        detect_source(tmp_path / "mixed")
    message = str(err.value)
    assert all(name in message for name in FORMATS) and "notes.xyz" in message and "--format images" in message
    with pytest.raises(FormatError, match="only 1 image"):
        detect_format(tmp_path / "mixed" / "a.jpg")
    with pytest.raises(FormatError, match="no such file"):
        detect_source(tmp_path / "absent")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.json").write_text("{}")
    with pytest.raises(FormatError, match=r"todo\.json\)\. If they are annotations.*--format$"):
        detect_source(tmp_path / "notes")  # no image: no advice to import images


@pytest.mark.parametrize("damage", ["emptied", "garbage", "truncated"])
def test_corrupted_annotation_file_is_not_plain_images(damage: str, formats_dir: Path, tmp_path: Path,
                                                       project_factory) -> None:
    src = _coco_copy(formats_dir, tmp_path)
    for f in (src / "annotations").glob("*.json"):
        text = f.read_text()
        f.write_text({"emptied": "", "garbage": "\x00\x13garbage{{", "truncated": text[: len(text) // 2]}[damage])
    project = project_factory("detection")
    with pytest.raises(FormatError) as err:
        import_source(project, src)
    assert "instances_train.json" in str(err.value)
    assert not list(project.images())


def test_one_corrupted_file_among_good_ones_is_a_problem(formats_dir: Path, tmp_path: Path, project_factory) -> None:
    src = _coco_copy(formats_dir, tmp_path)
    (src / "annotations" / "instances_val.json").write_text('{"images": [{"id": 1, "file_na')
    report = import_source(project_factory("detection"), src)
    assert report.format == "coco" and report.images_added == 1
    assert any("instances_val.json" in p.path and "not valid JSON" in p.reason for p in report.problems)


def test_cli_exits_non_zero_on_a_corrupted_folder(formats_dir: Path, tmp_path: Path) -> None:
    src = _coco_copy(formats_dir, tmp_path)
    for f in (src / "annotations").glob("*.json"):
        f.write_text("")
    runner = CliRunner()
    proj = str(tmp_path / "p")
    assert runner.invoke(app, ["init", proj, "--task", "detection"]).exit_code == 0
    result = runner.invoke(app, ["import", proj, str(src), "--json"])
    assert result.exit_code == 1 and "formats tried" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["stats", proj, "--json"])
    assert json.loads(result.stdout)["images"] == 0
