"""Suite-wide settings: where the tests' throwaway files go, and the order in which
``make test`` hands test modules to its workers.

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

import pytest

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
