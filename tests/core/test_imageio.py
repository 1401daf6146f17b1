import io

import numpy as np
import pytest
from PIL import Image

from visionloop.core.errors import ImageError, ImageTooLargeError
from visionloop.core.imageio import decode, probe
from visionloop.core.preprocess import Preprocess


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_applied_once():
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 20))  # blue left strip
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    data = encode(im, "JPEG", exif=exif, quality=95)
    info = probe(data)
    assert (info.width, info.height, info.orientation) == (20, 40, 6)
    out = np.asarray(decode(data))
    assert out.shape == (40, 20, 3)
    assert out[2, 10, 2] > 200  # blue strip now on top
    png = probe(encode(im, "PNG", exif=exif))  # a PNG's eXIf chunk, read from the header without decoding
    assert (png.width, png.height, png.orientation) == (20, 40, 6)


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "RGBA", "I;16", "LA", "1"])
def test_modes_become_rgb(mode):
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    if mode == "I;16":
        im = Image.fromarray((np.arange(64).reshape(8, 8) * 1000).astype(np.uint16))
        data = encode(im, "PNG")
    else:
        im = base.convert(mode)
        data = encode(im, "TIFF" if mode == "CMYK" else "PNG")
    out = decode(data)
    assert out.mode == "RGB" and out.size == (8, 8)
    if mode == "I;16":
        arr = np.asarray(out)[..., 0]
        assert arr.min() == 0 and arr.max() == 255


def test_truncated_and_non_images_are_refused():
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    data = encode(noisy, "JPEG")
    with pytest.raises(ImageError, match="truncated JPEG"):
        probe(data[: len(data) // 2])
    png = encode(Image.new("RGB", (64, 64)), "PNG")
    with pytest.raises(ImageError, match="truncated"):
        probe(png[:-20])
    with pytest.raises(ImageError, match="not an image"):
        probe(b"%PDF-1.4 hello")


def test_decompression_bomb_refused_from_header_only():
    # a PNG header claiming 40000x40000 pixels: refused before decoding
    data = encode(Image.new("1", (40000, 40000)), "PNG")
    with pytest.raises(ImageError, match="pixels"):
        probe(data, max_pixels=10_000_000)


def test_preprocess_letterbox_maps_back_to_original_pixels():
    pre = Preprocess(size=(320, 320), resize="letterbox")
    _, geo = pre.geometry(Image.new("RGB", (640, 480)))
    u, v = 160.0, 40.0 + 240.0 * 0.5  # centre of the pasted area
    assert (u - geo["pad_x"]) / geo["scale_x"] == 320.0
    assert (v - geo["pad_y"]) / geo["scale_y"] == 240.0
    assert pre(Image.new("RGB", (640, 480))).shape == (3, 320, 320)


def _png_header(width: int, height: int) -> bytes:
    """A PNG of ``width`` x ``height`` pixels whose pixel data is missing: its header and end are all there is."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(10_000, 9_000), (10_000, 10_000), (100_000_000, 1)])
def test_guard_allows_exactly_up_to_max_image_pixels(width, height):
    """90 Mpx was refused by Pillow's own warning threshold (89.5 Mpx) turned into an error; the limit is ours."""
    assert width * height > Image.MAX_IMAGE_PIXELS  # the range Pillow's warning used to refuse
    info = probe(_png_header(width, height), max_pixels=100_000_000)
    assert (info.width, info.height) == (width, height)
    with pytest.raises(ImageError) as e:  # decode passes the guard and fails only on the missing pixel data
        decode(_png_header(width, height), max_pixels=100_000_000)
    assert "pixels" not in str(e.value) and "decompression" not in str(e.value).lower()


def test_guard_refuses_one_pixel_more():
    for read in (probe, decode):
        with pytest.raises(ImageTooLargeError, match="100,000,001 pixels exceeds the limit of 100,000,000") as e:
            read(_png_header(100_000_001, 1), max_pixels=100_000_000)
        assert (e.value.width, e.value.height, e.value.max_pixels) == (100_000_001, 1, 100_000_000)
        assert "max_image_pixels = 100000001 in its visionloop.toml" in str(e.value)  # says how to raise it


def test_limit_past_pillows_hard_limit_is_the_projects():
    """Pillow refuses 400 Mpx outright (its hard limit is ~179 Mpx); a project that raised its own limit reads the
    header with libvips, and the guard is still ours in both directions."""
    header = _png_header(20_000, 20_000)
    assert 2 * Image.MAX_IMAGE_PIXELS < 20_000 * 20_000
    info = probe(header, max_pixels=10**9)
    assert (info.width, info.height, info.format, info.mode) == (20_000, 20_000, "png", "L")
    with pytest.raises(ImageTooLargeError, match="400,000,000 pixels exceeds the limit of 300,000,000"):
        probe(header, max_pixels=300_000_000)
    with pytest.raises(ImageTooLargeError):
        decode(header, max_pixels=300_000_000)
    with pytest.raises(ImageError) as e:  # passes the guard, fails only on the missing pixel data
        decode(header, max_pixels=10**9)
    assert not isinstance(e.value, ImageTooLargeError)


def test_decode_past_pillows_hard_limit_reads_the_pixels():
    """A 13500x13500 JPEG (182 Mpx, past Pillow's hard limit) decodes through libvips: the same pixels, orientation
    applied, and a draft shrinks it by a power of two."""
    im = Image.new("RGB", (13_500, 13_500), (30, 60, 90))
    im.paste((200, 10, 10), (0, 0, 13_500, 100))  # a red band on top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display: the band ends up on the right
    data = encode(im, "JPEG", quality=90, exif=exif)
    del im
    info = probe(data, max_pixels=200_000_000)
    assert (info.width, info.height, info.orientation) == (13_500, 13_500, 6)
    small = decode(data, max_pixels=200_000_000, draft=(1000, 1000))
    assert small.size == (-(-13_500 // 8), -(-13_500 // 8))  # 1/8 of the size, rounded up as Pillow does
    arr = np.asarray(small)
    assert arr[500, -3, 0] > 150 and arr[500, 3, 0] < 60  # red band on the right, not the top


def test_the_runtime_loads_libvips_only_for_images_past_pillows_limit(tmp_path):
    """``visionloop[runtime]`` reads images with Pillow; libvips is loaded by the first image past ~179 Mpx."""
    import subprocess
    import sys

    code = ("import sys, visionloop.inference, visionloop.core.imageio as io\n"
            "assert 'pyvips' not in sys.modules, 'imported at start'\n"
            "io.decode(sys.argv[1])\n"
            "assert 'pyvips' not in sys.modules, 'loaded for a small image'\n")
    Image.new("RGB", (8, 8)).save(tmp_path / "small.png")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "small.png")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
