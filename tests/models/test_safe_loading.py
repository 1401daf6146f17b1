"""No code runs on load: torch files are read with weights_only=True and run configs name registry models only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from visionloop.models.runs import UnsafeConfigError, build_from_config, load_run
from visionloop.models.spec import UnknownModelError
from visionloop.models.weights import UnsafeFileError, load_state_dict_file, pretrained_model
from visionloop.storage.runs import RunConfig, run_dir, save_config


class _Payload:
    """Unpickling this writes a marker file: what an attacker's checkpoint would do with os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "pwned"))


def evil_file(tmp_path: Path, layout: str = "plain") -> tuple[Path, Path]:
    marker = tmp_path / "marker.txt"
    obj = {"conv.weight": torch.zeros(2), "extra": _Payload(marker)}
    if layout == "checkpoint":
        obj = {"format": "visionloop-weights/1", "model": obj, "record": {}}
    path = tmp_path / f"evil-{layout}.pt"
    torch.save(obj, path)
    return path, marker


def test_a_weights_file_holding_pickled_code_is_refused(tmp_path: Path) -> None:
    path, marker = evil_file(tmp_path)
    with pytest.raises(UnsafeFileError, match="could run code") as e:
        load_state_dict_file(path)
    assert e.value.path == str(path) and "state_dict" in str(e.value)
    with pytest.raises(UnsafeFileError):
        pretrained_model("mobilenet_v2", library="torchvision", weights=path)  # train --weights PATH
    assert not marker.exists()
    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"module.w": torch.ones(1)}}, good)
    assert torch.equal(load_state_dict_file(good)["w"], torch.ones(1))


def _run(tmp_path: Path, model: dict) -> SimpleNamespace:
    project = SimpleNamespace(root=tmp_path / "p")
    cfg = RunConfig(run_id="r1", task="classification", version={"name": "v", "hash": "h"}, model=model,
                    classes=[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], preprocess={})
    save_config(run_dir(project, "r1", create=True), cfg)
    return project


def test_a_run_checkpoint_holding_pickled_code_is_refused(tmp_path: Path) -> None:
    project = _run(tmp_path, {"name": "test_resnet", "kwargs": {"library": "timm", "num_classes": 2}})
    path, marker = evil_file(tmp_path, "checkpoint")
    path.replace(run_dir(project, "r1") / "checkpoints" / "best.pt")
    with pytest.raises(UnsafeFileError, match="run checkpoint"):
        load_run(project, "r1")
    assert not marker.exists()


@pytest.mark.parametrize("builder", ["os:system", "visionloop.models.runs:load_run", "builtins:eval"])
def test_a_config_naming_code_to_import_is_refused(tmp_path: Path, builder: str) -> None:
    project = _run(tmp_path, {"name": "test_resnet", "builder": builder, "kwargs": {"num_classes": 2}})
    with pytest.raises(UnsafeConfigError, match=builder):
        load_run(project, "r1")


def test_a_config_naming_an_unknown_model_or_non_json_options_is_a_clear_error() -> None:
    with pytest.raises(UnknownModelError, match="no_such_net"):
        build_from_config({"name": "no_such_net", "kwargs": {}})
    with pytest.raises(UnsafeConfigError, match="drop_rate"):
        build_from_config({"name": "test_resnet", "kwargs": {"drop_rate": {"nested": "dict"}}})
    legacy = {"name": "test_resnet", "builder": "visionloop.models.registry:build_classifier",  # older runs
              "kwargs": {"name": "test_resnet", "library": "timm", "num_classes": 3, "drop_rate": 0.0}}
    assert build_from_config(legacy).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
