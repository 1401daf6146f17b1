"""The documentation site builds with ``mkdocs build --strict`` (what ``make docs`` runs), offline, and its REST
pages list every route of the servers' own OpenAPI schemas."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.ci]  # one strict build, ~20 s on a loaded 2-core machine; CI runs it


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    for slug in ("classification", "tagging", "detection", "instance-segmentation", "semantic-segmentation"):
        assert (site / "getting-started" / slug / "index.html").exists()
    formats = ("coco", "voc", "yolo", "cvat", "labelstudio", "labelme", "via", "kaggle_masks", "semantic_masks", "csv",
               "class_folders", "images")
    for name in formats:
        assert (site / "formats" / name / "index.html").exists(), name
    coco = _text(site / "formats" / "coco" / "index.html")
    assert "instances_<subset>.json" in coco  # the format module's docstring is rendered
    assert ":class:" not in _text(site / "api" / "python" / "storage" / "index.html")


def test_examples_are_included_verbatim(site: Path) -> None:
    page = _text(site / "getting-started" / "classification" / "index.html")
    for line in (REPO / "docs" / "examples" / "classification.py").read_text().splitlines():
        if line.strip():
            assert line.strip() in page, line


def test_python_api_is_rendered_from_docstrings(site: Path) -> None:
    from visionloop.storage.versions import create_version

    page = _text(site / "api" / "python" / "storage" / "index.html")
    assert "create_version" in page and create_version.__doc__.split("\n")[0].strip() in page


def test_rest_pages_list_every_route_of_the_apps(site: Path) -> None:
    sys.path.insert(0, str(REPO / "docs" / "hooks"))
    try:
        from openapi_pages import schema
    finally:
        sys.path.remove(str(REPO / "docs" / "hooks"))
    for app, page in (("projects", "rest-projects"), ("model-server", "rest-model-server")):
        text = _text(site / "api" / page / "index.html")
        paths = schema(app)["paths"]
        assert len(paths) >= 3
        for path, item in paths.items():
            for method in item:
                assert f"{method.upper()} {path}" in text, (app, method, path)


def test_no_asset_comes_from_the_network(site: Path) -> None:
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=\"https?://", text), page
        assert "fonts.googleapis" not in text and "fonts.gstatic" not in text, page


def test_cli_page_documents_every_command(site: Path) -> None:
    sys.path.insert(0, str(REPO / "docs" / "hooks"))
    try:
        import typer
        from cli_reference import _commands

        from visionloop.cli.main import app
    finally:
        sys.path.remove(str(REPO / "docs" / "hooks"))
    text = _text(site / "cli" / "index.html")
    commands = [" ".join(path) for path, _ in _commands(typer.main.get_command(app), ["visionloop"])]
    assert "visionloop version create" in commands and len(commands) >= 20
    for command in commands:
        assert f"Usage: {command} " in text, command
    assert "--splits <str>" in text and "instances_<subset>.json" in text  # options, with <...> kept as text
