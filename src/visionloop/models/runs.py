"""The trained model of a run: its architecture from the registry, its weights from ``checkpoints/best.pt``.

A run's ``config.json`` names its model by registry name with JSON keyword arguments (``{"name", "kwargs"}``); no
module or function named in a file is ever imported, and checkpoints are read with ``weights_only=True``, so opening a
run directory someone sent you cannot run their code.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionloop.core.errors import VisionloopError
from visionloop.models.registry import get_spec
from visionloop.models.weights import safe_torch_load
from visionloop.storage.runs import RunConfig, checkpoint_path, load_config, resolve_run

__all__ = ["UnsafeConfigError", "build_from_config", "load_run"]

LEGACY_BUILDERS = frozenset({
    "visionloop.models.registry:build_classifier",
    "visionloop.models.detection:build_detection_model",
    "visionloop.models.segmentation:build_segmentation_model",
})
"""The builders older run configs name; they are read as the registry name beside them, never imported."""

_JSON = (str, int, float, bool, type(None))


class UnsafeConfigError(VisionloopError):
    """A run config asks for something other than a registry model with plain JSON options."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"refused the run's model config: {reason}. A run names its model by registry name "
                         "(`visionloop models` lists them) with plain JSON options; train the run again with this "
                         "visionloop to get such a config")


def _plain(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, _JSON)


def build_from_config(model: dict[str, Any]) -> nn.Module:
    """The untrained architecture of ``config.model``: ``{"name": registry name, "kwargs": {...}}``.

    Raises :class:`UnsafeConfigError` for a ``"builder"`` that names any other code, or options that are not plain
    JSON values, and :class:`~visionloop.models.spec.UnknownModelError` for a name the registry does not know.
    """
    builder = model.get("builder")
    if builder is not None and builder not in LEGACY_BUILDERS:
        raise UnsafeConfigError(f"it names the code {builder!r} to import and call")
    kwargs = dict(model.get("kwargs") or {})
    name = model.get("name") or kwargs.get("name")
    if not isinstance(name, str) or not name:
        raise UnsafeConfigError("it has no model name")
    bad = sorted(k for k, v in kwargs.items() if not _plain(v))
    if bad:
        raise UnsafeConfigError(f"the options {', '.join(bad)} are not plain JSON values")
    kwargs.pop("name", None)
    library = kwargs.pop("library", None)
    spec = get_spec(name, library=library)
    if spec.kind != "classifier":
        kwargs["pretrained"] = "none"  # the checkpoint holds every weight
        kwargs.pop("weights_path", None)
    return spec.build(**kwargs)


def load_run(
    project: Any, run_id: str, *, checkpoint: str = "best", device: str | torch.device = "cpu",
) -> tuple[nn.Module, RunConfig]:
    """Rebuild a run's model with its trained weights, in eval mode, and its :class:`RunConfig`.

    ``checkpoint``: ``"best"`` (default; falls back to ``last`` when there is no best) or ``"last"``. Works for every
    task: the architecture comes from ``config.model`` (see the module docstring).
    """
    rid = resolve_run(project, run_id)
    config = load_config(project, rid)
    model = build_from_config(config.model)  # refuses a config naming code before any file is read
    path = checkpoint_path(project, rid, checkpoint=checkpoint)
    state = safe_torch_load(path, what="run checkpoint", map_location=device)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, config
