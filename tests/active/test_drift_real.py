"""Drift checks on real data through the real storage, embedder and predictor: BCCD images as the reference; BCCD
images the model never saw raise no alert, the same images darkened and blurred do, and DSB2018 nuclei do. The
model is the BCCD cell classifier of the deploy tests, applied to whole images (its confidences and classes move with
what it is shown)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from tests.active.drift_fixtures import add_samples
from tests.deploy_fixtures import cell_classifier, cell_data, cell_package  # noqa: F401
from tests.web.conftest import bccd_subset
from visionloop.active.drift_check import DriftOptions, check_drift
from visionloop.ingest import import_source
from visionloop.storage import Project
from visionloop.storage.versions import create_version

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
N_PRODUCTION = 30


def _darker_and_blurred(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data)).convert("RGB")
    im = im.point(lambda v: int(v * 0.45)).filter(ImageFilter.GaussianBlur(3))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.slow  # embeds ~150 real images with the default backbone
def test_drift_on_bccd_and_dsb2018(bccd_dir: Path, dsb_dir: Path, tmp_path: Path,
                                   cell_package: Path) -> None:  # noqa: F811
    jpegs = sorted((bccd_dir / "BCCD" / "JPEGImages").glob("*.jpg"))
    # the reference: every other image of the first 180 (with their boxes); production: some of the ones between,
    # spread over the same range (BCCD is ordered by smear: its first images are not a sample of the rest)
    source = bccd_subset(bccd_dir, tmp_path / "voc", 180)
    for skipped in jpegs[1:180:2]:
        (source / "BCCD" / "JPEGImages" / skipped.name).unlink()
        (source / "BCCD" / "Annotations" / f"{skipped.stem}.xml").unlink()
    unseen = [f.read_bytes() for f in jpegs[1:180:6]]
    nuclei = [p.read_bytes() for p in sorted(dsb_dir.glob("stage1_train/*/images/*.png"))[:N_PRODUCTION]]
    results = {}
    with Project.create(tmp_path / "bccd", task="detection") as p:
        import_source(p, source, progress=False)
        create_version(p, name="v1", fractions=(0.7, 0.3, 0.0))
        options = DriftOptions(reference="v1", window=timedelta(hours=2))
        for days, (name, images) in enumerate((("unseen BCCD", unseen),
                                               ("darkened and blurred", [_darker_and_blurred(b) for b in unseen]),
                                               ("DSB2018 nuclei", nuclei)), start=1):
            at = NOW - timedelta(days=days)
            add_samples(p, cell_package, images, at=at - timedelta(minutes=30), prefix=f"s{days}", embed=False)
            results[name] = check_drift(p, cell_package, options=options, now=at)

    for name, r in results.items():  # the numbers, for the record
        print(name, json.dumps({"alerts": r.details["alerts"], "mmd": r.mmd, "mmd_p": r.mmd_p,
                                "confidence_p": r.confidence_p, "psi": r.psi, "n": [r.n_reference, r.n_production],
                                **{k: [round(v["reference_mean"], 1), round(v["production_mean"], 1),
                                       round(v["psi"], 3), v["p"]] for k, v in r.image_stats.items()}}))
    same, dark, dsb = results.values()
    assert (same.n_production, same.n_reference) == (N_PRODUCTION, 63)
    assert same.alert is False and same.mmd_p > 0.01
    assert dark.alert is True and {"brightness", "blur"} <= set(dark.details["alerts"])
    assert dark.image_stats["brightness"]["production_mean"] < 0.6 * dark.image_stats["brightness"]["reference_mean"]
    assert dsb.alert is True and {"mmd", "size"} <= set(dsb.details["alerts"]) and dsb.mmd_p < 0.01
