"""export_run and the CLI on a real project: BCCD cell crops, a dataset version and a run directory as training
writes it (config.json + checkpoints/best.pt)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import typer
from typer.testing import CliRunner

from tests.deploy_fixtures import CELL_CLASSES, cell_architecture, jpeg_bytes
from visionloop.cli.deploy_cmds import register
from visionloop.core.annotations import Label
from visionloop.core.package import load_package
from visionloop.export.api import export_run
from visionloop.models.registry import register_model


def _project_with_run(project_factory, cell_data, cell_classifier):  # noqa: ANN001, ANN202
    from visionloop.storage.project import NewImage
    from visionloop.storage.runs import RunConfig, run_dir, save_config
    from visionloop.storage.versions import create_version

    register_model("test-cells", kind="classifier")(cell_architecture)  # a run names its model by registry name
    project = project_factory("classification")
    ids = project.class_ids(CELL_CLASSES)
    crops = cell_data.train[:60] + cell_data.val[:60]
    new = []
    for i, (im, _) in enumerate(crops):
        data = jpeg_bytes(im)
        new.append(NewImage(sha256=project.blobs.put(data), width=im.width, height=im.height, format="jpeg",
                            name=f"cell{i}.jpg"))
    added = project.add_images(new)
    for (image_id, _), (_, c) in zip(added, crops, strict=True):
        project.save_annotation(image_id, Label(class_id=ids[CELL_CLASSES[c]]), base_revision=None, author="t")
    info = create_version(project, name="v1", fractions=(0.6, 0.4, 0.0), phash_distance=0)
    model, pp = cell_classifier
    cfg = RunConfig(run_id="run-a", task="classification", version={"name": info.name, "hash": info.hash},
                    model={"name": "test-cells", "kwargs": {}},
                    classes=[{"id": ids[n], "name": n} for n in CELL_CLASSES], preprocess=pp.to_json())
    d = run_dir(project, "run-a", create=True)
    save_config(d, cfg)
    torch.save({"model": model.state_dict()}, d / "checkpoints" / "best.pt")
    (d / "result.json").write_text(json.dumps({"metrics": {"val_balanced_accuracy": 0.97, "status": "done"}}))
    return project, info, ids


def test_export_run_int8_and_cli(project_factory, cell_data, cell_classifier, tmp_path: Path) -> None:  # noqa: ANN001
    project, info, ids = _project_with_run(project_factory, cell_data, cell_classifier)
    out = export_run(project, "latest", tmp_path / "cells.vlpkg", int8=True)
    m = load_package(out).manifest
    assert m.run_id == "run-a" and m.dataset_version == "v1" and m.dataset_hash == info.hash
    assert [(c.id, c.name) for c in m.classes] == [(ids[n], n) for n in CELL_CLASSES]
    assert m.metrics["val_balanced_accuracy"] == 0.97 and m.main_metric == "val_balanced_accuracy"
    assert m.config_hash and len(m.config_hash) == 64
    assert m.int8 is not None and m.int8.validation_images > 10 and m.int8.drop <= 0.01

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["export-model", str(project.root), "--run", "run-a", str(tmp_path / "fp32"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["precision"] == "fp32"
    img = tmp_path / "imgs"
    img.mkdir()
    for i, (im, _) in enumerate(cell_data.val[:3]):
        im.save(img / f"{i}.png")
    (img / "broken.jpg").write_bytes(b"not an image")
    res = runner.invoke(app, ["predict-package", str(tmp_path / "fp32"), str(img), "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert len(rows) == 4
    assert sum("error" in r for r in rows) == 1
    assert all(r["prediction"]["label"]["name"] in CELL_CLASSES for r in rows if "prediction" in r)
    res = runner.invoke(app, ["export-model", str(project.root), "--run", "nope", str(tmp_path / "x")])
    assert res.exit_code == 1 and "run 'nope' not found" in res.output
