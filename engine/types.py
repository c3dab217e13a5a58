"""Array type aliases shared by the engine."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SeedLike = int | np.random.Generator | np.random.SeedSequence | None
