"""Fuzzing: every format's real samples, mutated (byte flips, truncation, field type swaps, huge numbers, deep nesting,
wrong types in JSON/XML/CSV/YAML), read by the real detection and ``load``; every third one saved again in its format
and every twelfth one imported into a real project.

What must hold: no exception other than a clean :class:`VisionloopError`; and when a JSON or XML annotation file no
longer parses, the outcome says so (an error, or a problem naming the file), never a silent loss.

Deterministic: mutation ``k`` of a sample uses ``random.Random(f"{sample}:{k}")``. ``VISIONLOOP_FUZZ_COUNT`` sets the
total number of mutations (default 300, spread over the samples); set it to thousands to fuzz for long. A failure
prints the sample, the mutation number and what was changed, which reproduces it.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fuzz.mutations import mutate
from visionloop.core.errors import VisionloopError
from visionloop.formats import IMAGES, detect_source, get_format
from visionloop.formats.base import is_image_file

ASSETS = Path(__file__).resolve().parents[1] / "formats" / "assets"
COUNT = int(os.environ.get("VISIONLOOP_FUZZ_COUNT", "300"))
IMPORT_EVERY = 12
SAVE_EVERY = 3

SAMPLES: dict[str, tuple[str, str]] = {
    # name: (where: "shared" (other tools' files) or "repo" (tests/formats/assets), folder)
    "coco_instances": ("shared", "coco_dataset/coco_instances"),
    "coco_labels": ("shared", "coco_dataset/coco_labels"),
    "coco_mmdet": ("shared", "coco_dataset/mmdet_coco"),
    "coco_roboflow": ("shared", "coco_dataset/coco_roboflow"),
    "cvat_task": ("shared", "cvat_dataset/for_images/export_task"),
    "cvat_project": ("shared", "cvat_dataset/for_images/export_project"),
    "cvat_video": ("shared", "cvat_dataset/for_video"),
    "labelme": ("repo", "labelme"),
    "labelstudio": ("repo", "labelstudio"),
    "via_project": ("repo", "via/project"),
    "via_csv": ("repo", "via/csv"),
    "voc": ("shared", "voc_dataset/voc_dataset1"),
    "yolo_strict": ("shared", "yolo_dataset/strict"),
    "yolo_roboflow": ("shared", "roboflow_dataset/yolo"),
    "csv_kaggle": ("shared", "kaggle_dataset/image_csv_det"),
    "csv_vott": ("shared", "vott_csv_dataset/dataset"),
    "kaggle_masks": ("shared", "kaggle_dataset/image_mask"),
    "semantic_masks": ("shared", "common_semantic_segmentation_dataset/dataset"),
}
PER_SAMPLE = max(1, math.ceil(COUNT / len(SAMPLES)))
KNOWN_FAILURES: dict[str, str] = {}
"""Tracebacks found and not yet fixed; strict, so the fix turns the mark into a failure until it is removed."""
_MASK_FOLDERS = {"masks", "segmentationclass", "segmentationobject"}


def _annotation_files(folder: Path) -> list[Path]:
    """The files a format reads besides the images: annotation files and mask PNGs."""
    out = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        if not is_image_file(p) or p.parent.name.lower() in _MASK_FOLDERS:
            out.append(p)
    return out


def _unparsable(path: Path) -> bool:
    """True when a JSON or XML file no longer parses (a loss the loader must report)."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_bytes().decode("utf-8-sig"))
        elif path.suffix == ".xml":
            ET.fromstring(path.read_bytes())
        else:
            return False
    except (ValueError, ET.ParseError, RecursionError):
        return True
    return False


def _read(folder: Path, out: Path | None) -> tuple[str, list[str]]:
    """Detect and load as an import does, then save what was read in the same format to ``out`` (when given);
    (format, problem texts)."""
    fmt = detect_source(folder)
    if fmt == IMAGES:
        return fmt, []
    module = get_format(fmt)
    ds = module.load(folder)
    if out is not None:
        module.save(ds, out)
    return fmt, [f"{p.path} {p.reason}" for p in ds.problems]


def _import(folder: Path, project_root: Path) -> None:
    from visionloop.ingest.importer import import_source
    from visionloop.storage import Project

    project = Project.create(project_root, task="detection")
    try:
        import_source(project, folder)
    finally:
        project.close()


@pytest.mark.parametrize("sample", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])) if name in KNOWN_FAILURES
    else name for name in SAMPLES])
def test_mutated_samples_never_crash(sample: str, formats_dir: Path, tmp_path: Path) -> None:
    where, rel = SAMPLES[sample]
    source = (formats_dir if where == "shared" else ASSETS) / rel
    targets = [p.relative_to(source) for p in _annotation_files(source)]
    assert targets, f"{sample}: no annotation file to mutate"
    failures = []
    for k in range(PER_SAMPLE):
        rng = random.Random(f"{sample}:{k}")
        work = tmp_path / f"m{k}"
        shutil.copytree(source, work)
        target = work / rng.choice(targets)
        data, what = mutate(target.read_bytes(), target.suffix, rng)
        target.write_bytes(data)
        repro = f"{sample} mutation {k}: {target.relative_to(work)}: {what}"
        try:
            fmt, problems = _read(work, tmp_path / f"out{k}" if k % SAVE_EVERY == 0 else None)
            if _unparsable(target) and not any(target.name in p for p in problems):
                failures.append(f"{repro}: silent loss, read as {fmt} without a problem naming {target.name}")
            if k % IMPORT_EVERY == 0:
                _import(work, tmp_path / f"p{k}")
        except VisionloopError:
            pass
        except Exception as e:  # noqa: BLE001 - any other exception is the bug this test looks for
            failures.append(f"{repro}: {type(e).__name__}: {str(e)[:200]}")
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmp_path / f"out{k}", ignore_errors=True)
    assert not failures, "\n".join(failures)
