"""Byte-identical images whose two VOC files give different boxes: reported, and the user chooses what is kept.

Real BCCD files: three images with their annotations, and a byte-identical copy of one of them whose annotation
file was edited (one box dropped, one box moved), as in the real detection set where 4 such pairs silently lost
their first annotation.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from visionloop.core import Boxes
from visionloop.core.errors import AnnotationValidationError
from visionloop.ingest import OnConflict, import_source

IDS = ["BloodImage_00001", "BloodImage_00002", "BloodImage_00003"]


def _voc_with_a_conflicting_copy(bccd_dir: Path, root: Path) -> tuple[int, int]:
    """A VOC folder of 3 real images + a copy of the first with an edited annotation; returns (boxes in the
    original file, boxes in the edited copy)."""
    src = bccd_dir / "BCCD"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for i in IDS:
        shutil.copy(src / "JPEGImages" / f"{i}.jpg", root / "JPEGImages")
        shutil.copy(src / "Annotations" / f"{i}.xml", root / "Annotations")
    copy = "BloodImage_00001_copy"
    shutil.copy(src / "JPEGImages" / f"{IDS[0]}.jpg", root / "JPEGImages" / f"{copy}.jpg")
    xml = (src / "Annotations" / f"{IDS[0]}.xml").read_text()
    objects = re.findall(r"<object>.*?</object>", xml, flags=re.S)
    edited = xml.replace(objects[-1], "")  # one box less
    moved = re.sub(r"<xmin>(\d+)</xmin>", lambda m: f"<xmin>{int(m.group(1)) + 7}</xmin>", objects[1], count=1)
    edited = edited.replace(objects[1], moved)  # one box moved
    edited = edited.replace(f"<filename>{IDS[0]}.jpg</filename>", f"<filename>{copy}.jpg</filename>")
    (root / "Annotations" / f"{copy}.xml").write_text(edited)
    return len(objects), len(objects) - 1


def _boxes_of_first(project) -> Boxes:
    [image] = [im for im in project.images() if im.name.startswith(IDS[0])]
    return project.head(image.id)[1]


@pytest.mark.parametrize("policy", [None, "first", "last", "merge"])
def test_conflicting_copies_are_reported_and_resolved_as_chosen(bccd_dir, project_factory, tmp_path, policy):
    n_first, n_second = _voc_with_a_conflicting_copy(bccd_dir, tmp_path / "voc")
    p = project_factory("detection")
    kw = {} if policy is None else {"on_conflict": policy}
    report = import_source(p, tmp_path / "voc", format="voc", **kw)
    assert (report.images_added, report.images_existing) == (3, 1)
    [conflict] = report.conflicts
    names = {conflict.first_name, conflict.second_name}
    assert names == {f"{IDS[0]}.jpg", "BloodImage_00001_copy.jpg"}
    assert len(conflict.first["xyxy"]) + len(conflict.second["xyxy"]) == n_first + n_second
    assert conflict.kept == (policy or "first")
    assert any(q.action.startswith("conflict") and "BloodImage_00001_copy.jpg" in q.path for q in report.problems)
    assert report.to_json()["conflicts"][0]["second"]["annotation"]["type"] == "boxes"

    stored = _boxes_of_first(p)
    first_is_original = conflict.first_name == f"{IDS[0]}.jpg"
    n_kept_first = n_first if first_is_original else n_second
    n_kept_last = n_second if first_is_original else n_first
    expected = {None: n_kept_first, "first": n_kept_first, "last": n_kept_last,
                "merge": n_first + 1}[policy]  # merge: all boxes of both, the unchanged ones once, the moved one twice
    assert len(stored) == expected
    assert report.instances == p.stats()["classes"]  # the report counts what is stored, not both copies
    history = p.history(next(im.id for im in p.images() if im.name.startswith(IDS[0])))
    assert len(history) == (1 if policy in (None, "first") else 2)  # the first annotation stays in the history

    again = import_source(p, tmp_path / "voc", format="voc", **kw)  # re-running adds nothing new
    assert again.annotations_saved == 0 and len(_boxes_of_first(p)) == expected


def test_on_conflict_is_checked(project_factory, tmp_path):
    with pytest.raises(AnnotationValidationError, match="first, last or merge"):
        OnConflict.parse("second")
    with pytest.raises(AnnotationValidationError, match="first, last or merge"):
        import_source(project_factory("detection"), tmp_path, on_conflict="keep")


def test_cli_on_conflict_option(bccd_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from visionloop.cli.main import app
    from visionloop.storage import Project

    n_first, n_second = _voc_with_a_conflicting_copy(bccd_dir, tmp_path / "voc")
    Project.create(tmp_path / "p", task="detection").close()
    runner = CliRunner()
    bad = runner.invoke(app, ["import", str(tmp_path / "p"), str(tmp_path / "voc"), "--on-conflict", "second"])
    assert bad.exit_code != 0 and "first, last or merge" in bad.output
    done = runner.invoke(app, ["import", str(tmp_path / "p"), str(tmp_path / "voc"), "--on-conflict", "merge",
                               "--json"])
    assert done.exit_code == 0, done.output
    [conflict] = json.loads(done.output)["conflicts"]
    assert conflict["kept"] == "merge"
    with Project.open(tmp_path / "p") as p:
        assert len(_boxes_of_first(p)) == n_first + 1
    plain = runner.invoke(app, ["import", str(tmp_path / "p"), str(tmp_path / "voc")])
    assert plain.exit_code == 0 and "conflict" in plain.output
