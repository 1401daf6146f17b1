"""Images embedded in an annotation file (LabelMe imageData) are imported from memory: no temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.conftest import make_image_bytes
from visionloop.formats.base import Sample, copy_image
from visionloop.ingest.importer import ImportReport, _Folder, _read_sample


def _temp_entries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir()}


def test_embedded_image_is_stored_from_memory_and_exported(project_factory, tmp_path: Path) -> None:
    p = project_factory("detection")
    data = make_image_bytes(width=40, height=30, fmt="PNG", seed=3)
    sample = Sample(name="../emb/x.png", image_data=data, meta={"annotation_file": "x.json"})
    report = ImportReport(source="x.json", format="labelme")
    before = _temp_entries()
    new = _read_sample(p, sample, report, _Folder.of(tmp_path))
    assert new is not None and (new.width, new.height) == (40, 30) and report.problems == []
    assert p.blobs.read(new.sha256) == data
    assert new.name == "emb/x.png" and new.source_uri == "x.json (embedded image)"  # never '..' in a stored name
    dest = copy_image(sample, tmp_path / "out")
    assert dest == tmp_path / "out" / "emb" / "x.png" and dest.read_bytes() == data
    assert _temp_entries() - before == set()


def test_embedded_bomb_or_garbage_is_a_problem(project_factory, tmp_path: Path) -> None:
    p = project_factory("detection")
    report = ImportReport(source="x.json", format="labelme")
    assert _read_sample(p, Sample(name="g.png", image_data=b"not an image"), report, _Folder.of(tmp_path)) is None
    assert "not an image" in report.problems[0].reason
