"""``visionloop next``: JSON for scripts, a table and notes for people, one-line errors that say what to do."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.active.colour_project import colour_project
from visionloop.cli.main import app

LOOKS = ["red", "grey", "yellow", "grey", "blue", "pinkish"]


def test_next_json_ranks_the_unlabelled_images(tmp_path: Path) -> None:
    colour_project(tmp_path / "p", LOOKS, labelled={0: "red"}).close()
    out = CliRunner().invoke(app, ["next", str(tmp_path / "p"), "--n", "3", "--strategy", "least_confidence",
                                   "--diversity", "none", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["strategy"] == "least_confidence" and body["pool"] == 5 and body["model"]["name"] == "colour"
    assert [r["name"] for r in body["results"]] == ["1-grey.png", "3-grey.png", "2-yellow.png"]
    assert all(set(r) == {"id", "name", "score", "strategy", "reason"} for r in body["results"])


def test_next_table_says_when_it_is_a_cold_start(tmp_path: Path) -> None:
    colour_project(tmp_path / "p", LOOKS, deploy=False).close()
    out = CliRunner().invoke(app, ["next", str(tmp_path / "p"), "--n", "2"])
    assert out.exit_code == 0, out.output
    assert "strategy typiclust" in out.stdout and "cold start" in out.stdout and "most typical" in out.stdout


def test_next_without_embeddings_says_how_to_make_them(tmp_path: Path) -> None:
    colour_project(tmp_path / "p", LOOKS, embed=False).close()
    out = CliRunner().invoke(app, ["next", str(tmp_path / "p"), "--n", "2", "--json"])
    assert out.exit_code == 1 and "visionloop embed" in out.output and "Traceback" not in out.output
    bad = CliRunner().invoke(app, ["next", str(tmp_path / "p"), "--strategy", "bald"])
    assert bad.exit_code == 2 and "bald" in bad.output
