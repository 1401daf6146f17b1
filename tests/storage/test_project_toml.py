"""visionloop.toml is written by a TOML library: any project name and nested blob options read back as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

from visionloop.storage import Project


def test_names_that_broke_the_hand_written_toml_round_trip(tmp_path: Path) -> None:
    name = 'cells "v2" \\ lab\nsecond line = "x"'  # quotes, a backslash, a newline and a fake key
    options = {"endpoint_url": "http://127.0.0.1:9000", "client_kwargs": {"region_name": "eu-west-1"}}
    Project.create(tmp_path / "p", task="detection", name=name, blob_url="memory://vl-toml/blobs",
                   blob_options=options).close()
    cfg = tomllib.loads((tmp_path / "p" / "visionloop.toml").read_text(encoding="utf-8"))
    assert cfg == {"name": name, "task": "detection", "blob_url": "memory://vl-toml/blobs", "blob_options": options}
    with Project.open(tmp_path / "p") as p:
        assert p.name == name and p.blobs.url == "memory://vl-toml/blobs"
