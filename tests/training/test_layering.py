"""Training <-> evaluation without a cycle: run records live in storage, run models and predict-over-a-dataset in
models, so evaluation never imports training, and training imports evaluation only at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import visionloop

SRC = Path(visionloop.__file__).parent


def _imports(package: str) -> list[tuple[str, str, bool]]:
    """(module file, imported module, inside a function) for every ``visionloop`` import under ``package``."""
    out = []
    for path in sorted((SRC / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nested = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                  for n in ast.walk(f)}
        for node in ast.walk(tree):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            out += [(path.relative_to(SRC).as_posix(), n, id(node) in nested) for n in names
                    if n.startswith("visionloop.")]
    return out


def test_evaluation_never_imports_training() -> None:
    assert [(f, m) for f, m, _ in _imports("evaluation") if m.startswith("visionloop.training")] == []


def test_training_imports_evaluation_only_at_module_level() -> None:
    assert [(f, m) for f, m, inner in _imports("training") if inner and m.startswith("visionloop.evaluation")] == []


def test_models_data_and_storage_import_neither() -> None:
    upward = ("visionloop.training", "visionloop.evaluation", "visionloop.export", "visionloop.inference")
    for package in ("models", "data", "storage"):
        assert [(f, m) for f, m, _ in _imports(package) if m.startswith(upward)] == [], package
