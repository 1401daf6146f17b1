"""``visionloop drift``: the deployed package by default, the report as JSON or a table, progress for the job, and
one clear line when nothing is deployed."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from tests.active.drift_fixtures import THUMBS, add_samples, darken_and_blur, reference_project, tiny_classifier_package
from tests.conftest import make_image_bytes
from visionloop.cli.main import app
from visionloop.storage.drift import list_drift_reports


def test_drift_command_checks_the_deployed_package(project_factory, tmp_path: Path) -> None:  # noqa: ANN001
    p = reference_project(project_factory)
    runner = CliRunner()
    missing = runner.invoke(app, ["drift", str(p.root), "--backbone", THUMBS])
    assert missing.exit_code == 1 and "nothing is deployed" in missing.output

    package = tiny_classifier_package(tmp_path / "tiny")
    shutil.copytree(package, Path(p.root) / "packages" / "tiny")
    (Path(p.root) / "deployment.json").write_text(json.dumps({"package": "tiny"}), encoding="utf-8")
    images = [darken_and_blur(make_image_bytes(64, 48, seed=500 + i)) for i in range(30)]
    add_samples(p, package, images, at=datetime.now(UTC) - timedelta(minutes=10))
    (Path(p.root) / "visionloop.toml").write_text(
        (Path(p.root) / "visionloop.toml").read_text(encoding="utf-8") + "\n[loop]\non_drift = true\n",
        encoding="utf-8")

    progress = tmp_path / "progress.jsonl"
    out = runner.invoke(app, ["drift", str(p.root), "--backbone", THUMBS, "--window", "1h", "--json"],
                        env={"VISIONLOOP_PROGRESS_FILE": str(progress)})
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["alert"] is True and report["model"] == "tiny" and report["n_production"] == 30
    assert report["loop_requested"] is True and "brightness" in report["details"]["alerts"]
    assert [r.id for r in list_drift_reports(p)] == [report["id"]]
    records = [json.loads(line) for line in progress.read_text(encoding="utf-8").splitlines()]
    assert records[-1]["fraction"] == 1.0

    table = runner.invoke(app, ["drift", str(p.root), "--backbone", THUMBS, "--window", "1h", "--no-start-loop"])
    assert table.exit_code == 0, table.output
    assert "brightness" in table.stdout and "alert" in table.stdout
    assert list_drift_reports(p)[0].details["loop_requested"] is False

    bad = runner.invoke(app, ["drift", str(p.root), "--window", "soon"])
    assert bad.exit_code == 1 and "drift window" in bad.output
