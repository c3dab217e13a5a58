"""Suite-wide settings: the same floating-point results on every x86-64 CPU, where the
tests' throwaway files go, and the order in which ``make test`` hands test modules to
its workers.

The same bits on every CPU: many tests compare the engine's compiled kernels with numpy
bit for bit, and the stored golden paths and tables (tests/engine/data) were computed on
a CPU without AVX-512. On a CPU with it, numpy dispatches its exp, log and power loops to
AVX-512 code and OpenBLAS its matrix kernels, both rounding some results differently in
the last bit. So the suite runs numpy on its AVX2 loops and OpenBLAS on its Haswell
kernels (:data:`SAME_BITS_ON_EVERY_CPU`; what every x86-64-v3 CPU runs), set before numpy
is first imported and inherited by the workers and the processes the tests start; a
value already set in the environment is kept.

Throwaway files in RAM: every Dagster instance of the tests keeps its runs and event log
in SQLite under a temporary folder, and SQLite syncs its journal to disk at each commit,
one per event (a small pipeline writes about 750 events in 2000 commits). On this
machine's shared disk those syncs took 34 s of a 128 s six-asset pipeline (0.5 s in
RAM). When ``$TMPDIR`` is not set and ``/dev/shm`` is a tmpfs with room, the session's
temporary files (``tmp_path``, ``tempfile``, the servers and subprocesses the tests start)
go there; a set ``$TMPDIR`` is kept. pyproject.toml keeps the ``tmp_path`` of failed tests
only, so the RAM they take is given back test by test.

Order: ``make test`` runs ``pytest -n auto --dist loadfile --no-loadscope-reorder``: each
module goes whole to one worker, in collection order, the next module to the first worker
that runs short. The modules with the most end-to-end (``slow``) tests are the longest, so
they go first and the many quick modules fill the gaps at the end; pytest-xdist's own
reordering (most tests first) would leave a one-test pipeline module for last, with one
worker busy and the other idle.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

SAME_BITS_ON_EVERY_CPU = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
                          "OPENBLAS_CORETYPE": "Haswell"}
for _name, _value in SAME_BITS_ON_EVERY_CPU.items():
    os.environ.setdefault(_name, _value)

import pytest  # noqa: E402  after the settings numpy reads when first imported

RAM_TMP = Path("/dev/shm")
RAM_TMP_MIN_FREE = 4 * 2**30  # bytes; the largest test stores about 0.4 GB


def pytest_configure(config: pytest.Config) -> None:
    """``$TMPDIR`` = /dev/shm unless set or too small (see the module docstring); set in
    the controller before the workers start, so they and their subprocesses inherit it."""
    if "TMPDIR" in os.environ or not os.access(RAM_TMP, os.W_OK | os.X_OK):
        return
    if shutil.disk_usage(RAM_TMP).free < RAM_TMP_MIN_FREE:
        return
    os.environ["TMPDIR"] = str(RAM_TMP)
    tempfile.tempdir = None  # tempfile's cached choice, made again from $TMPDIR


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules by their number of ``slow`` tests, most first; otherwise collection order
    (a stable sort keeps each module's tests together and in order)."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])
