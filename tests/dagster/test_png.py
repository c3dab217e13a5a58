"""The PNG writer of the charts: Pillow and a PDF reader read back the pixels written."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from dynalloc_dagster.committee.png import compressed_scanlines, png_file, rgb_image_data


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (1100, 660)])
def test_a_png_reads_back_as_its_pixels_and_resolution(size: tuple[int, int]) -> None:
    width, height = size
    pixels = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    png = png_file(width, height, compressed_scanlines(pixels), dpi=100)
    read = Image.open(io.BytesIO(png))
    read.load()  # checks every chunk's CRC and the image data's length
    assert read.mode == "RGB" and read.size == size
    assert np.array_equal(np.asarray(read), pixels)
    assert read.info["dpi"] == pytest.approx((100, 100), abs=1e-3)


def test_the_scanlines_are_each_row_after_a_no_filter_byte() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rows = zlib.decompress(compressed_scanlines(pixels))
    assert rows == b"\0" + bytes(range(9)) + b"\0" + bytes(range(9, 18))


def test_the_rows_of_a_strided_view_are_its_pixels() -> None:
    """A canvas' RGBA buffer without its alpha: every fourth byte skipped."""
    rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    rows = zlib.decompress(compressed_scanlines(rgba[..., :3]))
    assert rows == b"".join(b"\0" + bytes(np.ascontiguousarray(row[..., :3]).tobytes())
                            for row in rgba)


@pytest.mark.parametrize(("shape", "dtype"), [((2, 2, 4), np.uint8), ((2, 6), np.uint8),
                                              ((2, 2, 3), np.uint16)])
def test_pixels_that_are_not_8_bit_rgb_are_refused(shape: tuple, dtype: type) -> None:
    with pytest.raises(ValueError, match=r"expected RGB pixels \(height, width, 3\) of uint8"):
        compressed_scanlines(np.zeros(shape, dtype=dtype))


def _pillow_png(pixels: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "png", **options)
    return buffer.getvalue()


def _idat_chunks(png: bytes) -> list[bytes]:
    """The IDAT chunks' data in file order, read here from the chunk layout."""
    found, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at:at + 4], "big")
        if png[at + 4:at + 8] == b"IDAT":
            found.append(png[at + 8:at + 8 + length])
        at += 12 + length
    return found


def test_an_rgb_pngs_image_data_is_its_idat_chunks_joined() -> None:
    """Pillow writes a large picture's data in several IDAT chunks, its rows filtered."""
    pixels = np.random.default_rng(7).integers(0, 256, (660, 1100, 3), dtype=np.uint8)
    png = _pillow_png(pixels)
    chunks = _idat_chunks(png)
    assert len(chunks) > 1
    width, height, data = rgb_image_data(png)
    assert (width, height) == (1100, 660) and data == b"".join(chunks)
    rows = zlib.decompress(data)
    assert len(rows) == height * (1 + 3 * width)
    assert {rows[r * (1 + 3 * width)] for r in range(height)} - {0}  # filtered rows too


def test_our_own_pngs_image_data_is_the_compressed_scanlines() -> None:
    pixels = np.random.default_rng(8).integers(0, 256, (3, 7, 3), dtype=np.uint8)
    scanlines = compressed_scanlines(pixels)
    assert rgb_image_data(png_file(7, 3, scanlines, dpi=100)) == (7, 3, scanlines)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (len(data).to_bytes(4, "big") + kind + data
            + zlib.crc32(kind + data).to_bytes(4, "big"))


@pytest.mark.parametrize(("depth", "colour", "interlace"),
                         [(8, 6, 0), (16, 2, 0), (8, 2, 1), (8, 0, 0)],
                         ids=["rgba", "16-bit", "interlaced", "grey"])
def test_a_png_that_is_not_8_bit_rgb_in_rows_has_no_image_data_to_share(
        depth: int, colour: int, interlace: int) -> None:
    header = (5).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes(
        [depth, colour, 0, 0, interlace])
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
           + _chunk(b"IDAT", zlib.compress(b"\0" * 40)) + _chunk(b"IEND", b""))
    assert rgb_image_data(png) is None
    rgba = _pillow_png(np.zeros((4, 5, 4), dtype=np.uint8))
    assert rgb_image_data(rgba) is None


def test_a_corrupt_or_cut_png_is_refused_naming_the_chunk() -> None:
    png = _pillow_png(np.zeros((4, 5, 3), dtype=np.uint8))
    idat = png.index(b"IDAT")
    flipped = png[:idat + 6] + bytes([png[idat + 6] ^ 1]) + png[idat + 7:]
    with pytest.raises(ValueError, match=r"b'IDAT' chunk at byte \d+: CRC-32 mismatch"):
        rgb_image_data(flipped)
    with pytest.raises(ValueError, match="cut short in its b'IDAT' chunk"):
        rgb_image_data(png[:idat + 8])
    with pytest.raises(ValueError, match="no IEND chunk"):
        rgb_image_data(png[:-12])
    with pytest.raises(ValueError, match="not a PNG"):
        rgb_image_data(b"GIF89a" + png[6:])
