"""The engine is usable without Dagster: it imports nothing of the project.

Importing ``engine`` and every one of its submodules in a fresh interpreter must not
pull in ``dagster`` (nor the project's Dagster package). A fresh process is needed:
this test session may already have imported Dagster through other tests.
"""

from __future__ import annotations

import json
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import engine

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

_PROBE = """
import importlib, json, pkgutil, sys
import engine
names = sorted(
    m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine.")
)
for name in names:
    importlib.import_module(name)
print(json.dumps({
    "imported": names,
    "loaded": sorted(
        m for m in sys.modules
        if m.split(".")[0] in {"dagster", "dynalloc_dagster", "dbt_like_reports"}
    ),
}))
"""


@pytest.fixture(scope="module")
def report() -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_whole_engine_does_not_import_dagster(report):
    assert report["loaded"] == []


def test_the_probe_imported_every_engine_module(report):
    # Guards the test above against vacuously passing on an empty module list.
    expected = sorted(m.name for m in pkgutil.walk_packages(engine.__path__, prefix="engine."))
    assert report["imported"] == expected
    for name in (
        "engine.market.heston",
        "engine.market.paths",
        "engine.strategy",
        "engine.strategy.backtest",
        "engine.analysis.robustness",
        "engine.optimisation.sampling",
    ):
        assert name in report["imported"]
