"""The order in which ``make test`` hands test modules to its workers.

``make test`` runs ``pytest -n auto --dist loadfile --no-loadscope-reorder``: each module
goes whole to one worker, in collection order, the next module to the first worker that
runs short. The modules with the most end-to-end (``slow``) tests are the longest, so
they go first and the many quick modules fill the gaps at the end; pytest-xdist's own
reordering (most tests first) would leave a one-test pipeline module for last, with one
worker busy and the other idle.
"""

from __future__ import annotations

from collections import Counter

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules by their number of ``slow`` tests, most first; otherwise collection order
    (a stable sort keeps each module's tests together and in order)."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])
