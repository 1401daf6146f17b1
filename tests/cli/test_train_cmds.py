"""``models`` and the options ``train`` passes to detectors (fast: nothing is trained)."""

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import make_image_bytes
from visionloop.cli.main import app
from visionloop.core.errors import ConflictError
from visionloop.training.api import _detection_options

runner = CliRunner()


def test_models_lists_our_detectors_with_their_tasks() -> None:
    r = runner.invoke(app, ["models", "--task", "detection", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["fasterrcnn_mobilenet_v2_fpn"]["library"] == "visionloop"
    assert {"retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssdlite320_mobilenet_v3_large",
            "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn"} <= set(rows)
    assert "maskrcnn_mobilenet_v2_fpn" not in rows  # a segmenter, listed under --task segmentation
    seg = json.loads(runner.invoke(app, ["models", "--task", "segmentation", "--json"]).stdout)
    assert {"maskrcnn_mobilenet_v2_fpn", "deeplabv3_mobilenet_v2", "lraspp_mobilenet_v3_large"} <= {
        row["name"] for row in seg}
    lite = json.loads(runner.invoke(app, ["models", "lite0", "--json"]).stdout)
    assert "tf_efficientnet_lite0" in {row["name"] for row in lite}


def test_detection_options_map_to_hyper_parameters() -> None:
    hp, pretrained = _detection_options({"image_size": 320, "batch_size": 4, "lr": 0.02, "pretrained": False})
    assert (hp.eval_size, hp.batch_size, pretrained) == (320, 4, "none")
    assert hp.lr * hp.batch_size == pytest.approx(0.02)  # --lr is the optimizer's step learning rate
    hp, pretrained = _detection_options({})
    assert hp.eval_size == 0 and pretrained is None  # 0: chosen from the data
    with pytest.raises(ConflictError, match="threshold_mode only apply to classification"):
        _detection_options({"threshold_mode": "f1"})


def test_train_refuses_classification_options_for_a_detector(tmp_path) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.jpg").write_bytes(make_image_bytes(seed=i))
    proj = str(tmp_path / "p")
    assert runner.invoke(app, ["init", proj, "--task", "detection"]).exit_code == 0
    r = runner.invoke(app, ["train", proj, "--version", "v1", "--threshold-mode", "f1"])
    assert r.exit_code == 1
    assert "only apply to classification" in r.output
