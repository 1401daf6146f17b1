"""Tile pyramids of large images: geometry, pixels, orientation and modes, bad input, concurrency, bounded memory."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tile_images import NAIVE, STREAMING, bccd_mosaic, peak_memory
from visionloop.core.errors import ImageError
from visionloop.storage.tiles import (
    TILE_SIZE,
    PyramidInfo,
    TileStore,
    build_missing_pyramids,
    build_pyramid,
    needs_pyramid,
    pyramid_info,
)


@pytest.fixture(scope="module")
def mosaic(bccd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 5000x3750 JPEG of real blood-smear photographs: just past the 4096 px threshold, 5 levels."""
    return bccd_mosaic(bccd_dir, 5000, 3750, tmp_path_factory.mktemp("mosaic") / "smear.jpg")


def _tile(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "WEBP" and im.size == (TILE_SIZE, TILE_SIZE)
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def test_geometry_halves_down_to_one_tile() -> None:
    info = PyramidInfo(16000, 12000)
    assert info.levels == 6 and info.level_size(5) == (500, 375) and info.grid(5) == (1, 1)
    assert info.grid(0) == (32, 24) and info.tile_count() == 768 + 192 + 48 + 12 + 4 + 1
    assert PyramidInfo(8192, 100).levels == 5 and PyramidInfo(8193, 100).levels == 6  # 8192 = 512 * 2**4
    assert info.contains(5, 0, 0) and not info.contains(6, 0, 0) and not info.contains(0, 32, 0)
    assert "levels are 0 (full resolution) to 5" in info.out_of_range(6, 0, 0)
    assert "x is 0..31 and y is 0..23" in info.out_of_range(0, 0, 24)
    assert needs_pyramid(4097, 10) and not needs_pyramid(4096, 4096) and pyramid_info(4096, 300) is None


def test_pyramid_of_a_real_image_matches_the_source_downsampled(mosaic: Path, tmp_path: Path) -> None:
    info = build_pyramid(mosaic, tmp_path / "p")
    assert (info.width, info.height, info.levels) == (5000, 3750, 5)
    for z in range(info.levels):
        cols, rows = info.grid(z)
        names = {p.name for p in (tmp_path / "p" / str(z)).iterdir()}
        assert names == {f"{x}_{y}.webp" for x in range(cols) for y in range(rows)}, z
    assert sum(1 for _ in (tmp_path / "p").rglob("*.webp")) == info.tile_count() == 80 + 20 + 6 + 2 + 1
    source = np.asarray(Image.open(mosaic).convert("RGB"), dtype=np.int16)
    # level 0, an inner tile: the source's pixels, up to WebP's loss
    full = _tile(tmp_path / "p" / "0" / "3_2.webp")
    assert np.abs(full - source[1024:1536, 1536:2048]).mean() < 6
    # level 2 (1250x938), corner tile (2, 1): the source's 4x4 means, then its last column and row repeated
    down = np.asarray(Image.fromarray(source.astype(np.uint8)).reduce(4), dtype=np.int16)
    tile = _tile(tmp_path / "p" / "2" / "2_1.webp")
    h, w = down.shape[0] - 512, down.shape[1] - 1024  # the part of the corner tile inside the image
    assert (h, w) == (426, 226)
    assert np.abs(tile[:h - 1, :w - 1] - down[512:512 + h - 1, 1024:1024 + w - 1]).mean() < 6
    assert np.abs(tile[h + 8:, :w - 8] - tile[h - 1, :w - 8]).mean() < 4  # the last row, repeated downwards
    assert np.abs(tile[:h - 8, w + 8:] - tile[:h - 8, w - 1:w]).mean() < 4  # the last column, to the right
    top = _tile(tmp_path / "p" / "4" / "0_0.webp")  # 313x235: the whole image in one tile
    assert np.abs(top[:234, :312] - np.asarray(Image.fromarray(source.astype(np.uint8)).reduce(16),
                                               dtype=np.int16)[:234, :312]).mean() < 8
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_and_modes_as_decode_gives_them(tmp_path: Path) -> None:
    im = Image.new("RGB", (4200, 300), (20, 40, 60))
    im.paste((250, 0, 0), (0, 0, 200, 300))  # red at the left end
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the left end goes to the top
    info = build_pyramid(_encode(im, "JPEG", exif=exif, quality=95), tmp_path / "rot")
    assert (info.width, info.height) == (300, 4200)
    first = _tile(tmp_path / "rot" / "0" / "0_0.webp")
    assert first[50, 150, 0] > 200 and first[400, 150, 0] < 60
    grey16 = Image.fromarray((np.arange(4200 * 8).reshape(8, 4200) % 4200 * 15).astype(np.uint16))
    build_pyramid(_encode(grey16, "PNG"), tmp_path / "g16")
    row = _tile(tmp_path / "g16" / "0" / "0_0.webp")[0]
    assert row[0].tolist() == [0, 0, 0] and row[-1, 0] > 20  # stretched to 0..255 like decode, grey in RGB
    rgba = Image.new("RGBA", (4200, 16), (0, 0, 255, 0))  # fully transparent: white, as viewers show it
    build_pyramid(_encode(rgba, "PNG"), tmp_path / "rgba")
    assert _tile(tmp_path / "rgba" / "0" / "0_0.webp")[:16].min() > 240


def test_corrupt_and_non_images_fail_cleanly(mosaic: Path, tmp_path: Path) -> None:
    data = mosaic.read_bytes()
    with pytest.raises(ImageError, match="cannot build its tiles|corrupt|truncated|libvips"):
        build_pyramid(data[: len(data) // 3], tmp_path / "cut", name="cut.jpg")
    with pytest.raises(ImageError, match="not an image libvips can read"):
        build_pyramid(b"%PDF-1.4 not an image", tmp_path / "pdf", name="x.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written left behind


def test_two_threads_build_one_pyramid_once(mosaic: Path, tmp_path: Path) -> None:
    store, reads, sha = TileStore(tmp_path / "tiles"), [], "ab" * 32
    barrier = threading.Barrier(2)

    def source() -> Path:
        reads.append(1)
        return mosaic

    def ask() -> None:
        barrier.wait()
        store.ensure(sha, source)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1 and store.has(sha)
    assert store.tile_path(sha, 4, 0, 0).is_file()
    preview = store.preview(sha, PyramidInfo(5000, 3750), 512)
    assert preview.size == (625, 469)  # level 3: the smallest with at least 512 px on its longer side


def test_import_builds_the_pyramid_and_the_project_limit_applies(mosaic: Path, tmp_path: Path) -> None:
    from visionloop.ingest.importer import import_source
    from visionloop.storage.image_admin import delete_images
    from visionloop.storage.project import Project
    from visionloop.storage.versions import create_version

    src = tmp_path / "src"
    src.mkdir()
    (src / "smear.jpg").write_bytes(mosaic.read_bytes())
    (src / "small.jpg").write_bytes(_encode(Image.new("RGB", (64, 48)), "JPEG"))
    strict = Project.create(tmp_path / "strict", task="detection", max_image_pixels=10_000_000)
    report = import_source(strict, src, format="images")
    assert report.images_added == 1
    (problem,) = report.problems
    assert "exceeds the limit of 10,000,000" in problem.reason and "max_image_pixels" in problem.reason
    strict.close()
    with Project.open(tmp_path / "strict") as reopened:  # the limit lives in the project's visionloop.toml
        assert reopened.settings.max_image_pixels == 10_000_000
    toml = tmp_path / "strict" / "visionloop.toml"
    toml.write_text(toml.read_text().replace("10000000", "20000000"))
    with Project.open(tmp_path / "strict") as raised:
        report = import_source(raised, src, format="images")
        assert report.images_added == 1 and not report.problems
        (big,) = [im for im in raised.images() if im.width > 4096]
        store = TileStore.of(raised)
        assert store.has(big.sha256) and store.tile_path(big.sha256, 0, 9, 7).is_file()
        assert build_missing_pyramids(raised) == (0, [])
        store.remove(big.sha256)
        assert build_missing_pyramids(raised) == (1, []) and store.has(big.sha256)
        assert delete_images(raised, [big.id]).blobs_removed == 1
        assert not store.folder(big.sha256).exists()  # its pyramid went with its blob
        import_source(raised, src, format="images")  # the same file again: image and pyramid are back
        (back,) = [im for im in raised.images() if im.width > 4096]
        create_version(raised, name="v1", include_unannotated=True)
        assert delete_images(raised, [back.id]).kept_for_versions == 1 and store.has(back.sha256)  # v1 shows it


def test_bounded_memory_does_not_grow_with_the_image(bccd_dir: Path, tmp_path: Path) -> None:
    """Bounded memory, measured in fresh processes: a 2000x16000 image (92 MiB decoded) needs little more memory to
    build than a 2000x4000 one (23 MiB), the strips in flight being the same size (measured: +9 MiB for +69 MiB of
    pixels; 49 MiB in all, the naive build 247 MiB): the naive build needs more than the whole decoded image."""
    short = bccd_mosaic(bccd_dir, 2000, 4000, tmp_path / "short.jpg")
    tall = bccd_mosaic(bccd_dir, 2000, 16000, tmp_path / "tall.jpg")
    tall_mb, extra_mb = 2000 * 16000 * 3 / 2**20, 2000 * (16000 - 4000) * 3 / 2**20
    ours_short = peak_memory(STREAMING, short, tmp_path / "short")
    ours_tall = peak_memory(STREAMING, tall, tmp_path / "tall")
    assert ours_tall["build_mb"] - ours_short["build_mb"] < extra_mb / 3, (ours_short, ours_tall)
    naive_tall = peak_memory(NAIVE, tall, tmp_path / "naive")
    assert naive_tall["build_mb"] > tall_mb > ours_tall["build_mb"], (naive_tall, ours_tall)
    assert PyramidInfo(2000, 16000).tile_count() == sum(1 for _ in (tmp_path / "tall").rglob("*.webp"))


@pytest.mark.slow
def test_bounded_memory_on_a_16000x12000_image(bccd_dir: Path, tmp_path: Path) -> None:
    source = bccd_mosaic(bccd_dir, 16000, 12000, tmp_path / "huge.jpg")
    ours = peak_memory(STREAMING, source, tmp_path / "ours")
    assert ours["build_mb"] < 0.4 * 16000 * 12000 * 3 / 2**20, ours  # 576 MB decoded
    assert sum(1 for _ in (tmp_path / "ours").rglob("*.webp")) == PyramidInfo(16000, 12000).tile_count()


@pytest.mark.parametrize("value", ['"lots"', "0", "-5", "true", "1.5e8"])
def test_a_bad_project_limit_says_what_to_write(tmp_path: Path, value: str) -> None:
    from visionloop.core.errors import AnnotationValidationError
    from visionloop.storage.project import Project

    Project.create(tmp_path / "p", task="detection").close()
    toml = tmp_path / "p" / "visionloop.toml"
    toml.write_text(toml.read_text() + f"max_image_pixels = {value}\n")
    with pytest.raises(AnnotationValidationError, match="max_image_pixels in visionloop.toml.*max_image_pixels = 2"):
        Project.open(tmp_path / "p")


@pytest.mark.parametrize(("width", "height"), [(4097, 3), (8192, 5), (8193, 2), (3, 9000), (5121, 1023)])
def test_levels_and_tiles_at_the_edges_of_the_geometry(tmp_path: Path, width: int, height: int) -> None:
    """Sizes at a power of two of the tile, one past it, thin and tall: every level and tile is where it is said."""
    data = _encode(Image.new("RGB", (width, height), (90, 120, 150)), "PNG")
    info = build_pyramid(data, tmp_path / "p")
    assert info == PyramidInfo(width, height)
    for z in range(info.levels):
        cols, rows = info.grid(z)
        assert len(list((tmp_path / "p" / str(z)).iterdir())) == cols * rows
    assert not (tmp_path / "p" / str(info.levels)).exists()
    corner = _tile(tmp_path / "p" / "0" / f"{info.grid(0)[0] - 1}_{info.grid(0)[1] - 1}.webp")
    inside_w, inside_h = width - (info.grid(0)[0] - 1) * TILE_SIZE, height - (info.grid(0)[1] - 1) * TILE_SIZE
    assert np.abs(corner[:inside_h, :inside_w] - [90, 120, 150]).max() < 12
