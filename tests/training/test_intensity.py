"""Per-image grey levels: the stretch itself, the automatic choice, and one result for training and packages."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from visionloop.core.annotations import SemanticMask
from visionloop.core.ontology import ClassDef, Ontology
from visionloop.core.preprocess import LEVEL_PERCENTILES, Preprocess, stretch_levels
from visionloop.data.detection import SemanticDataset
from visionloop.training.semantic import semantic_intensity


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _faint(seed: int, peak: int = 40, size: int = 64) -> np.ndarray:
    """A dark fluorescence-like image: background near 2, blobs up to ``peak``."""
    rng = np.random.default_rng(seed)
    grey = np.full((size, size), 2.0) + rng.normal(0, 0.5, (size, size))
    yy, xx = np.mgrid[:size, :size]
    for cy, cx in rng.integers(8, size - 8, (4, 2)):
        grey += (peak - 2) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_stretch_levels_maps_the_percentiles_to_the_full_range() -> None:
    rgb = _faint(0)
    out = stretch_levels(rgb)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    lo, hi = np.percentile(rgb, LEVEL_PERCENTILES)
    assert hi - lo > 10 and rgb.max() <= 45  # a faint image...
    assert out.max() == 255 and np.percentile(out, LEVEL_PERCENTILES[0]) <= 1  # ...now spans 0..255
    # order is kept: a brighter input pixel never comes out darker
    flat_in, flat_out = rgb[..., 0].ravel(), out[..., 0].ravel()
    order = np.argsort(flat_in, kind="stable")
    assert np.all(np.diff(flat_out[order].astype(int)) >= 0)
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert np.array_equal(stretch_levels(flat), flat)  # nothing to stretch: unchanged


def test_preprocess_applies_levels_before_resizing_and_round_trips_in_json() -> None:
    rgb = _faint(1)
    pp = Preprocess(size=(32, 32), resize="stretch", intensity="per_image")
    assert Preprocess.from_json(pp.to_json()) == pp
    old = pp.to_json()
    del old["intensity"]  # manifests written before the field: fixed levels
    assert Preprocess.from_json(old).intensity == "fixed"
    expected = Preprocess(size=(32, 32), resize="stretch")(Image.fromarray(stretch_levels(rgb)))
    assert np.array_equal(pp(Image.fromarray(rgb)), expected)
    assert not np.allclose(Preprocess(size=(32, 32), resize="stretch")(Image.fromarray(rgb)), expected)


def test_semantic_dataset_sees_what_the_package_sees() -> None:
    rgb = _faint(2)
    blob = _png(rgb)
    onto = Ontology(classes=(ClassDef(id=1, name="nucleus"),))
    item = SimpleNamespace(image=SimpleNamespace(sha256="x", width=64, height=64),
                           annotation=SemanticMask(np.zeros((64, 64), np.int32)))
    ds = SemanticDataset([item], ontology=onto, image_source=lambda sha: io.BytesIO(blob), intensity="per_image")
    image, _ = ds[0]
    pp = Preprocess(size=(64, 64), resize="stretch", intensity="per_image")
    assert np.allclose(image.numpy(), pp(Image.open(io.BytesIO(blob))), atol=1e-5)


def test_automatic_choice_follows_the_spread_of_brightness(tmp_path: Path) -> None:
    blobs: dict[str, bytes] = {}

    def items(images: list[np.ndarray]) -> list[SimpleNamespace]:
        out = []
        for i, rgb in enumerate(images):
            sha = f"{len(blobs)}-{i}"
            blobs[sha] = _png(rgb)
            out.append(SimpleNamespace(image=SimpleNamespace(sha256=sha)))
        return out

    def source(sha: str) -> io.BytesIO:
        return io.BytesIO(blobs[sha])

    rng = np.random.default_rng(0)
    photos = [np.clip(rng.normal(m, 30, (48, 48, 3)), 0, 255).astype(np.uint8) for m in (90, 110, 130, 150, 170)]
    choice, reason = semantic_intensity(items(photos), source)
    assert choice == "fixed" and "only" in reason
    microscopy = [_faint(s, peak=p) for s, p in enumerate((20, 30, 40, 60))] + [255 - _faint(9)]  # + a brightfield
    choice, reason = semantic_intensity(items(microscopy), source)
    assert choice == "per_image" and "varies" in reason, reason
    assert semantic_intensity([], source)[0] == "fixed"
