"""The arrays a compiled kernel reads, given to it in one numba type whatever their origin."""

from __future__ import annotations

import numpy as np

from engine.types import FloatArray


def kernel_input(array: FloatArray) -> FloatArray:
    """``array`` as a read-only, C-contiguous float64 view (a copy only when it is not
    C-contiguous float64 already).

    numba compiles a kernel once per argument type, and whether an array is writable is
    part of its type: arrays simulated in process are writable, scenario files are read
    as read-only views. Handing every input the kernel only reads through this function
    gives one type for both, so the kernel compiles once, not once per origin.
    """
    view = np.ascontiguousarray(array, dtype=np.float64).view()
    view.flags.writeable = False
    return view
