"""The repository holds the product only: no notes folder, no absolute path of a development machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEXT = {".py", ".md", ".toml", ".cfg", ".yml", ".yaml", ".sh", ".ini", ".txt", ".html", ".js", ".css"}
# home folders and the development machine's checkout; built from parts so this file does not match itself
MACHINE_PATH = re.compile(r"(?<![\w.})\]])/" + "(?:work|root|home/[a-z_][a-z0-9_-]*)" + r"/[\w.-]")
"""A path from a machine's root; ``.../work/next`` or ``{project}/work/next`` (routes of the API) are not one."""


def _tracked() -> list[str]:
    r = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("not a git checkout")
    return r.stdout.splitlines()


def test_no_notes_folder() -> None:
    assert not [f for f in _tracked() if f.startswith(".notes/")]


def test_no_absolute_paths_of_a_machine() -> None:
    found = []
    for name in _tracked():
        path = REPO / name
        if path.suffix not in TEXT and name not in {"Makefile", ".ci/run"} or not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{n}: {line.strip()[:120]}")
    assert not found, "absolute paths of a machine; use paths relative to the repository:\n" + "\n".join(found)
