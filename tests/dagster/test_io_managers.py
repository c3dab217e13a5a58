"""IO managers: file layout, round trips, path validation, atomic writes, missing inputs,
on both storage backends (a local folder, and S3 on a moto server on 127.0.0.1).

The managers are driven with contexts from ``dg.build_output_context`` /
``dg.build_input_context``, the way Dagster calls them in a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import struct
import threading
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster_aws.s3 import S3Resource
from polars.testing import assert_frame_equal

from dynalloc_dagster.partitions import (
    SCENARIOS,
    batch_partitions,
    evaluation_partitions,
    scenario_partitions,
)
from dynalloc_dagster.storage import (
    CorruptObjectError,
    LocalStorage,
    ObjectStorage,
    S3Storage,
    io_managers,
)
from dynalloc_dagster.storage.io_managers import (
    PolarsParquetIOManager,
    ScenarioPathsIOManager,
    _encode_paths,
    load_scenario_paths,
    safe_component,
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


@dataclass
class Backend:
    """One storage backend under test and how to look at what it stored."""

    name: str
    storage: ObjectStorage
    root: Path  # the local folder (used by the local backend only)

    def keys(self) -> list[str]:
        """Every stored object's key (checksum records excluded)."""
        if isinstance(self.storage, S3Storage):
            return sorted(self.storage.list_keys())
        if not self.root.exists():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                      if p.is_file() and ".checksums" not in p.relative_to(self.root).parts)

    def raw(self, key: str) -> bytes:
        """The stored bytes of ``key``, unverified."""
        if isinstance(self.storage, S3Storage):
            client = self.storage.client()
            return client.get_object(Bucket=self.storage.bucket,
                                     Key=self.storage.object_key(key))["Body"].read()
        return (self.root / key).read_bytes()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, data_root: Path) -> Backend:
    if request.param == "local":
        return Backend("local", LocalStorage(root=str(data_root)), data_root)
    moto = request.getfixturevalue("moto_s3")
    settings = {k: v for k, v in moto.items() if k not in ("bucket", "kms_key_id")}
    storage = S3Storage(bucket=moto["bucket"], prefix=f"t-{uuid.uuid4().hex[:8]}/data",
                        kms_key_id=moto["kms_key_id"], s3=S3Resource(**settings))
    return Backend("s3", storage, data_root)


def _leftover_temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*.tmp")]


@pytest.fixture
def parquet(backend: Backend) -> PolarsParquetIOManager:
    if backend.name == "local":  # the plain ``root=`` form the definitions use locally
        return PolarsParquetIOManager(root=str(backend.root))
    return PolarsParquetIOManager(storage=backend.storage)


@pytest.fixture
def npz(backend: Backend) -> ScenarioPathsIOManager:
    if backend.name == "local":
        return ScenarioPathsIOManager(root=str(backend.root))
    return ScenarioPathsIOManager(storage=backend.storage)


@pytest.fixture(scope="module")
def bear_paths() -> ScenarioPaths:
    return simulate_scenario(REGIMES["bear"], 20, 3, warmup_months=1, horizon_years=1)


# --- Parquet -----------------------------------------------------------------------------


def test_unpartitioned_round_trip(parquet: PolarsParquetIOManager, backend: Backend) -> None:
    frame = _frame("all")
    out = dg.build_output_context(asset_key="market_data")
    parquet.handle_output(out, frame)

    assert backend.keys() == ["market_data.parquet"]
    loaded = parquet.load_input(dg.build_input_context(asset_key="market_data",
                                                      upstream_output=out))
    assert_frame_equal(loaded, frame)
    metadata = out.get_logged_metadata()
    stored = backend.raw("market_data.parquet")
    assert metadata["stored_sha256"].value == hashlib.sha256(stored).hexdigest()
    assert metadata["stored_bytes"].value == len(stored)
    assert metadata["stored_uri"].value == backend.storage.uri("market_data.parquet")


def test_none_output_writes_nothing(parquet: PolarsParquetIOManager, backend: Backend) -> None:
    parquet.handle_output(dg.build_output_context(asset_key="nothing"), None)
    assert backend.keys() == []


def test_single_partition_round_trip(parquet: PolarsParquetIOManager, backend: Backend) -> None:
    frame = _frame("bear")
    parquet.handle_output(
        dg.build_output_context(asset_key="per_scenario", partition_key="bear",
                                asset_partitions_def=scenario_partitions),
        frame,
    )

    assert backend.keys() == ["per_scenario/bear.parquet"]
    loaded = parquet.load_input(dg.build_input_context(
        asset_key="per_scenario", partition_key="bear", asset_partitions_def=scenario_partitions,
    ))
    assert_frame_equal(loaded, frame)


def test_many_partitions_from_a_mapping(parquet: PolarsParquetIOManager, backend: Backend) -> None:
    everything = dg.PartitionKeyRange(SCENARIOS[0], SCENARIOS[-1])
    frames = {name: _frame(name, rows=i + 1) for i, name in enumerate(SCENARIOS)}
    out = dg.build_output_context(asset_key="per_scenario", asset_partition_key_range=everything,
                                  asset_partitions_def=scenario_partitions)
    parquet.handle_output(out, frames)

    assert backend.keys() == sorted(f"per_scenario/{name}.parquet" for name in SCENARIOS)
    for name, frame in frames.items():
        assert_frame_equal(pl.read_parquet(io.BytesIO(backend.raw(
            f"per_scenario/{name}.parquet"))), frame)
    loaded = parquet.load_input(dg.build_input_context(
        asset_key="per_scenario", asset_partition_key_range=everything,
        asset_partitions_def=scenario_partitions,
    ))
    assert_frame_equal(loaded.sort("key", "count"),
                       pl.concat(frames.values()).sort("key", "count"))
    # the catalog pins the generation: a digest of every object's sha256
    lines = "".join(
        f"per_scenario/{name}.parquet "
        f"{hashlib.sha256(backend.raw(f'per_scenario/{name}.parquet')).hexdigest()}\n"
        for name in sorted(SCENARIOS))
    metadata = out.get_logged_metadata()
    assert metadata["stored_objects"].value == len(SCENARIOS)
    assert metadata["stored_sha256_digest"].value == hashlib.sha256(lines.encode()).hexdigest()


def test_many_partitions_need_a_mapping(parquet: PolarsParquetIOManager, backend: Backend) -> None:
    context = dg.build_output_context(
        asset_key="per_scenario", asset_partition_key_range=dg.PartitionKeyRange("base", "bear"),
        asset_partitions_def=scenario_partitions,
    )
    with pytest.raises(TypeError, match="covers 3 partitions"):
        parquet.handle_output(context, _frame("one"))
    assert backend.keys() == []


def test_mapping_with_keys_outside_the_run_is_rejected(
    parquet: PolarsParquetIOManager, backend: Backend
) -> None:
    context = dg.build_output_context(
        asset_key="per_scenario", partition_key="bear", asset_partitions_def=scenario_partitions,
    )
    with pytest.raises(ValueError, match=r"outside this run.*bull"):
        parquet.handle_output(context, {"bear": _frame("bear"), "bull": _frame("bull")})
    assert backend.keys() == []


def test_multi_partition_key_is_a_nested_path(
    parquet: PolarsParquetIOManager, backend: Backend, instance: dg.DagsterInstance
) -> None:
    instance.add_dynamic_partitions(batch_partitions.name, ["r000-0a1b2c3d", "r001-ffffffff"])
    key = dg.MultiPartitionKey({"batch": "r000-0a1b2c3d", "scenario": "high_vol"})
    frame = _frame("high_vol")
    parquet.handle_output(
        dg.build_output_context(asset_key="strategy_evaluations", partition_key=str(key),
                                asset_partitions_def=evaluation_partitions, instance=instance),
        frame,
    )

    assert backend.keys() == [
        "strategy_evaluations/batch=r000-0a1b2c3d/scenario=high_vol.parquet"
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
    parquet: PolarsParquetIOManager, tmp_path: Path, backend: Backend, bad_key: str
) -> None:
    partitions = dg.StaticPartitionsDefinition([bad_key])
    context = dg.build_output_context(asset_key="table", partition_key=bad_key,
                                      asset_partitions_def=partitions)
    with pytest.raises(ValueError, match="not a safe file name"):
        parquet.handle_output(context, _frame("x"))
    assert backend.keys() == []
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_unsafe_asset_key_component_is_rejected(parquet: PolarsParquetIOManager) -> None:
    context = dg.build_output_context(asset_key=dg.AssetKey(["reports", ".."]))
    with pytest.raises(ValueError, match="not a safe file name"):
        parquet.handle_output(context, _frame("x"))


def test_failed_write_keeps_the_previous_file(
    parquet: PolarsParquetIOManager, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = dg.build_output_context(asset_key="per_scenario", partition_key="bear",
                                      asset_partitions_def=scenario_partitions)
    good = _frame("good")
    parquet.handle_output(context, good)
    before = backend.raw("per_scenario/bear.parquet")

    def half_written(self: pl.DataFrame, file: io.BytesIO, **kwargs: object) -> None:
        file.write(b"PAR1 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_written)
    with pytest.raises(OSError, match="disk full"):
        parquet.handle_output(context, _frame("bad", rows=10))
    monkeypatch.undo()

    assert backend.raw("per_scenario/bear.parquet") == before
    assert _leftover_temp_files(backend.root) == []
    assert_frame_equal(parquet.load_input(dg.build_input_context(
        asset_key="per_scenario", partition_key="bear", asset_partitions_def=scenario_partitions,
    )), good)


def test_missing_partitions_are_named(parquet: PolarsParquetIOManager) -> None:
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


def test_load_stored_is_none_until_materialized_then_verified(
    parquet: PolarsParquetIOManager
) -> None:
    assert parquet.load_stored("optimisation_history") is None
    frame = _frame("history")
    parquet.handle_output(dg.build_output_context(asset_key="optimisation_history"), frame)
    assert_frame_equal(parquet.load_stored("optimisation_history"), frame)


def test_non_dataframe_output_is_rejected(
    parquet: PolarsParquetIOManager, backend: Backend
) -> None:
    with pytest.raises(TypeError, match="expected a polars DataFrame"):
        parquet.handle_output(dg.build_output_context(asset_key="table"), {"a": [1]})
    assert backend.keys() == []


# --- ScenarioPaths npz -------------------------------------------------------------------


def _assert_same_paths(loaded: ScenarioPaths, original: ScenarioPaths) -> None:
    for name in ARRAYS:
        assert _bitwise_equal(getattr(loaded, name), getattr(original, name)), name
    assert loaded.regime == original.regime
    assert loaded.warmup_months == original.warmup_months
    assert loaded.measure == original.measure
    assert loaded.bond_maturity == original.bond_maturity
    assert loaded.leg == original.leg


def _bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def test_scenario_paths_round_trip_is_bitwise(
    npz: ScenarioPathsIOManager, backend: Backend, bear_paths: ScenarioPaths, tmp_path: Path
) -> None:
    npz.handle_output(
        dg.build_output_context(asset_key="scenario_paths", partition_key="bear",
                                asset_partitions_def=scenario_partitions),
        bear_paths,
    )

    assert backend.keys() == ["scenario_paths/bear.npz"]
    loaded = npz.load_input(dg.build_input_context(
        asset_key="scenario_paths", partition_key="bear", asset_partitions_def=scenario_partitions,
    ))
    assert list(loaded) == ["bear"]
    _assert_same_paths(loaded["bear"], bear_paths)
    copy = tmp_path / "bear-copy.npz"
    copy.write_bytes(backend.raw("scenario_paths/bear.npz"))
    _assert_same_paths(load_scenario_paths(copy), bear_paths)


def test_the_paths_keep_their_leg(tmp_path: Path, bear_paths: ScenarioPaths) -> None:
    cash = dataclasses.replace(bear_paths, leg="cash")
    path = tmp_path / "cash.npz"
    path.write_bytes(_encode_paths(cash))
    loaded = load_scenario_paths(path)
    assert loaded.leg == "cash"
    assert loaded.defensive is loaded.cash


def test_scenario_paths_many_partitions(
    npz: ScenarioPathsIOManager, bear_paths: ScenarioPaths
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
    npz: ScenarioPathsIOManager, backend: Backend, bear_paths: ScenarioPaths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    context = dg.build_output_context(asset_key="scenario_paths", partition_key="bear",
                                      asset_partitions_def=scenario_partitions)
    npz.handle_output(context, bear_paths)
    before = backend.raw("scenario_paths/bear.npz")

    def broken_npz(arrays: object) -> bytes:
        raise MemoryError("out of memory while saving")

    monkeypatch.setattr(io_managers, "npz_bytes", broken_npz)
    with pytest.raises(MemoryError):
        npz.handle_output(context, simulate_scenario(REGIMES["bear"], 5, 99, warmup_months=0,
                                                     horizon_years=1))

    assert backend.raw("scenario_paths/bear.npz") == before
    assert _leftover_temp_files(backend.root) == []


def test_scenario_paths_are_read_in_place_and_np_load_reads_the_file(
    npz: ScenarioPathsIOManager, backend: Backend, bear_paths: ScenarioPaths
) -> None:
    """Each array the IO manager loads is an aligned, read-only view into the bytes read
    (no copy of the 420 MB a reports run reads); the file stays a plain npz."""
    def write() -> None:
        npz.handle_output(dg.build_output_context(
            asset_key="scenario_paths", partition_key="bear",
            asset_partitions_def=scenario_partitions), bear_paths)

    write()
    loaded = npz.load_input(dg.build_input_context(
        asset_key="scenario_paths", partition_key="bear", asset_partitions_def=scenario_partitions,
    ))["bear"]
    stored = backend.raw("scenario_paths/bear.npz")
    for name in ARRAYS:
        array = getattr(loaded, name)
        assert isinstance(_memory_owner(array), bytes) and array.flags.aligned, name
        assert not array.flags.writeable, name
    with np.load(io.BytesIO(stored)) as plain:
        assert sorted(plain.files) == sorted(["meta", *ARRAYS])
        for name in ARRAYS:
            assert _bitwise_equal(plain[name], getattr(bear_paths, name)), name
    write()
    assert backend.raw("scenario_paths/bear.npz") == stored  # no date in the file


def test_scenario_paths_written_by_np_savez_still_load(
    bear_paths: ScenarioPaths, tmp_path: Path
) -> None:
    """A file np.savez wrote (every file before the aligned layout) loads to the same
    arrays, copied into aligned memory."""
    path = tmp_path / "old.npz"
    meta = np.array(str(_encode_paths_meta(bear_paths)))
    np.savez(path, meta=meta, **{name: getattr(bear_paths, name) for name in ARRAYS})
    loaded = load_scenario_paths(path)
    _assert_same_paths(loaded, bear_paths)
    assert all(getattr(loaded, name).flags.aligned for name in ARRAYS)


def _memory_owner(array: np.ndarray) -> object:
    owner = array
    while isinstance(owner, np.ndarray) and owner.base is not None:
        owner = owner.base
    return owner


def _encode_paths_meta(paths: ScenarioPaths) -> str:
    with np.load(io.BytesIO(_encode_paths(paths))) as written:
        return str(written["meta"])


class _MeetingStorage(LocalStorage):
    """A folder whose reads wait (10 s at most) until two of them run at once."""

    def get(self, key: str) -> bytes:
        _READS_MEET.wait()
        return super().get(key)


_READS_MEET = threading.Barrier(2, timeout=10)


def test_the_partitions_of_an_input_are_read_side_by_side(
    tmp_path: Path, bear_paths: ScenarioPaths
) -> None:
    """Two scenario files of one input are read at once (each read waits for the other;
    read one after the other, the first would wait 10 s and fail), each to its values."""
    bull = simulate_scenario(REGIMES["bull"], 10, 4, warmup_months=0, horizon_years=1)
    key_range = dg.PartitionKeyRange("bull", "bear")
    ScenarioPathsIOManager(root=str(tmp_path)).handle_output(
        dg.build_output_context(asset_key="scenario_paths", asset_partition_key_range=key_range,
                                asset_partitions_def=scenario_partitions),
        {"bull": bull, "bear": bear_paths})
    _READS_MEET.reset()

    loaded = ScenarioPathsIOManager(storage=_MeetingStorage(root=str(tmp_path))).load_input(
        dg.build_input_context(asset_key="scenario_paths", asset_partition_key_range=key_range,
                               asset_partitions_def=scenario_partitions))
    assert sorted(loaded) == ["bear", "bull"]
    _assert_same_paths(loaded["bull"], bull)
    _assert_same_paths(loaded["bear"], bear_paths)


def test_missing_scenario_paths_are_named(npz: ScenarioPathsIOManager) -> None:
    context = dg.build_input_context(asset_key="scenario_paths", partition_key="low_vol",
                                     asset_partitions_def=scenario_partitions)
    with pytest.raises(FileNotFoundError, match=r"scenario_paths: 1 partition.*'low_vol'"):
        npz.load_input(context)


# --- one read per object per run ------------------------------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys LocalStorage.get reads, in order."""
    keys: list[str] = []
    real_get = LocalStorage.get

    def counting_get(self: LocalStorage, key: str) -> bytes:
        keys.append(key)
        return real_get(self, key)

    monkeypatch.setattr(LocalStorage, "get", counting_get)
    return keys


def _paths_asset(paths: ScenarioPaths) -> dg.AssetsDefinition:
    @dg.asset(name="paths", io_manager_key="paths_io_manager")
    def stored_paths() -> ScenarioPaths:
        return paths

    return stored_paths


def test_a_run_reads_each_stored_object_once_and_again_after_writing_it(
        tmp_path: Path, bear_paths: ScenarioPaths, reads: list[str]) -> None:
    paths = _paths_asset(bear_paths)

    @dg.asset
    def table() -> pl.DataFrame:
        return _frame("t")

    @dg.asset(io_manager_key="paths_io_manager")
    def first(paths: dict[str, ScenarioPaths], table: pl.DataFrame) -> ScenarioPaths:
        with pytest.raises(ValueError, match="read-only"):
            paths[""].equity[0, 0] = 0.0  # the decoded copy is shared by the run's steps
        return paths[""]

    @dg.asset
    def second(paths: dict[str, ScenarioPaths], table: pl.DataFrame,
               first: dict[str, ScenarioPaths]) -> pl.DataFrame:
        return table.with_columns(pl.lit(float(first[""].equity[0, -1])).alias("last"))

    root = str(tmp_path)
    resources = {"io_manager": PolarsParquetIOManager(root=root),
                 "paths_io_manager": ScenarioPathsIOManager(root=root)}
    assert dg.materialize([paths, table], resources=resources).success
    assert reads == []
    assert dg.materialize([paths.to_source_asset(), table.to_source_asset(), first, second],
                          resources=resources).success
    assert sorted(reads) == ["first.npz", "paths.npz", "table.parquet"]
    reads.clear()
    assert dg.materialize([paths.to_source_asset(), table.to_source_asset(), first, second],
                          resources=resources).success  # a new run reads again
    assert sorted(reads) == ["first.npz", "paths.npz", "table.parquet"]


def test_a_pipeline_reads_an_unchanged_object_once_for_all_its_runs(
        tmp_path: Path, bear_paths: ScenarioPaths, reads: list[str]) -> None:
    """Inside objects_kept_across_runs (run_pipeline) a verified object is handed to the
    later runs while its file is unchanged; paths written inside are kept as written (not
    read); a byte flipped in place is read again, and fails as it would outside."""
    paths = _paths_asset(bear_paths)

    @dg.asset
    def last(paths: dict[str, ScenarioPaths]) -> pl.DataFrame:
        return pl.DataFrame({"last": [float(paths[""].equity[0, -1])]})

    root = str(tmp_path)
    resources = {"io_manager": PolarsParquetIOManager(root=root),
                 "paths_io_manager": ScenarioPathsIOManager(root=root)}
    reader = [paths.to_source_asset(), last]
    assert dg.materialize([paths], resources=resources).success
    with io_managers.objects_kept_across_runs():
        for _ in range(3):
            assert dg.materialize(reader, resources=resources).success
        assert reads == ["paths.npz"]
        assert dg.materialize([paths], resources=resources).success  # written again: kept
        assert dg.materialize(reader, resources=resources).success
        assert reads == ["paths.npz"]
        stored = tmp_path / "paths.npz"
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF
        stored.write_bytes(bytes(data))
        with pytest.raises(CorruptObjectError, match=r"paths\.npz is corrupted"):
            dg.materialize(reader, resources=resources)
    assert io_managers._kept is None


def test_paths_written_in_a_pipeline_are_handed_on_as_written(
        tmp_path: Path, bear_paths: ScenarioPaths, reads: list[str]) -> None:
    """Inside objects_kept_across_runs the paths a run writes reach the later runs without
    a read: the same bits a read decodes, read-only; a file replaced since is read."""
    written = dataclasses.replace(bear_paths, equity=bear_paths.equity.copy())
    paths = _paths_asset(written)
    seen: list[ScenarioPaths] = []

    @dg.asset
    def last(paths: dict[str, ScenarioPaths]) -> pl.DataFrame:
        seen.append(paths[""])
        return pl.DataFrame({"last": [float(paths[""].equity[0, -1])]})

    root = str(tmp_path)
    resources = {"io_manager": PolarsParquetIOManager(root=root),
                 "paths_io_manager": ScenarioPathsIOManager(root=root)}
    reader = [paths.to_source_asset(), last]
    with io_managers.objects_kept_across_runs():
        assert dg.materialize([paths], resources=resources).success
        assert dg.materialize(reader, resources=resources).success
        assert reads == []
        assert seen[-1] is written and not written.equity.flags.writeable
        _assert_same_paths(seen[-1], load_scenario_paths(tmp_path / "paths.npz"))
        other = simulate_scenario(REGIMES["bull"], 10, 4, warmup_months=0, horizon_years=1)
        (tmp_path / "paths.npz").write_bytes(_encode_paths(other))  # replaced outside
        with pytest.raises(CorruptObjectError, match=r"paths\.npz is corrupted"):
            dg.materialize(reader, resources=resources)
    assert reads == ["paths.npz"]


def test_an_npz_member_shorter_than_its_header_says_is_refused_not_read_past() -> None:
    """A member whose npy header promises more data than the member holds (a file cut
    or patched under the checksum) is refused naming the member, not read into the next
    member's bytes."""
    from dynalloc_dagster.storage.npz import npz_arrays, npz_bytes

    data = npz_bytes({"a": np.arange(8.0), "b": np.arange(8.0) + 100.0})
    assert np.array_equal(npz_arrays(data)["a"], np.arange(8.0))
    lying = data.replace(b"'shape': (8,)", b"'shape': (9,)", 1)
    assert lying != data and len(lying) == len(data)
    with pytest.raises(ValueError, match=r"npz member a\.npy holds 192 bytes, not the 128"
                       r" of its header and the 72 of a float64 array of shape \(9,\)"):
        npz_arrays(lying)


def test_each_npz_member_is_numpys_npy_of_its_array_with_its_data_aligned() -> None:
    """Every member of npz_bytes' file is the npy file np.lib.format.write_array makes of
    its array (C and Fortran order, a strided view, integers, a 0-d string), np.load reads
    the file, each array's data starts at a multiple of 64 bytes, and identical arrays
    give identical bytes."""
    from dynalloc_dagster.storage.npz import ALIGNMENT, npz_bytes

    grid = np.arange(35.0).reshape(5, 7) / 3.0
    arrays = {"meta": np.array('{"regime": "base"}'), "c": grid,
              "f": np.asfortranarray(grid), "strided": grid[:, ::2],
              "counts": np.arange(11, dtype=np.int64), "empty": np.empty((0, 3))}

    data = npz_bytes(arrays)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, array, allow_pickle=False)
            assert archive.read(f"{name}.npy") == npy.getvalue(), name
            header = len(npy.getvalue()) - array.nbytes
            info = archive.getinfo(f"{name}.npy")
            local = struct.unpack_from("<2H", data, info.header_offset + 26)
            start = info.header_offset + 30 + sum(local) + header
            assert start % ALIGNMENT == 0, name
    with np.load(io.BytesIO(data)) as loaded:
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded[name], array)
    assert npz_bytes({name: array.copy(order="K") for name, array in arrays.items()}) == data


def test_a_manager_makes_its_local_storage_once_at_its_own_root(tmp_path: Path) -> None:
    """The local folder is made once per manager (not per object read or written), and
    each manager's is its own root's, whichever asked first."""
    first = PolarsParquetIOManager(root=str(tmp_path / "a"))
    second = PolarsParquetIOManager(root=str(tmp_path / "b"))
    assert first.object_storage() is first.object_storage()
    assert second.object_storage() is second.object_storage()
    assert first.object_storage().root == str(tmp_path / "a")
    assert second.object_storage().root == str(tmp_path / "b")
    configured = LocalStorage(root=str(tmp_path / "c"))
    assert PolarsParquetIOManager(storage=configured).object_storage() is configured
