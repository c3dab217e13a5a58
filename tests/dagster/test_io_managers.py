"""IO managers: file layout, round trips, path validation, atomic writes, missing inputs.

The managers are driven with contexts from ``dg.build_output_context`` /
``dg.build_input_context``, the way Dagster calls them in a run.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dynalloc_dagster import io_managers
from dynalloc_dagster.io_managers import (
    PolarsParquetIOManager,
    ScenarioPathsIOManager,
    atomic_write,
    load_scenario_paths,
    safe_component,
)
from dynalloc_dagster.partitions import (
    SCENARIOS,
    config_partitions,
    evaluation_partitions,
    scenario_partitions,
)
from engine.market.paths import ScenarioPaths, simulate_scenario
from engine.market.regimes import REGIMES

ARRAYS = ("equity", "variance", "short_rate", "bond", "cash")


def _frame(tag: str, rows: int = 3) -> pl.DataFrame:
    return pl.DataFrame({
        "key": [tag] * rows,
        "value": [0.1 * i for i in range(rows)],
        "count": list(range(rows)),
    })


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _leftover_temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*.tmp")]


@pytest.fixture
def parquet(data_root: Path) -> PolarsParquetIOManager:
    return PolarsParquetIOManager(root=str(data_root))


@pytest.fixture
def npz(data_root: Path) -> ScenarioPathsIOManager:
    return ScenarioPathsIOManager(root=str(data_root))


@pytest.fixture(scope="module")
def bear_paths() -> ScenarioPaths:
    return simulate_scenario(REGIMES["bear"], 20, 3, warmup_months=1, horizon_years=1)


# --- Parquet -----------------------------------------------------------------------------


def test_unpartitioned_round_trip(parquet: PolarsParquetIOManager, data_root: Path) -> None:
    frame = _frame("all")
    out = dg.build_output_context(asset_key="market_data")
    parquet.handle_output(out, frame)

    assert _files(data_root) == ["market_data.parquet"]
    loaded = parquet.load_input(dg.build_input_context(asset_key="market_data",
                                                      upstream_output=out))
    assert_frame_equal(loaded, frame)


def test_none_output_writes_nothing(parquet: PolarsParquetIOManager, data_root: Path) -> None:
    parquet.handle_output(dg.build_output_context(asset_key="nothing"), None)
    assert not data_root.exists()


def test_single_partition_round_trip(parquet: PolarsParquetIOManager, data_root: Path) -> None:
    frame = _frame("bear")
    parquet.handle_output(
        dg.build_output_context(asset_key="per_scenario", partition_key="bear",
                                asset_partitions_def=scenario_partitions),
        frame,
    )

    assert _files(data_root) == ["per_scenario/bear.parquet"]
    loaded = parquet.load_input(dg.build_input_context(
        asset_key="per_scenario", partition_key="bear", asset_partitions_def=scenario_partitions,
    ))
    assert_frame_equal(loaded, frame)


def test_many_partitions_from_a_mapping(parquet: PolarsParquetIOManager, data_root: Path) -> None:
    everything = dg.PartitionKeyRange(SCENARIOS[0], SCENARIOS[-1])
    frames = {name: _frame(name, rows=i + 1) for i, name in enumerate(SCENARIOS)}
    parquet.handle_output(
        dg.build_output_context(asset_key="per_scenario", asset_partition_key_range=everything,
                                asset_partitions_def=scenario_partitions),
        frames,
    )

    assert _files(data_root) == sorted(f"per_scenario/{name}.parquet" for name in SCENARIOS)
    for name, frame in frames.items():
        assert_frame_equal(pl.read_parquet(data_root / "per_scenario" / f"{name}.parquet"), frame)
    loaded = parquet.load_input(dg.build_input_context(
        asset_key="per_scenario", asset_partition_key_range=everything,
        asset_partitions_def=scenario_partitions,
    ))
    assert_frame_equal(loaded.sort("key", "count"),
                       pl.concat(frames.values()).sort("key", "count"))


def test_many_partitions_need_a_mapping(parquet: PolarsParquetIOManager, data_root: Path) -> None:
    context = dg.build_output_context(
        asset_key="per_scenario", asset_partition_key_range=dg.PartitionKeyRange("base", "bear"),
        asset_partitions_def=scenario_partitions,
    )
    with pytest.raises(TypeError, match="covers 3 partitions"):
        parquet.handle_output(context, _frame("one"))
    assert not data_root.exists()


def test_mapping_with_keys_outside_the_run_is_rejected(
    parquet: PolarsParquetIOManager, data_root: Path
) -> None:
    context = dg.build_output_context(
        asset_key="per_scenario", partition_key="bear", asset_partitions_def=scenario_partitions,
    )
    with pytest.raises(ValueError, match=r"outside this run.*bull"):
        parquet.handle_output(context, {"bear": _frame("bear"), "bull": _frame("bull")})
    assert not data_root.exists()


def test_multi_partition_key_is_a_nested_path(
    parquet: PolarsParquetIOManager, data_root: Path, instance: dg.DagsterInstance
) -> None:
    instance.add_dynamic_partitions(config_partitions.name, ["0a1b2c3d4e", "ffffffffff"])
    key = dg.MultiPartitionKey({"config": "0a1b2c3d4e", "scenario": "high_vol"})
    frame = _frame("high_vol")
    parquet.handle_output(
        dg.build_output_context(asset_key="strategy_evaluations", partition_key=str(key),
                                asset_partitions_def=evaluation_partitions, instance=instance),
        frame,
    )

    assert _files(data_root) == [
        "strategy_evaluations/config=0a1b2c3d4e/scenario=high_vol.parquet"
    ]
    loaded = parquet.load_input(dg.build_input_context(
        asset_key="strategy_evaluations", partition_key=str(key),
        asset_partitions_def=evaluation_partitions, instance=instance,
    ))
    assert_frame_equal(loaded, frame)


@pytest.mark.parametrize("bad", ["..", "a/b", "", "../escape", "/abs", "a\\b", ".hidden", "a..b"])
def test_safe_component_rejects_unsafe_names(bad: str) -> None:
    with pytest.raises(ValueError, match="not a safe file name"):
        safe_component(bad)


@pytest.mark.parametrize("good", ["base", "high_vol", "0a1b2c3d4e", "v1.2-rc_3"])
def test_safe_component_accepts_plain_names(good: str) -> None:
    assert safe_component(good) == good


@pytest.mark.parametrize("bad_key", ["../escape", "nested/key", "..", "/etc"])
def test_unsafe_partition_key_writes_nothing(
    parquet: PolarsParquetIOManager, tmp_path: Path, data_root: Path, bad_key: str
) -> None:
    partitions = dg.StaticPartitionsDefinition([bad_key])
    context = dg.build_output_context(asset_key="table", partition_key=bad_key,
                                      asset_partitions_def=partitions)
    with pytest.raises(ValueError, match="not a safe file name"):
        parquet.handle_output(context, _frame("x"))
    assert _files(tmp_path) == []


def test_unsafe_asset_key_component_is_rejected(parquet: PolarsParquetIOManager) -> None:
    context = dg.build_output_context(asset_key=dg.AssetKey(["reports", ".."]))
    with pytest.raises(ValueError, match="not a safe file name"):
        parquet.handle_output(context, _frame("x"))


def test_failed_write_keeps_the_previous_file(
    parquet: PolarsParquetIOManager, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = dg.build_output_context(asset_key="per_scenario", partition_key="bear",
                                      asset_partitions_def=scenario_partitions)
    good = _frame("good")
    parquet.handle_output(context, good)
    path = data_root / "per_scenario" / "bear.parquet"
    before = path.read_bytes()

    def half_written(self: pl.DataFrame, file: Path, **kwargs: object) -> None:
        Path(file).write_bytes(b"PAR1 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_written)
    with pytest.raises(OSError, match="disk full"):
        parquet.handle_output(context, _frame("bad", rows=10))

    assert path.read_bytes() == before
    assert _leftover_temp_files(data_root) == []
    assert_frame_equal(pl.read_parquet(path), good)


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.txt"
    atomic_write(target, lambda tmp: tmp.write_text("first"))
    assert target.read_text() == "first"

    class Interrupted(BaseException):
        """Not an Exception: a KeyboardInterrupt-like abort must clean up too."""

    def abort(tmp: Path) -> None:
        tmp.write_text("partial")
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write(target, abort)
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_missing_partitions_are_named(
    parquet: PolarsParquetIOManager, data_root: Path
) -> None:
    parquet.handle_output(
        dg.build_output_context(asset_key="per_scenario", partition_key="base",
                                asset_partitions_def=scenario_partitions),
        _frame("base"),
    )
    context = dg.build_input_context(
        asset_key="per_scenario", asset_partition_key_range=dg.PartitionKeyRange("base", "bear"),
        asset_partitions_def=scenario_partitions,
    )
    with pytest.raises(FileNotFoundError,
                       match=r"per_scenario: 2 partition\(s\) not materialized.*'bear'.*'bull'"):
        parquet.load_input(context)


def test_missing_unpartitioned_asset_is_named(parquet: PolarsParquetIOManager) -> None:
    context = dg.build_input_context(asset_key="calibration",
                                     upstream_output=dg.build_output_context(
                                         asset_key="calibration"))
    with pytest.raises(FileNotFoundError, match="calibration has not been materialized"):
        parquet.load_input(context)


def test_non_dataframe_output_is_rejected(
    parquet: PolarsParquetIOManager, data_root: Path
) -> None:
    with pytest.raises(TypeError, match="expected a polars DataFrame"):
        parquet.handle_output(dg.build_output_context(asset_key="table"), {"a": [1]})
    assert _files(data_root) == []


# --- ScenarioPaths npz -------------------------------------------------------------------


def _assert_same_paths(loaded: ScenarioPaths, original: ScenarioPaths) -> None:
    for name in ARRAYS:
        assert _bitwise_equal(getattr(loaded, name), getattr(original, name)), name
    assert loaded.regime == original.regime
    assert loaded.warmup_months == original.warmup_months
    assert loaded.measure == original.measure
    assert loaded.bond_maturity == original.bond_maturity


def _bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_scenario_paths_round_trip_is_bitwise(
    npz: ScenarioPathsIOManager, data_root: Path, bear_paths: ScenarioPaths
) -> None:
    npz.handle_output(
        dg.build_output_context(asset_key="scenario_paths", partition_key="bear",
                                asset_partitions_def=scenario_partitions),
        bear_paths,
    )

    assert _files(data_root) == ["scenario_paths/bear.npz"]
    loaded = npz.load_input(dg.build_input_context(
        asset_key="scenario_paths", partition_key="bear", asset_partitions_def=scenario_partitions,
    ))
    assert list(loaded) == ["bear"]
    _assert_same_paths(loaded["bear"], bear_paths)
    _assert_same_paths(load_scenario_paths(data_root / "scenario_paths" / "bear.npz"), bear_paths)


def test_scenario_paths_many_partitions(
    npz: ScenarioPathsIOManager, data_root: Path, bear_paths: ScenarioPaths
) -> None:
    bull = simulate_scenario(REGIMES["bull"], 10, 4, warmup_months=0, horizon_years=1)
    key_range = dg.PartitionKeyRange("bull", "bear")
    npz.handle_output(
        dg.build_output_context(asset_key="scenario_paths", asset_partition_key_range=key_range,
                                asset_partitions_def=scenario_partitions),
        {"bull": bull, "bear": bear_paths},
    )

    loaded = npz.load_input(dg.build_input_context(
        asset_key="scenario_paths", asset_partition_key_range=key_range,
        asset_partitions_def=scenario_partitions,
    ))
    assert sorted(loaded) == ["bear", "bull"]
    _assert_same_paths(loaded["bull"], bull)
    _assert_same_paths(loaded["bear"], bear_paths)


def test_scenario_paths_failed_write_keeps_the_previous_file(
    npz: ScenarioPathsIOManager, data_root: Path, bear_paths: ScenarioPaths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = dg.build_output_context(asset_key="scenario_paths", partition_key="bear",
                                      asset_partitions_def=scenario_partitions)
    npz.handle_output(context, bear_paths)
    path = data_root / "scenario_paths" / "bear.npz"
    before = path.read_bytes()

    def broken_savez(file: object, **arrays: object) -> None:
        file.write(b"PK\x03\x04 truncated")  # type: ignore[attr-defined]
        raise MemoryError("out of memory while saving")

    monkeypatch.setattr(io_managers.np, "savez", broken_savez)
    with pytest.raises(MemoryError):
        npz.handle_output(context, simulate_scenario(REGIMES["bear"], 5, 99, warmup_months=0,
                                                     horizon_years=1))

    assert path.read_bytes() == before
    assert _leftover_temp_files(data_root) == []


def test_missing_scenario_paths_are_named(npz: ScenarioPathsIOManager) -> None:
    context = dg.build_input_context(asset_key="scenario_paths", partition_key="low_vol",
                                     asset_partitions_def=scenario_partitions)
    with pytest.raises(FileNotFoundError, match=r"scenario_paths: 1 partition.*'low_vol'"):
        npz.load_input(context)
