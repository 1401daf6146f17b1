"""Contract tests for every detection/segmentation registry entry, and the offline MobileNetV2 backbone."""

from __future__ import annotations

import pytest
import torch

from visionloop.core.errors import NotFoundError
from visionloop.models.detection import (
    DETECTION_MODELS,
    build_detection_model,
    offline_mobilenet_v2_path,
)
from visionloop.models.segmentation import SEGMENTATION_MODELS, build_segmentation_model


def _targets(masks: bool) -> list[dict[str, torch.Tensor]]:
    t = {"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0], [80.0, 20.0, 100.0, 44.0]]), "labels": torch.tensor([1, 2])}
    if masks:
        m = torch.zeros(2, 128, 128, dtype=torch.uint8)
        m[0, 12:70, 10:60] = 1
        m[1, 20:44, 80:100] = 1
        t["masks"] = m
    return [t]


@pytest.mark.parametrize("name", list(DETECTION_MODELS))
def test_every_detector_builds_and_predicts(name: str) -> None:
    spec = DETECTION_MODELS[name]
    kw = {} if name.startswith("ssd") else {"min_size": 128, "max_size": 128}
    torch.manual_seed(0)
    model = build_detection_model(name, num_classes=3, pretrained="none", **kw).eval()
    with torch.no_grad():
        out = model([torch.rand(3, 128, 128)])
    assert set(out[0]) >= {"boxes", "labels", "scores"}
    assert out[0]["boxes"].shape[1] == 4
    assert ("masks" in out[0]) == spec.masks
    if len(out[0]["labels"]):
        assert int(out[0]["labels"].min()) >= 1 and int(out[0]["labels"].max()) <= 2


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v2_fpn", "maskrcnn_mobilenet_v2_fpn"])
def test_offline_models_train_one_step(name: str) -> None:
    torch.manual_seed(0)
    model = build_detection_model(name, num_classes=3, min_size=128, max_size=128)  # offline ImageNet weights
    model.train()
    losses = model([torch.rand(3, 128, 128)], _targets(DETECTION_MODELS[name].masks))
    assert ("loss_mask" in losses) == DETECTION_MODELS[name].masks
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.roi_heads.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_offline_backbone_is_the_imagenet_file() -> None:
    state = torch.load(offline_mobilenet_v2_path(), map_location="cpu", weights_only=True)
    model = build_detection_model("fasterrcnn_mobilenet_v2_fpn", num_classes=2)
    body = model.backbone.body.state_dict()
    assert torch.equal(body["0.0.weight"], state["features.0.0.weight"])
    assert torch.equal(body["17.conv.0.0.weight"], state["features.17.conv.0.0.weight"])
    scratch = build_detection_model("fasterrcnn_mobilenet_v2_fpn", num_classes=2, pretrained="none")
    assert not torch.equal(scratch.backbone.body.state_dict()["0.0.weight"], state["features.0.0.weight"])


def test_small_object_anchors() -> None:
    model = build_detection_model("fasterrcnn_mobilenet_v2_fpn", num_classes=2, pretrained="none")
    sizes = model.rpn.anchor_generator.sizes
    assert min(min(s) for s in sizes) <= 16  # platelets (~25 px) and nuclei need anchors this small


def test_weights_path_loads_a_checkpoint(tmp_path) -> None:
    a = build_detection_model("fasterrcnn_mobilenet_v2_fpn", num_classes=3, pretrained="none")
    torch.save(a.state_dict(), tmp_path / "w.pt")
    b = build_detection_model("fasterrcnn_mobilenet_v2_fpn", num_classes=3, pretrained="none",
                              weights_path=tmp_path / "w.pt")
    assert torch.equal(a.roi_heads.box_predictor.cls_score.weight, b.roi_heads.box_predictor.cls_score.weight)


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(NotFoundError, match="fasterrcnn_resnet50_fpn"):
        build_detection_model("fasterrcnn_resnet50", num_classes=2)


def test_registered_in_shared_registry() -> None:
    from visionloop.models.registry import get_spec, list_models

    names = list_models(task="detection")
    assert "fasterrcnn_mobilenet_v2_fpn" in names and "retinanet_resnet50_fpn" in names
    assert "maskrcnn_mobilenet_v2_fpn" in list_models(task="segmentation")
    assert get_spec("deeplabv3_mobilenet_v2") is SEGMENTATION_MODELS["deeplabv3_mobilenet_v2"]


@pytest.mark.parametrize("name", list(SEGMENTATION_MODELS))
def test_every_semantic_segmenter_builds_and_predicts(name: str) -> None:
    model = build_segmentation_model(name, num_classes=3, pretrained="none").eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 96, 96))
    assert out["out"].shape == (1, 3, 96, 96)


def test_coco_default_offline_takes_a_local_file_and_never_downloads(tmp_path, monkeypatch) -> None:
    """torchvision detectors start from COCO; offline, --weights PATH replaces the download, and without it the error
    says what to do."""
    import torchvision.models._api as tv_api

    from visionloop.models.detection import WeightsUnavailableError

    def no_network(*args, **kwargs):
        raise OSError("no network (test)")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", no_network)
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    with pytest.raises(WeightsUnavailableError, match="--weights PATH"):
        build_detection_model(name, num_classes=3)  # pretrained default: COCO, download refused
    torch.manual_seed(1)
    coco_like = build_detection_model(name, num_classes=91, pretrained="none")
    torch.save(coco_like.state_dict(), tmp_path / "coco.pth")
    model = build_detection_model(name, num_classes=3, weights_path=tmp_path / "coco.pth")
    assert torch.equal(model.backbone.body["0"][0].weight, coco_like.backbone.body["0"][0].weight)
    assert model.roi_heads.box_predictor.cls_score.out_features == 3  # the class head is new, not the file's 91


def test_a_builder_fault_is_not_relabelled_missing_weights(monkeypatch) -> None:
    """A RuntimeError inside a detector builder keeps its real cause, chained and in the message (it used to be
    reported as "ImageNet backbone weights are not available")."""
    import torchvision.models.detection as tvd

    from visionloop.models.detection import ModelBuildError, WeightsUnavailableError

    def broken(**kwargs):
        raise RuntimeError("size mismatch for rpn.head (test)")

    monkeypatch.setattr(tvd, "fasterrcnn_mobilenet_v3_large_320_fpn", broken)
    with pytest.raises(ModelBuildError, match="RuntimeError: size mismatch for rpn.head") as e:
        build_detection_model("fasterrcnn_mobilenet_v3_large_320_fpn", num_classes=3, pretrained="imagenet")
    assert not isinstance(e.value, WeightsUnavailableError) and isinstance(e.value.__cause__, RuntimeError)
