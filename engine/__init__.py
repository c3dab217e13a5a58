"""dynalloc's numerical engine: scenarios, the vol-targeting strategy, metrics.

Pure numpy/scipy/polars; no Dagster and no I/O. Array axes are fixed throughout:
paths first, time second (``(n_paths, n_steps + 1)`` for levels); configs, when
present, come before paths (``(n_configs, n_paths, ...)``).
"""
