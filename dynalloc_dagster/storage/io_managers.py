"""IO managers: Parquet tables and npz scenario paths, one object per partition key.

Layout ``<root>/<asset key>/<partition>.<ext>`` (a multi-dimensional key becomes nested
``<dimension>=<value>`` folders); the objects live in an :class:`ObjectStorage` (a local
folder by default, S3 in the aws environment). Partition keys become key components only
after validation (letters, digits, ``_ - .``; no ``..``, no separators). An output is
serialized whole before anything is written, and all its objects are written together
(docs/storage.md). Every object's sha256 is recorded by the storage and in the
materialization's metadata, and checked when the object is loaded: a flipped byte, a
truncated or unreadable file fails naming the asset, the partition and the path. An
unpartitioned object loaded as a run's input is also compared with the sha256 of the
asset's latest materialization in the Dagster instance, so a file put back together with
its checksum (yesterday's pair) is refused too.

The objects of a partitioned input are read on up to :data:`READ_THREADS` threads.
Within one run each object is read, verified and decoded once: the run's later inputs of
the same object get the decoded value (arrays made read-only), so a reports run whose
steps all read the evaluations and the scenario paths reads them once; an object the
run writes is read again. The cache ends with the run, except inside
:func:`objects_kept_across_runs` (a whole pipeline executed in one process,
``run_pipeline``): there a verified object is handed to the later runs too, as long as
the storage's stamp of it (:meth:`ObjectStorage.stamp`: for a local file its recorded
checksum, size, modification time and inode) is unchanged, so the scenario paths are
read once for every round and the reports instead of once a run. The scenario paths a
run writes there are not read at all: the value written is kept with the stamp of the
file just written (its arrays made read-only), the same bits a read would decode. A
storage without stamps (S3) is read once a run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, PrivateAttr

from dynalloc_dagster.storage import (
    CorruptObjectError,
    LocalStorage,
    ObjectStorage,
    StorageError,
    safe_component,
    sha256_hex,
)
from dynalloc_dagster.storage.lease import end_of_run, hold_data_root
from dynalloc_dagster.storage.npz import npz_arrays, npz_bytes
from engine.market.paths import ScenarioPaths
from engine.market.regimes import regime_from_mapping
from engine.portfolio.paths import PortfolioPaths
from engine.portfolio.spec import PortfolioSpec

__all__ = [
    "PolarsParquetIOManager",
    "ScenarioPathsIOManager",
    "load_scenario_paths",
    "objects_kept_across_runs",
    "safe_component",
]

READ_THREADS = 4
"""Objects of one input read at once at most: reading and checking an object's sha256
(and decoding a Parquet file) release the GIL, so a partitioned input's files are read
side by side."""

_kept: dict[str, tuple[str, Any]] | None = None
"""{object URI: (storage stamp, decoded value)} inside :func:`objects_kept_across_runs`."""


@contextmanager
def objects_kept_across_runs() -> Iterator[None]:
    """Within the block, the runs executed in this process share the objects they read
    (module docstring); the values are dropped when it ends."""
    global _kept
    outer, _kept = _kept, {} if _kept is None else _kept
    try:
        yield
    finally:
        _kept = outer


class _PartitionedIOManager(dg.ConfigurableIOManager):
    """Shared layout, checksums and error messages of the two managers."""

    root: str = Field(default="data", description="local folder of the objects; ignored"
                      " when ``storage`` is given")
    storage: ObjectStorage | None = Field(
        default=None, description="where objects are stored (default: LocalStorage(root))")

    extension: ClassVar[str] = ""
    keeps_what_it_writes: ClassVar[bool] = False
    """Inside :func:`objects_kept_across_runs`, keep each object written (module docstring)."""
    _loaded: dict[str, Any] | None = PrivateAttr(default=None)
    _local: LocalStorage | None = PrivateAttr(default=None)

    def object_storage(self) -> ObjectStorage:
        """The configured storage, or a local folder at ``root``: made once per manager (a
        resource's construction validates its config, a few ms; a run asks for it once
        per object read or written)."""
        if self.storage is not None:
            return self.storage
        if self._local is None:
            self._local = LocalStorage(root=self.root)
        return self._local

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Before the run writes anything: hold the data root's lease
        (dynalloc_dagster.storage.lease)."""
        hold_data_root(context, self.object_storage())
        self._loaded = {}

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._loaded = None
        end_of_run(context, self.object_storage())

    def object_key(self, asset_key: dg.AssetKey, partition_key: str | None = None,
                   partitions_def: dg.PartitionsDefinition | None = None) -> str:
        """The storage key of an asset's partition (``None``: unpartitioned)."""
        base = [safe_component(p) for p in asset_key.path]
        if partition_key is None:
            return "/".join(base) + self.extension
        if isinstance(partitions_def, dg.MultiPartitionsDefinition):
            by_dimension = partitions_def.get_partition_key_from_str(partition_key)
            parts = [
                f"{safe_component(dim)}={safe_component(value)}"
                for dim, value in sorted(by_dimension.keys_by_dimension.items())
            ]
        else:
            parts = [safe_component(partition_key)]
        return "/".join([*base, *parts]) + self.extension

    # --- writing -----------------------------------------------------------------------

    def encode(self, value: Any, key: str) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError

    def read_only(self, value: Any) -> Any:
        """``value`` as later runs may share it (what :meth:`decode` would give)."""
        raise NotImplementedError

    def _output_items(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        """{storage key: value} of an output."""
        if not context.has_asset_partitions:
            return {self.object_key(context.asset_key): obj}
        keys = list(context.asset_partition_keys)
        partitions_def = context.asset_partitions_def
        if isinstance(obj, Mapping) and not isinstance(obj, ScenarioPaths | PortfolioPaths):
            unknown = sorted(set(obj) - set(keys))
            if unknown:
                raise ValueError(f"output has partition keys outside this run: {unknown[:5]}")
            items = obj.items()
        elif len(keys) == 1:
            items = [(keys[0], obj)]
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()} covers {len(keys)} partitions; return"
                " a mapping {partition_key: value}"
            )
        return {self.object_key(context.asset_key, k, partitions_def): v for k, v in items}

    def _store(self, context: dg.OutputContext, obj: Any) -> None:
        """Encode every object of the output, then write them together and record their
        checksums in the output's metadata."""
        items = self._output_items(context, obj)
        blobs = {key: self.encode(value, key) for key, value in items.items()}
        storage = self.object_storage()
        if self._loaded is not None:
            for key in blobs:
                self._loaded.pop(key, None)
        if _kept is not None:
            for key in blobs:
                _kept.pop(storage.uri(key), None)
        sums = storage.put_many(blobs)
        if _kept is not None and self.keeps_what_it_writes:
            for key, value in items.items():
                stamp = storage.stamp(key)
                if stamp is not None:
                    _kept[storage.uri(key)] = (stamp, self.read_only(value))
        size = sum(len(b) for b in blobs.values())
        if len(sums) == 1:
            [(key, digest)] = sums.items()
            metadata: dict[str, Any] = {
                "stored_uri": dg.MetadataValue.path(storage.uri(key)),
                "stored_sha256": digest, "stored_bytes": size,
            }
        else:
            # Dagster 1.13 has no per-partition metadata for IO managers (docs/storage.md):
            # the catalog gets a digest of the {key: sha256} list, the storage each sha256
            metadata = {
                "stored_objects": len(sums), "stored_bytes": size,
                "stored_sha256_digest": sha256_hex(
                    "".join(f"{k} {d}\n" for k, d in sorted(sums.items())).encode()),
            }
        context.add_output_metadata(metadata)

    # --- reading -----------------------------------------------------------------------

    def _input_keys(self, context: dg.InputContext) -> dict[str, str]:
        """{partition key: storage key} of the input ("" for an unpartitioned one); raises
        FileNotFoundError naming what has not been materialized."""
        asset_key = context.asset_key
        storage = self.object_storage()
        if not context.has_asset_partitions:
            key = self.object_key(asset_key)
            if storage.missing([key]):
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} has not been materialized"
                    f" ({storage.uri(key)})"
                )
            return {"": key}
        partitions_def = context.asset_partitions_def
        keys = {
            partition: self.object_key(asset_key, partition, partitions_def)
            for partition in context.asset_partition_keys
        }
        absent = set(storage.missing(keys.values()))
        missing = sorted(partition for partition, key in keys.items() if key in absent)
        if missing:
            raise FileNotFoundError(
                f"{asset_key.to_user_string()}: {len(missing)} partition(s) not materialized,"
                f" e.g. {missing[:3]}"
            )
        return keys

    def _load(self, asset_key: dg.AssetKey, partition: str, key: str,
              instance: dg.DagsterInstance | None = None) -> Any:
        """Read, verify and decode one object, once per run (module docstring); errors
        name asset, partition and path. With ``instance``, an unpartitioned object must
        also match the sha256 of the asset's latest materialization there (when it was
        stored at this object's URI)."""
        if self._loaded is not None and key in self._loaded:
            return self._loaded[key]
        kept, stamp, uri = _kept, None, ""
        if kept is not None:
            storage = self.object_storage()
            stamp, uri = storage.stamp(key), storage.uri(key)
        if stamp is not None and uri in kept and kept[uri][0] == stamp:
            value = kept[uri][1]
        else:
            value = self._read(asset_key, partition, key, instance)
            if kept is not None and stamp is not None:
                kept[uri] = (stamp, value)
        if self._loaded is not None:
            self._loaded[key] = value
        return value

    def _read(self, asset_key: dg.AssetKey, partition: str, key: str,
              instance: dg.DagsterInstance | None) -> Any:
        storage = self.object_storage()
        where = asset_key.to_user_string() + (f" partition {partition!r}" if partition else "")
        try:
            data = storage.get(key)
        except StorageError as exc:
            raise type(exc)(f"{where}: {exc}") from exc
        recorded = (_materialized_sha256(instance, asset_key, storage.uri(key))
                    if instance is not None and not partition else None)
        if recorded is not None and sha256_hex(data) != recorded:
            raise CorruptObjectError(
                f"{where}: {storage.uri(key)} has sha256 {sha256_hex(data)}, not the"
                f" {recorded} recorded by Dagster at its latest materialization: the file and"
                " its checksum were replaced outside Dagster; re-materialize it")
        try:
            return self.decode(data)
        except Exception as exc:
            raise CorruptObjectError(
                f"{where}: {storage.uri(key)} is unreadable although its checksum matches"
                f" ({type(exc).__name__}: {exc})"
            ) from exc

    def _load_all(self, context: dg.InputContext) -> dict[str, Any]:
        try:
            instance: dg.DagsterInstance | None = context.instance
        except dg.DagsterInvariantViolationError:  # a context built without an instance
            instance = None
        keys = self._input_keys(context)
        if len(keys) <= 1:
            return {partition: self._load(context.asset_key, partition, key, instance)
                    for partition, key in keys.items()}
        with ThreadPoolExecutor(min(len(keys), READ_THREADS)) as pool:
            values = pool.map(lambda item: self._load(context.asset_key, *item, instance),
                              keys.items())
            return dict(zip(keys, values, strict=True))


def _materialized_sha256(instance: dg.DagsterInstance, asset_key: dg.AssetKey,
                         uri: str) -> str | None:
    """``stored_sha256`` of the asset's latest materialization in ``instance``, when it
    was stored at ``uri`` (another data root's bytes are not comparable); else None."""
    event = instance.get_latest_materialization_event(asset_key)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return None
    metadata = materialization.metadata
    stored_at, digest = metadata.get("stored_uri"), metadata.get("stored_sha256")
    if digest is None or stored_at is None or str(stored_at.value) != uri:
        return None
    return str(digest.value)


class PolarsParquetIOManager(_PartitionedIOManager):
    """Polars DataFrames as Parquet (zstd). Loading many partitions concatenates them."""

    extension: ClassVar[str] = ".parquet"

    def encode(self, value: Any, key: str) -> bytes:
        if not isinstance(value, pl.DataFrame):
            raise TypeError(f"expected a polars DataFrame for {key}, got {type(value)}")
        buffer = io.BytesIO()
        value.write_parquet(buffer, compression="zstd")
        return buffer.getvalue()

    def decode(self, data: bytes) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(data))

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        self._store(context, obj)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        frames = list(self._load_all(context).values())
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")

    def load_stored(self, asset_name: str) -> pl.DataFrame | None:
        """The stored table of an unpartitioned asset, or None if it was never materialized.

        For an asset that reads an earlier materialization outside the asset graph: the
        optimisation agent's next round reads the previous round's history this way
        (a declared dependency would close a cycle). Verified like any load."""
        asset_key = dg.AssetKey(asset_name)
        key = self.object_key(asset_key)
        if self.object_storage().missing([key]):
            return None
        return self._load(asset_key, "", key)


class ScenarioPathsIOManager(_PartitionedIOManager):
    """ScenarioPaths (the two-asset study) or PortfolioPaths (a multi-asset portfolio) as
    uncompressed npz (float64 arrays plus the regime or the spec as JSON).

    Loading always gives {partition_key: ScenarioPaths or PortfolioPaths} for the
    partitions asked for.
    """

    extension: ClassVar[str] = ".npz"
    keeps_what_it_writes: ClassVar[bool] = True

    def read_only(self, value: ScenarioPaths | PortfolioPaths) -> ScenarioPaths | PortfolioPaths:
        """``value`` with its arrays read-only, as :meth:`decode` gives them."""
        names = _PORTFOLIO_ARRAYS if isinstance(value, PortfolioPaths) else _ARRAYS
        inner = value.two_asset if isinstance(value, PortfolioPaths) else None
        for array in [getattr(value, name) for name in names] + (
                [getattr(inner, name) for name in _ARRAYS] if inner is not None else []):
            array.flags.writeable = False
        return value

    def encode(self, value: Any, key: str) -> bytes:
        if isinstance(value, PortfolioPaths):
            return _encode_portfolio(value)
        if not isinstance(value, ScenarioPaths):
            raise TypeError(f"expected ScenarioPaths or PortfolioPaths for {key}, got"
                            f" {type(value)}")
        return _encode_paths(value)

    def decode(self, data: bytes) -> ScenarioPaths | PortfolioPaths:
        return _decode_paths(data)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self._store(context, obj)

    def load_input(self, context: dg.InputContext
                   ) -> dict[str, ScenarioPaths] | dict[str, PortfolioPaths]:
        return self._load_all(context)


_ARRAYS = ("equity", "variance", "short_rate", "bond", "cash")
_PORTFOLIO_ARRAYS = ("levels", "variance", "short_rate", "cash")


def _encode_paths(paths: ScenarioPaths) -> bytes:
    meta = {
        "regime": paths.regime.to_dict(),
        "warmup_months": paths.warmup_months,
        "measure": paths.measure,
        "bond_maturity": paths.bond_maturity,
        "leg": paths.leg,
    }
    return npz_bytes({"meta": np.array(json.dumps(meta)),
                      **{name: getattr(paths, name) for name in _ARRAYS}})


def _encode_portfolio(paths: PortfolioPaths) -> bytes:
    """The arrays of every asset, the spec and, for a spec simulated by the two-asset
    code, its regime and bond maturity (its ScenarioPaths is rebuilt from the arrays)."""
    inner = paths.two_asset
    meta = {
        "portfolio": paths.spec.to_dict(), "regime_name": paths.regime,
        "warmup_months": paths.warmup_months, "measure": paths.measure,
        "two_asset": None if inner is None else {"regime": inner.regime.to_dict(),
                                                 "bond_maturity": inner.bond_maturity,
                                                 "leg": inner.leg},
    }
    return npz_bytes({"meta": np.array(json.dumps(meta)),
                      **{name: getattr(paths, name) for name in _PORTFOLIO_ARRAYS}})


def _decode_portfolio(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> PortfolioPaths:
    inner = meta["two_asset"]
    two_asset = None if inner is None else ScenarioPaths(
        regime=regime_from_mapping(inner["regime"]), equity=arrays["levels"][0],
        variance=arrays["variance"][0], short_rate=arrays["short_rate"],
        bond=arrays["levels"][1], cash=arrays["cash"], warmup_months=meta["warmup_months"],
        measure=meta["measure"], bond_maturity=inner["bond_maturity"], leg=inner["leg"])
    return PortfolioPaths(
        regime=meta["regime_name"], spec=PortfolioSpec.from_dict(meta["portfolio"]),
        warmup_months=meta["warmup_months"], measure=meta["measure"], two_asset=two_asset,
        **arrays)


def _decode_paths(data: bytes) -> ScenarioPaths | PortfolioPaths:
    npz = npz_arrays(data)  # read-only: one decoded value may serve several steps of a run
    meta = json.loads(str(npz["meta"]))
    arrays = {name: npz[name] for name in (_PORTFOLIO_ARRAYS if "portfolio" in meta else _ARRAYS)}
    if "portfolio" in meta:
        return _decode_portfolio(meta, arrays)
    return ScenarioPaths(
        regime=regime_from_mapping(meta["regime"]),
        warmup_months=meta["warmup_months"],
        measure=meta["measure"],
        bond_maturity=meta["bond_maturity"],
        leg=meta.get("leg", "bond"),
        **arrays,
    )


def load_scenario_paths(path: Path | str) -> ScenarioPaths | PortfolioPaths:
    """Read a ScenarioPaths or PortfolioPaths file written by
    :class:`ScenarioPathsIOManager` (no checksum check: for inspecting files by hand; the
    IO manager's loads verify)."""
    return _decode_paths(Path(path).read_bytes())
