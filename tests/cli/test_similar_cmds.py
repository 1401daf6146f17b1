"""``visionloop embed | similar | duplicates | outliers`` on real BCCD smears."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

from visionloop.cli.main import app
from visionloop.ingest import import_source
from visionloop.storage import Project


@pytest.mark.slow
def test_embed_then_search_duplicates_and_outliers(bccd_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        name = f"BloodImage_0000{i}.jpg"
        (src / name).write_bytes((bccd_dir / "BCCD" / "JPEGImages" / name).read_bytes())
    im = Image.open(src / "BloodImage_00003.jpg").convert("RGB")
    w, h = im.size
    ImageEnhance.Brightness(im.crop((12, 9, w - 12, h - 9))).enhance(0.9).save(src / "edited.png")
    Image.new("RGB", (640, 480), (250, 250, 250)).save(src / "blank.png")  # not a smear at all
    with Project.create(tmp_path / "p", task="classification") as p:
        import_source(p, src, format="images")
        ids = {im.name: im.id for im in p.images()}
    project = str(tmp_path / "p")
    runner = CliRunner()

    # similar embeds what is missing first; IMAGE by file name
    like = runner.invoke(app, ["similar", project, "BloodImage_00003.jpg", "--k", "2", "--json"])
    assert like.exit_code == 0, like.output
    body = json.loads(like.stdout)
    assert body["image"]["id"] == ids["BloodImage_00003.jpg"] and body["method"] == "exact"
    assert [r["name"] for r in body["results"]][0] == "edited.png" and len(body["results"]) == 2
    assert json.loads(runner.invoke(app, ["similar", project, str(ids["edited.png"]), "--k", "1", "--json"])
                      .stdout)["results"][0]["name"] == "BloodImage_00003.jpg"  # IMAGE by id

    done = runner.invoke(app, ["embed", project, "--json"])
    assert done.exit_code == 0, done.output
    sets = json.loads(done.stdout)["sets"]
    assert [(s["kind"], s["count"], s["embedded"]) for s in sets] == [("images", 7, 0)]  # nothing new

    dups = runner.invoke(app, ["duplicates", project, "--json"])
    assert dups.exit_code == 0, dups.output
    near = json.loads(dups.stdout)["near"]
    assert [sorted(i["name"] for i in g["images"]) for g in near] == [["BloodImage_00003.jpg", "edited.png"]]

    odd = runner.invoke(app, ["outliers", project, "--n", "1", "--k", "3", "--json"])
    assert odd.exit_code == 0, odd.output
    assert json.loads(odd.stdout)["results"][0]["name"] == "blank.png"

    missing = runner.invoke(app, ["similar", project, "nope.jpg", "--json"])
    assert missing.exit_code == 1 and "image 'nope.jpg' not found" in missing.output
