"""dynalloc's numerical engine: scenarios, the vol-targeting strategy, metrics.

Pure numpy/scipy/polars; no Dagster and no I/O. Array axes are fixed throughout:
paths first, time second (``(n_paths, n_steps + 1)`` for levels); configs, when
present, come before paths (``(n_configs, n_paths, ...)``). The compiled kernels are
cached per version of the engine's source (:mod:`engine.kernel_cache`).
"""

from pathlib import Path as _Path

from engine.kernel_cache import use_keyed_cache as _use_keyed_cache

_use_keyed_cache(_Path(__file__).parent)
