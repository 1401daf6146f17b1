from __future__ import annotations

import pytest
import torch

from visionloop.models import Classifier, UnknownModelError, build_classifier, list_models
from visionloop.models.registry import register_model, resolve_library
from visionloop.training.runs import build_model


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
    again = build_model(spec)
    again.load_state_dict(m.state_dict())  # same keys and shapes
    assert spec["builder"] == "visionloop.models.registry:build_classifier"


def test_register_model_for_other_tasks():
    from visionloop.models.registry import get_entry

    @register_model("tiny-test-net", tasks=("detection",))
    def tiny(**kw):
        """A tiny test net."""
        return torch.nn.Linear(2, 2)

    assert "tiny-test-net" in list_models(task="detection")
    assert get_entry("tiny-test-net").description == "A tiny test net."
