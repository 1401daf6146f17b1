import io

import numpy as np
import pytest
from PIL import Image

from visionloop.core.errors import ImageError
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
    with pytest.raises(ImageError, match="100,000,001 pixels exceeds the limit of 100,000,000"):
        probe(_png_header(100_000_001, 1), max_pixels=100_000_000)
    with pytest.raises(ImageError, match="exceeds 100,000,000 pixels"):
        decode(_png_header(100_000_001, 1), max_pixels=100_000_000)
    with pytest.raises(ImageError, match="decompression-bomb guard"):  # past Pillow's hard limit (~179 Mpx)
        probe(_png_header(20_000, 20_000), max_pixels=10**9)
