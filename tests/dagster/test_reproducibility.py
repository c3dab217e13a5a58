"""Same inputs, same seed: same bytes. Pipelines of one small run config (10 paths, 3
configs in 2 rounds), each on a fresh instance:

- two identical pipelines at the same data-root path store byte-identical files: every
  table, scenario file, checksum and artifact (PNG, PDF, markdown);
- with ``portfolio: {name: two_asset}`` given explicitly, the tables and paths are the
  bytes of a run without it.

The run without a portfolio is made once for the module and compared by both tests.

One known exception, compared as a table instead: ``calibration.parquet`` stores
``heston_fit_seconds``, the wall time of the Heston fit (and its checksum differs with it).
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import polars.testing
import pytest
from dagster_test_support import small_run_config

from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.orchestration.pipeline import run_pipeline

WALL_TIME = {"calibration.parquet": "heston_fit_seconds"}  # file -> wall-time column
RUN_CONFIG_LINES = "      portfolio:\n        name: two_asset\n"
"""What the report of a run with ``portfolio: {name: two_asset}`` prints in its run config."""


def _config(portfolio: dict | None = None) -> dict[str, Any]:
    config = small_run_config(n_paths=10, initial_batch=2, batch_size=1, max_configs=3)
    if portfolio is not None:
        config["ops"]["market_data"]["config"]["portfolio"] = portfolio
    return config


def _run(root: Path, home: Path, config: dict[str, Any]) -> None:
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        runs = run_pipeline(build_definitions(data_root=str(root)), instance,
                            run_config=config)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), runs


def _hashes(root: Path) -> dict[str, str]:
    """{path relative to the data root: sha256} of every stored file."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pipeline without a portfolio, run at ``<folder>/data`` and then moved to
    ``<folder>/first``: returns ``<folder>``, where a later run may use ``data`` again."""
    folder = tmp_path_factory.mktemp("reproducibility")
    _run(folder / "data", folder / "home1", _config())
    shutil.move(folder / "data", folder / "first")
    return folder


@pytest.mark.slow
def test_two_identical_pipelines_store_identical_bytes(default_run: Path) -> None:
    root, kept = default_run / "data", default_run / "first"
    _run(root, default_run / "home2", _config())
    first, second = _hashes(kept), _hashes(root)
    assert sorted(first) == sorted(second)
    assert any(name.startswith("strategy_evaluations/") for name in first)
    assert {"artifacts/report.md", "artifacts/report.pdf"} <= set(first)
    wall_time = set(WALL_TIME) | {f".checksums/{name}.sha256" for name in WALL_TIME}
    differing = sorted(n for n in first if first[n] != second[n] and n not in wall_time)
    assert differing == [], "\n".join(differing)
    for name, column in WALL_TIME.items():
        pl.testing.assert_frame_equal(pl.read_parquet(kept / name).drop(column),
                                      pl.read_parquet(root / name).drop(column))


@pytest.mark.slow
def test_an_explicit_two_asset_portfolio_stores_the_default_bytes(
    default_run: Path, tmp_path: Path
) -> None:
    """The whole pipeline with ``portfolio: {name: two_asset}`` stores the tables and
    paths of a run without the resource configured, byte for byte."""
    _run(tmp_path / "data", tmp_path / "home", _config({"name": "two_asset"}))
    stored = {}
    for label, root in (("default", default_run / "first"), ("explicit", tmp_path / "data")):
        stored[label] = {p.relative_to(root).as_posix(): p.read_bytes()
                         for p in sorted(root.rglob("*"))
                         if p.suffix in (".parquet", ".npz", ".csv")}
    default, explicit = stored["default"], stored["explicit"]
    assert len(default) > 20 and default.keys() == explicit.keys()
    assert {k for k, v in default.items() if explicit[k] != v} <= {*WALL_TIME,
                                                                   "report.parquet"}
    # the Heston fit's wall-clock seconds, and the run config the report prints
    calibrations = [pl.read_parquet(io.BytesIO(s[name])).drop(column)
                    for s in (default, explicit) for name, column in WALL_TIME.items()]
    assert calibrations[0].equals(calibrations[1])
    reports = [pl.read_parquet(io.BytesIO(s["report.parquet"]))["markdown"][0]
               for s in (default, explicit)]
    assert reports[1].replace(RUN_CONFIG_LINES, "") == reports[0]
