"""Semantic segmenters: a U-Net and DeepLabV3 on the offline MobileNetV2 (:mod:`visionloop.models.unet`), and
torchvision's DeepLabV3, LRASPP and FCN. The U-Net is the default: its decoder works at full resolution, so small
objects (nuclei of 10 px) are not lost at stride 16.

Every builder returns a module whose ``forward(x)`` maps (B, 3, H, W) normalised images to ``{"out": (B, K, H, W)
logits}`` (and ``"aux"`` for models with an auxiliary head). ``num_classes`` counts every class of the class map
(background included when the ontology has one). ``pretrained``: ``"coco"`` (torchvision's COCO-with-VOC-labels
segmenter, class layers re-initialised), ``"imagenet"`` (backbone only; offline for ``deeplabv3_mobilenet_v2``),
``"none"``.
"""

from __future__ import annotations

import difflib
import functools
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from visionloop.models.detection import (
    PretrainedSource,
    _apply_weights_path,
    _load_file,
    offline_mobilenet_v2_path,
    torchvision_builder,
)
from visionloop.models.spec import ModelSpec, UnknownModelError
from visionloop.models.unet import unet_mobilenet_v2

__all__ = ["SEGMENTATION_MODELS", "build_segmentation_model", "deeplabv3_mobilenet_v2"]


def deeplabv3_mobilenet_v2(
    *, num_classes: int, pretrained: PretrainedSource = "imagenet", weights_path: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """DeepLabV3 head on MobileNetV2 features (stride 16 via a dilated last stage); offline ImageNet weights."""
    from torchvision.models import mobilenet_v2
    from torchvision.models._utils import IntermediateLayerGetter
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3

    net = mobilenet_v2(weights=None)
    if pretrained != "none":
        net.load_state_dict(_load_file(offline_mobilenet_v2_path()))
    features = net.features
    for block in features[14:]:  # keep stride 16: dilate instead of striding in the last stage
        for m in block.modules():
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                m.stride = (1, 1)
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                m.dilation, m.padding = (2, 2), (2, 2)
    backbone = IntermediateLayerGetter(features, return_layers={"18": "out"})
    model = DeepLabV3(backbone, DeepLabHead(1280, num_classes), None)
    _apply_weights_path(model, weights_path, "deeplabv3_mobilenet_v2")
    return model


_tv_builder = functools.partial(torchvision_builder, family="segmentation")


def _seg(name: str, builder: Callable[..., nn.Module], default: PretrainedSource, description: str, *,
         library: str = "torchvision", offline: bool = False) -> ModelSpec:
    return ModelSpec(name=name, kind="semantic", builder=builder, library=library, default_pretrained=default,
                     offline_pretrained=offline, description=description)


SEGMENTATION_MODELS: dict[str, ModelSpec] = OrderedDict((s.name, s) for s in [
    _seg("unet_mobilenet_v2", unet_mobilenet_v2, "imagenet", "U-Net, MobileNetV2 encoder (offline ImageNet weights), "
         "full-resolution decoder; CPU friendly, the default", library="segmentation_models_pytorch", offline=True),
    _seg("deeplabv3_mobilenet_v2", deeplabv3_mobilenet_v2, "imagenet",
         "DeepLabV3, MobileNetV2 (offline ImageNet weights); CPU friendly", library="visionloop", offline=True),
    _seg("deeplabv3_mobilenet_v3_large", _tv_builder("deeplabv3_mobilenet_v3_large"), "coco",
         "torchvision DeepLabV3 MobileNetV3-Large"),
    _seg("deeplabv3_resnet50", _tv_builder("deeplabv3_resnet50"), "coco", "torchvision DeepLabV3 ResNet-50"),
    _seg("deeplabv3_resnet101", _tv_builder("deeplabv3_resnet101"), "coco", "torchvision DeepLabV3 ResNet-101"),
    _seg("lraspp_mobilenet_v3_large", _tv_builder("lraspp_mobilenet_v3_large"), "coco",
         "torchvision LRASPP MobileNetV3-Large"),
    _seg("fcn_resnet50", _tv_builder("fcn_resnet50"), "coco", "torchvision FCN ResNet-50"),
    _seg("fcn_resnet101", _tv_builder("fcn_resnet101"), "coco", "torchvision FCN ResNet-101"),
])


def build_segmentation_model(
    name: str, *, num_classes: int, pretrained: PretrainedSource | None = None,
    weights_path: str | Path | None = None, **kwargs: Any,
) -> nn.Module:
    """Build a semantic segmenter by name."""
    spec = SEGMENTATION_MODELS.get(name)
    if spec is None:
        raise UnknownModelError(name, difflib.get_close_matches(name, list(SEGMENTATION_MODELS))
                                or list(SEGMENTATION_MODELS))
    return spec.builder(num_classes=num_classes, pretrained=pretrained or spec.default_pretrained,
                        weights_path=weights_path, **kwargs)
