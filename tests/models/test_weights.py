"""Pretrained weights: offline packages, --weights files, fast failure offline, and the right ImageNet class."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from visionloop.core.preprocess import Preprocess
from visionloop.models import WeightsNotFoundError, create_classifier, pretrained_model
from visionloop.models import weights as weights_mod

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture
def offline(monkeypatch):
    """Behave like a machine without internet, even where there is one."""
    monkeypatch.setattr(weights_mod, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr(weights_mod, "_timm_cache_file", lambda cfg: None)


def _top1(model, info) -> int:
    from skimage import data

    im = Image.fromarray(data.chelsea())
    pre = Preprocess(size=(224, 224), resize="shorter_crop", crop_fraction=info.crop_fraction, mean=info.mean,
                     std=info.std, interpolation=info.interpolation)
    model.eval()
    with torch.no_grad():
        return int(model(torch.from_numpy(pre(im))[None]).argmax(1))


@pytest.mark.parametrize(("name", "library"), [("mobilenet_v2", "torchvision"), ("tf_efficientnet_lite0", "timm")])
def test_offline_package_weights_recognise_a_cat(offline, name, library, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # empty cache
    model, info, _ = create_classifier(name, num_classes=None, library=library)
    assert info.source == "offline"
    assert any("unreachable" in line for line in info.log)
    assert any("offline package" in line for line in info.log)
    if name == "tf_efficientnet_lite0":
        assert info.mean == (0.5, 0.5, 0.5) and info.std == (0.5, 0.5, 0.5)
    assert _top1(model, info) in CATS


def test_weights_file_is_used_and_reported(tmp_path):
    from visionloop.models import build_classifier

    m = build_classifier(name="mobilenet_v2", library="torchvision", num_classes=None)
    torch.nn.init.constant_(m.head.bias, 0.25)
    full_sd = {k: v for k, v in m.backbone.state_dict().items()}
    full_sd.update({f"classifier.1.{k}": v for k, v in m.head.state_dict().items()})
    path = tmp_path / "w.pth"
    torch.save({"state_dict": full_sd}, path)
    model, info = pretrained_model("mobilenet_v2", library="torchvision", weights=path)
    assert info.source == "file" and str(path) in info.detail
    assert torch.all(model.classifier[1].bias == 0.25)


def test_no_source_says_how_to_fix(offline):
    with pytest.raises(WeightsNotFoundError) as e:
        pretrained_model("resnet18", library="timm", allow_download=True)
    msg = str(e.value)
    assert "--weights" in msg and "offline" in msg
    with pytest.raises(WeightsNotFoundError, match="no such file"):
        pretrained_model("mobilenet_v2", library="torchvision", weights="/nonexistent.pth")


def test_a_host_that_never_answers_is_unreachable(monkeypatch):
    """The probe gives up after its timeout whatever the socket does (DNS or a connect that hangs): an offline machine
    falls through to the offline weights instead of waiting for the network."""
    import socket
    import threading

    from visionloop.models.weights import reachable

    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> None:  # a connect that hangs until the test ends
        release.wait()
        raise OSError("connection timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        assert reachable("https://download.pytorch.org/models/x.pth", timeout=0.1) is False
    finally:
        release.set()
    assert reachable("not a url") is False
