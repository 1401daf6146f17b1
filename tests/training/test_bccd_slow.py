"""Proof on real data: BCCD cell crops (classification) and BCCD images (tagging), through the CLI commands."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def bccd_projects(bccd_dir, tmp_path_factory):
    """``derived("crops" | "tags")``: the folder of a project derived from all of BCCD (and versioned), made on
    first use, so CI (tagging only) does not cut 4,888 crops it never trains on."""
    from visionloop.ingest import import_source
    from visionloop.quality.derive import derive_project
    from visionloop.storage import Project
    from visionloop.storage.versions import create_version

    root = tmp_path_factory.mktemp("bccd")
    made: set[str] = set()

    def derived(kind: str):
        if not (root / "det").exists():
            with Project.create(root / "det", task="detection") as det:
                import_source(det, bccd_dir / "BCCD", format="voc")
                create_version(det, name="v1")
        if kind not in made:
            with Project.open(root / "det") as det:
                derive_project(det, "v1", to={"crops": "crops", "tags": "tagging"}[kind], out=root / kind)
            with Project.open(root / kind) as p:
                create_version(p, name="v1")
            made.add(kind)
        return root / kind

    return derived


def _app() -> typer.Typer:
    from visionloop.cli.train_cmds import register

    app = typer.Typer()
    register(app)
    return app


@pytest.mark.slow
def test_bccd_crops_reach_095_balanced_accuracy(bccd_projects):
    # how long it takes is measured by benchmarks/train_classify.py, never asserted
    runner = CliRunner()
    crops = bccd_projects("crops")
    r = runner.invoke(_app(), ["train", str(crops), "--version", "v1", "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["run"]
    r = runner.invoke(_app(), ["evaluate", str(crops), "--run", run, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["balanced_accuracy"] >= 0.95, out["per_class"]
    assert set(out["per_class"]) == {"WBC", "RBC", "Platelets"}
    assert (crops / "runs" / run / "report.html").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.ci
def test_bccd_tagging_map(bccd_projects):
    runner = CliRunner()
    tags = bccd_projects("tags")
    r = runner.invoke(_app(), ["train", str(tags), "--version", "v1", "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["run"]
    r = runner.invoke(_app(), ["evaluate", str(tags), "--run", run, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["mAP"] >= 0.75
    assert len(out["thresholds"]) == 3
