"""RGB pictures as PNG files, and the compressed scanlines a charts.pdf page shares with them.

A PNG's image data (its IDAT chunks) is the zlib stream of its scanlines: each row of
pixels after a filter-type byte. With filter type 0 (none) on every row, that stream is
also a PDF image's data under ``/FlateDecode`` with ``/DecodeParms << /Predictor 15
/Colors 3 /BitsPerComponent 8 /Columns w >>`` (PNG predictors, ISO 32000-1 7.4.4.4), so a
chart's charts.pdf page embeds its PNG's data as it is, compressed once. Unfiltered at
zlib level 1 a chart is within some 10% of the size Pillow's adaptive filters give at that
level (43-145 kB here), in a third of its time (3-11 ms against 8-24 ms a chart).

The same holds for any 8-bit RGB PNG that is not interlaced, whatever filter each row
uses (the filter byte is the row's PNG predictor), so :func:`rgb_image_data` hands such a
PNG's data to a PDF without decoding it.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

COMPRESS_LEVEL = 1
"""zlib level of the scanlines: a chart's flat colours compress about as well at 1 as at the
default 6, in half the time."""
SIGNATURE = b"\x89PNG\r\n\x1a\n"
RGB_8_BIT = (8, 2, 0, 0, 0)
"""IHDR's fields after the size: bit depth 8, colour type 2 (RGB), compression, filter
method and interlace 0: the layout written here, and the one whose data a PDF reads as is."""
METRES_PER_INCH = 0.0254


def compressed_scanlines(pixels: np.ndarray) -> bytes:
    """RGB pixels' rows ((height, width, 3) uint8, any strides: e.g. a canvas' RGBA
    buffer without its alpha), each after a 0 (no filter) byte, zlib-compressed at
    :data:`COMPRESS_LEVEL`: a PNG's image data, and a PDF image's with PNG predictors. The
    pixels are copied once, into the rows."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected RGB pixels (height, width, 3) of uint8, got shape"
                         f" {pixels.shape} of {pixels.dtype}")
    height, width, _ = pixels.shape
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 1:].reshape(height, width, 3)[...] = pixels
    return zlib.compress(rows, COMPRESS_LEVEL)


def png_file(width: int, height: int, scanlines: bytes, dpi: float) -> bytes:
    """A PNG of ``width`` x ``height`` RGB pixels, 8 bits a channel, from
    :func:`compressed_scanlines`, its resolution ``dpi`` (pHYs, pixels per metre); no
    timestamp or software tag, so the same pixels give the same bytes."""
    per_metre = round(dpi / METRES_PER_INCH)
    return b"".join((
        SIGNATURE,
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, *RGB_8_BIT)),
        _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
        _chunk(b"IDAT", scanlines),
        _chunk(b"IEND", b""),
    ))


def rgb_image_data(png: bytes) -> tuple[int, int, bytes] | None:
    """(width, height, image data) of an 8-bit RGB PNG that is not interlaced: its IDAT
    chunks' data joined, the zlib stream of its filtered rows (a PDF image's data under
    PNG predictors, module docstring). None for any other PNG (another colour type or
    bit depth, interlaced).

    Raises ValueError, naming the chunk, when ``png`` is not a PNG, is cut short, or a
    chunk's CRC-32 does not match its type and data."""
    if not png.startswith(SIGNATURE):
        raise ValueError("not a PNG: the file does not start with the PNG signature")
    at, header, data = len(SIGNATURE), None, []
    while True:
        if at + 8 > len(png):
            raise ValueError(f"PNG cut short at byte {at}: no IEND chunk")
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        end = at + 8 + length + 4
        if end > len(png):
            raise ValueError(f"PNG cut short in its {kind!r} chunk at byte {at}")
        body = png[at + 8:end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", png[end - 4:end])[0]:
            raise ValueError(f"PNG {kind!r} chunk at byte {at}: CRC-32 mismatch (corrupt)")
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise ValueError(f"PNG starts with a {kind!r} chunk, not IHDR")
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            data.append(body)
        elif kind == b"IEND":
            break
        at = end
    width, height, *layout = header
    if tuple(layout) != RGB_8_BIT:
        return None
    return width, height, b"".join(data)


def _chunk(kind: bytes, data: bytes) -> bytes:
    """length, type, data, CRC-32 of type and data (PNG specification, 5.3)."""
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))
