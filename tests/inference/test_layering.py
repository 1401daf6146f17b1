"""Export <-> inference without a cycle: the package contract lives in ``core.package``, below both; inference (the
torch-free runtime) never imports export, and export imports inference only at module level."""

from __future__ import annotations

from tests.training.test_layering import _imports


def test_inference_never_imports_export_training_or_evaluation() -> None:
    upward = ("visionloop.export", "visionloop.training", "visionloop.evaluation")
    assert [(f, m) for f, m, _ in _imports("inference") if m.startswith(upward)] == []


def test_export_imports_inference_only_at_module_level() -> None:
    assert [(f, m) for f, m, inner in _imports("export") if inner and m.startswith("visionloop.inference")] == []


def test_the_package_contract_sits_in_core() -> None:
    assert [(f, m) for f, m, _ in _imports("core") if not m.startswith("visionloop.core")] == []
    import visionloop.core.package as contract
    import visionloop.export as export
    import visionloop.inference as inference

    assert export.load_package is contract.load_package is inference.load_package
    assert export.Manifest is contract.Manifest is inference.Manifest
