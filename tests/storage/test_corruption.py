"""Corruption found on load, through Dagster runs: a flipped byte anywhere in a stored
Parquet file, a truncated file and a file the reader cannot parse each fail the
downstream step naming the asset, the partition and the path; the catalog holds the
sha256 of what was written."""

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dynalloc_dagster.partitions import scenario_partitions
from dynalloc_dagster.storage import LocalStorage
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager


@dg.asset(partitions_def=scenario_partitions)
def per_scenario(context: dg.AssetExecutionContext) -> pl.DataFrame:
    n = 400
    return pl.DataFrame({"scenario": [context.partition_key] * n,
                         "var95": [0.01 * (i % 17) for i in range(n)]})


@dg.asset(partitions_def=scenario_partitions)
def downstream(per_scenario: pl.DataFrame) -> pl.DataFrame:
    return per_scenario.select(pl.col("var95").max())


def _run(root: Path, instance: dg.DagsterInstance, assets: list, partition: str = "bear"):
    return dg.materialize(assets, partition_key=partition, instance=instance,
                          resources={"io_manager": PolarsParquetIOManager(root=str(root))},
                          raise_on_error=False, selection=[assets[-1]])


def _failure(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(e.event_specific_data.error.cause or e.event_specific_data.error)
                     for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, dg.DagsterInstance, Path]:
    root = tmp_path / "data"
    instance = dg.DagsterInstance.ephemeral()
    assert _run(root, instance, [per_scenario]).success
    return root, instance, root / "per_scenario" / "bear.parquet"


def test_the_materialization_records_the_sha256_of_the_stored_file(stored) -> None:
    _root, instance, path = stored
    event = instance.get_latest_materialization_event(dg.AssetKey("per_scenario"))
    metadata = event.asset_materialization.metadata
    assert metadata["stored_sha256"].value == hashlib.sha256(path.read_bytes()).hexdigest()
    assert metadata["stored_uri"].value == path.resolve().as_uri()
    assert event.asset_materialization.partition == "bear"


@pytest.mark.parametrize("position", [0.02, 0.3, 0.5, 0.7, 0.97])
def test_a_flipped_byte_fails_the_load_naming_asset_partition_and_path(
    stored, position: float
) -> None:
    root, instance, path = stored
    data = bytearray(path.read_bytes())
    data[int(position * len(data))] ^= 0x04
    path.write_bytes(bytes(data))
    result = _run(root, instance, [per_scenario, downstream])
    assert not result.success
    message = _failure(result)
    assert f"per_scenario partition 'bear': {path} is corrupted" in message


def test_a_truncated_file_fails_naming_it(stored) -> None:
    root, instance, path = stored
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    result = _run(root, instance, [per_scenario, downstream])
    assert not result.success
    assert f"per_scenario partition 'bear': {path} is corrupted" in _failure(result)


def test_an_unreadable_file_fails_naming_it_with_the_readers_reason(stored) -> None:
    root, instance, path = stored
    LocalStorage(root=str(root)).put("per_scenario/bear.parquet", b"PAR1 not parquet PAR1")
    result = _run(root, instance, [per_scenario, downstream])
    assert not result.success
    message = _failure(result)
    assert (f"per_scenario partition 'bear': {path.resolve().as_uri()} is unreadable"
            in message)
    assert "ComputeError" in message or "Error" in message.split("unreadable", 1)[1]
