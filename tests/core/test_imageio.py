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
