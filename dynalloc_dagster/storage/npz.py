"""Uncompressed npz files whose arrays are read in place, without a copy.

:func:`npz_bytes` writes a standard npz (``np.load`` reads it) whose members are stored
uncompressed, with a fixed date (identical arrays, identical bytes) and each array's data
starting at a multiple of :data:`ALIGNMENT` bytes from the file's start: a zip extra
field pads the member's local header, as Android's zipalign does.

:func:`npz_arrays` gives the arrays of such bytes as read-only views into them: no copy,
no second checksum (the storage verified the object's sha256 already). A member whose data
is not aligned (an npz written by ``np.savez``) is copied once into aligned memory, so
every array handed out is aligned whatever wrote the file. Reading 420 MB of scenario
paths costs the read and the checksum only.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from collections.abc import Mapping

import numpy as np

ALIGNMENT = 64
"""Where each array's data starts in the file: a multiple of this many bytes."""
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")
"""A zip local file header (30 bytes), name and extra field lengths last."""
_PADDING_ID = 0xD935
"""The zip extra field id zipalign uses for padding."""
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_MAX_HEADER = 65536
"""More than any npy header: ``np.lib.format`` refuses headers past 10,000 bytes."""


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """``arrays`` as an uncompressed npz, each array's data aligned (module docstring).

    Each member is ``np.lib.format.write_array``'s npy file (format 1.0): its header is
    written on its own first to know where the array's data will start, then the whole
    file is streamed into the member from the array (no npy file assembled in memory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            array = np.asanyarray(value)
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, np.lib.format.header_data_from_array_1_0(array))
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            info.file_size = header.tell() + array.nbytes
            start = buffer.tell() + _LOCAL_HEADER.size + len(info.filename.encode())
            pad = -(start + 4 + header.tell()) % ALIGNMENT
            info.extra = struct.pack("<2H", _PADDING_ID, pad) + bytes(pad)
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, array, version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


def npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    """{name: read-only array} of an uncompressed npz's bytes, viewed in place when aligned.

    Raises ValueError for a compressed member, one holding Python objects, or one whose
    size is not its header's and its array's (an array never reads past its member)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    arrays = {}
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"npz member {member.filename} is compressed")
        fields = _LOCAL_HEADER.unpack_from(data, member.header_offset)
        start = member.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
        shape, fortran, dtype, header = _npy_header(
            data[start:start + min(member.file_size, _MAX_HEADER)])
        if dtype.hasobject:
            raise ValueError(f"npz member {member.filename} holds Python objects")
        if header + math.prod(shape) * dtype.itemsize != member.file_size:
            raise ValueError(f"npz member {member.filename} holds {member.file_size} bytes,"
                             f" not the {header} of its header and the"
                             f" {math.prod(shape) * dtype.itemsize} of a {dtype} array"
                             f" of shape {shape}")
        array = np.frombuffer(data, dtype, count=math.prod(shape), offset=start + header)
        if not array.flags.aligned:
            array = array.copy()
        array = array.reshape(shape, order="F" if fortran else "C")
        array.flags.writeable = False
        arrays[member.filename.removesuffix(".npy")] = array
    return arrays


def _npy_header(start: bytes | memoryview) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, Fortran order, dtype, header length in bytes) of an npy file's first bytes."""
    head = io.BytesIO(start)
    version = np.lib.format.read_magic(head)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(head)
    return shape, fortran, dtype, head.tell()
