"""Label Studio's brush RLE (``brushlabels`` ``value.rle``), the bit-packed run-length code of ``label-studio-converter``.

The stream encodes a flat RGBA image (H * W * 4 bytes; the mask is the alpha channel): 32 bits of length, 5 bits of
word size - 1, four 4-bit run-length field sizes - 1, then blocks of ``flag(1) size_index(2) length-1`` followed by one
value (flag 1: a run) or ``length`` values (flag 0: literals). Bits are read most significant first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode_brush", "encode_brush"]


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        self.text = (self.bits + ord("0")).tobytes()  # b"0110...": int(text[i:j], 2) reads a field fast
        self.i = 0

    def read_many(self, n: int, count: int) -> np.ndarray:
        """``count`` unsigned values of ``n`` bits each (n <= 32), as int64."""
        end = self.i + n * count
        if end > len(self.bits):
            raise ValueError("brush RLE ends early")
        chunk = self.bits[self.i:end].reshape(count, n).astype(np.int64)
        self.i = end
        return chunk @ (np.int64(1) << np.arange(n - 1, -1, -1, dtype=np.int64))

    def read(self, n: int) -> int:
        end = self.i + n
        if end > len(self.text):
            raise ValueError("brush RLE ends early")
        value = int(self.text[self.i:end], 2)
        self.i = end
        return value


def decode_brush(rle: list[int], height: int, width: int) -> np.ndarray:
    """(H, W) bool mask from Label Studio's brush RLE; ValueError when the stream is malformed.

    Literal blocks are read as whole arrays, so the time grows with the stream, not with the image size.
    """
    stream = _Bits(bytes(int(v) & 0xFF for v in rle))
    num = stream.read(32)
    if num != height * width * 4:
        raise ValueError(f"brush RLE holds {num} values, a {width}x{height} RGBA image has {height * width * 4}")
    word = stream.read(5) + 1
    sizes = [stream.read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint8)
    i = 0
    while i < num:
        run = stream.read(1)
        j = min(num, i + 1 + stream.read(sizes[stream.read(2)]))
        if run:
            out[i:j] = stream.read(word)
        else:
            out[i:j] = stream.read_many(word, j - i)
        i = j
    return out.reshape(height, width, 4)[:, :, 3] > 0


def encode_brush(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE of a (H, W) bool mask (alpha 255 inside, as ``label_studio_converter.brush.mask2rle``)."""
    flat = np.repeat(np.asarray(mask, dtype=bool).reshape(-1), 4).astype(np.uint8) * 255
    parts = [f"{len(flat):032b}", f"{8 - 1:05b}", "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))]
    if len(flat):
        edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        starts = np.concatenate([[0], edges])
        lengths = np.diff(np.concatenate([starts, [len(flat)]]))
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            value = f"{int(flat[start]):08b}"
            while length > 0:
                n = min(length, 1 << 16)
                if n == 1:
                    parts.append("0" + "00" + "000" + value)
                elif n <= 8:
                    parts.append("1" + "00" + f"{n - 1:03b}" + value)
                elif n <= 16:
                    parts.append("1" + "01" + f"{n - 1:04b}" + value)
                elif n <= 256:
                    parts.append("1" + "10" + f"{n - 1:08b}" + value)
                else:
                    parts.append("1" + "11" + f"{n - 1:016b}" + value)
                length -= n
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return list(np.packbits(np.frombuffer(bits.encode("ascii"), dtype=np.uint8) - ord("0")).tolist())
