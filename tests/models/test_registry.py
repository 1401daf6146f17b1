from __future__ import annotations

import pytest
import torch

from visionloop.models import Classifier, UnknownModelError, build_classifier, list_models
from visionloop.models.classifier import resolve_library
from visionloop.models.registry import get_spec, list_specs, register_model
from visionloop.models.runs import build_from_config


def test_lists_timm_and_torchvision_models():
    names = list_models()
    assert "tf_efficientnet_lite0" in names and "convnext_tiny" in names  # timm
    assert "mobilenet_v2" in names  # torchvision only
    assert len(names) > 1000
    assert set(list_models("lite0")) >= {"tf_efficientnet_lite0", "efficientnet_lite0"}
    assert "resnet50" in list_models(library="torchvision")


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UnknownModelError) as e:
        resolve_library("mobilenet_v22")
    assert "mobilenet_v2" in e.value.choices
    assert "mobilenet_v2" in str(e.value)


def test_same_name_prefers_timm_unless_told():
    assert resolve_library("resnet18") == "timm"
    assert resolve_library("resnet18", "torchvision") == "torchvision"


@pytest.mark.parametrize(("name", "library", "dim"), [("mobilenet_v2", "torchvision", 1280), ("test_resnet", "timm", None)])
def test_classifier_splits_backbone_and_head(name, library, dim):
    m = build_classifier(name=name, library=library, num_classes=3)
    assert isinstance(m, Classifier)
    m.eval()
    x = torch.randn(2, 3, 64, 64)
    f = m.features(x)
    assert f.shape == (2, m.num_features)
    if dim:
        assert m.num_features == dim
    assert m(x).shape == (2, 3)


def test_builder_spec_rebuilds_same_architecture():
    from visionloop.models import create_classifier

    m, info, spec = create_classifier("test_resnet", num_classes=4, pretrained=False)
    assert info.source == "none"
    again = build_from_config(spec)
    again.load_state_dict(m.state_dict())  # same keys and shapes
    assert set(spec) == {"name", "kwargs"}  # a registry name and JSON options: no code to import


def test_register_model_for_other_tasks():
    @register_model("tiny-test-net", kind="detection")
    def tiny(**kw):
        """A tiny test net."""
        return torch.nn.Linear(2, 2)

    assert "tiny-test-net" in list_models(task="detection")
    assert get_spec("tiny-test-net").description == "A tiny test net."


def test_one_registry_one_entry_shape_for_every_task():
    """Classifiers, detectors, instance and semantic segmenters are all ModelSpec entries of one listable registry."""
    from visionloop.models.spec import ModelSpec

    for name, kind, task in [("fasterrcnn_mobilenet_v2_fpn", "detection", "detection"),
                             ("maskrcnn_mobilenet_v2_fpn", "instance", "segmentation"),
                             ("deeplabv3_mobilenet_v2", "semantic", "segmentation"),
                             ("tf_efficientnet_lite0", "classifier", "classification")]:
        spec = get_spec(name)
        assert isinstance(spec, ModelSpec) and spec.kind == kind and task in spec.tasks
        assert spec in list_specs(name, task=task)
    assert get_spec("tf_efficientnet_lite0").offline_pretrained and get_spec("resnet18").library == "timm"
    assert get_spec("tf_efficientnet_lite0").input_size == 224 and get_spec("test_resnet").input_size == 160
    assert get_spec("ssdlite320_mobilenet_v3_large").input_size == 320
    assert get_spec("fasterrcnn_mobilenet_v2_fpn").input_size is None  # sized from the data at training time
    assert get_spec("resnet18", library="torchvision").library == "torchvision"
    with pytest.raises(UnknownModelError) as e:
        get_spec("fasterrcnn_mobilenet_v2")
    assert "fasterrcnn_mobilenet_v2_fpn" in e.value.choices


def test_model_tables_never_import_the_registry():
    """No cycle: the detection/segmentation/classifier tables sit below the registry that lists them."""
    import ast
    from pathlib import Path

    import visionloop.models as pkg

    root = Path(pkg.__file__).parent
    for module in ("detection", "segmentation", "classifier", "spec", "weights"):
        tree = ast.parse((root / f"{module}.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "visionloop.models.registry" not in imported, module
