"""A dataset wrapped in folders (a folder dropped in the browser, an archive of a repository) is found inside them."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from visionloop.core.errors import FormatError
from visionloop.formats import unwrap_folder
from visionloop.ingest import import_source
from visionloop.storage import Project

SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample"


def _wrapped_sample(root: Path, n: int = 3) -> Path:
    """``root/bccd-sample/{README.md, LICENSE, BCCD/Annotations, BCCD/JPEGImages}``: the repository's sample folder
    as a browser uploads it (two folders above the VOC dataset)."""
    top = root / "bccd-sample"
    for name in ("README.md", "LICENSE"):
        top.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / name, top / name)
    for xml in sorted((SAMPLE / "BCCD" / "Annotations").glob("*.xml"))[:n]:
        for sub, name in (("Annotations", xml.name), ("JPEGImages", f"{xml.stem}.jpg")):
            (top / "BCCD" / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(SAMPLE / "BCCD" / sub / name, top / "BCCD" / sub / name)
    (root / ".DS_Store").write_bytes(b"\0")
    return root


def test_a_folder_two_levels_above_a_voc_dataset_imports(tmp_path: Path) -> None:
    source = _wrapped_sample(tmp_path / "drop")
    assert unwrap_folder(source) == source / "bccd-sample"  # the VOC reader looks one level further itself
    with Project.create(tmp_path / "p", task="detection") as p:
        report = import_source(p, source)
        assert (report.format, report.images_added) == ("voc", 3), report.to_json()
        assert {c.name for c in p.ontology().active} == {"WBC", "RBC", "Platelets"}


def test_a_zip_of_the_wrapped_folder_imports(tmp_path: Path) -> None:
    source = _wrapped_sample(tmp_path / "drop")
    archive = tmp_path / "sample.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(source.rglob("*")):
            if f.is_file():
                zf.write(f, f"outer/{f.relative_to(source).as_posix()}")
    with Project.create(tmp_path / "p", task="detection") as p:
        assert import_source(p, archive).images_added == 3


def test_unwrapping_stops_at_data_and_at_more_than_one_folder(tmp_path: Path) -> None:
    two = tmp_path / "two"
    (two / "a").mkdir(parents=True)
    (two / "b").mkdir()
    assert unwrap_folder(two) == two  # two folders: which one is the user's is not for us to guess
    beside = tmp_path / "beside"
    (beside / "inner").mkdir(parents=True)
    (beside / "notes.txt").write_text("not a readme")
    assert unwrap_folder(beside) == beside
    with Project.create(tmp_path / "p", task="detection") as p, pytest.raises(FormatError, match="no known format"):
        import_source(p, two)
