"""The PNG writer of the charts: Pillow and a PDF reader read back the pixels written."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from dynalloc_dagster.committee.png import compressed_scanlines, png_file


@pytest.mark.parametrize("size", [(1, 1), (7, 3), (1100, 660)])
def test_a_png_reads_back_as_its_pixels_and_resolution(size: tuple[int, int]) -> None:
    width, height = size
    pixels = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    png = png_file(width, height, compressed_scanlines(Image.fromarray(pixels)), dpi=100)
    read = Image.open(io.BytesIO(png))
    read.load()  # checks every chunk's CRC and the image data's length
    assert read.mode == "RGB" and read.size == size
    assert np.array_equal(np.asarray(read), pixels)
    assert read.info["dpi"] == pytest.approx((100, 100), abs=1e-3)


def test_the_scanlines_are_each_row_after_a_no_filter_byte() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    rows = zlib.decompress(compressed_scanlines(Image.fromarray(pixels)))
    assert rows == b"\0" + bytes(range(9)) + b"\0" + bytes(range(9, 18))


def test_a_picture_that_is_not_rgb_is_refused() -> None:
    with pytest.raises(ValueError, match="expected an RGB picture, got mode 'RGBA'"):
        compressed_scanlines(Image.new("RGBA", (2, 2)))
