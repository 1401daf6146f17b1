"""``visionloop tiles``: pyramids for large images that lack one, and a clear failure for a damaged file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.ingest import import_source
from visionloop.storage import Project
from visionloop.storage.tiles import TileStore


def test_tiles_builds_what_is_missing_and_reports_a_damaged_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 4200, 3), dtype=np.uint8)).save(src / "wide.png")
    Image.fromarray(rng.integers(0, 255, (4100, 200, 3), dtype=np.uint8)).save(src / "tall.png")
    with Project.create(tmp_path / "p", task="detection") as p:
        import_source(p, src, format="images")
        store, shas = TileStore.of(p), {im.name: im.sha256 for im in p.images()}
        assert all(store.has(sha) for sha in shas.values())  # the import built them
        for sha in shas.values():
            store.remove(sha)
        blob = p.blobs.path(shas["tall.png"])
    runner = CliRunner()
    ok = runner.invoke(app, ["tiles", str(tmp_path / "p"), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == {"built": 2, "failed": []}
    again = runner.invoke(app, ["tiles", str(tmp_path / "p"), "--json"])
    assert json.loads(again.stdout) == {"built": 0, "failed": []}

    store.remove(shas["tall.png"])
    blob.write_bytes(blob.read_bytes()[:5000])  # damaged on disk after the import
    bad = runner.invoke(app, ["tiles", str(tmp_path / "p"), "--json"])
    assert bad.exit_code == 1
    (failure,) = json.loads(bad.stdout)["failed"]
    assert failure["image"] == "tall.png" and "truncated or corrupt" in failure["reason"]
    assert not store.has(shas["tall.png"]) and store.has(shas["wide.png"])
