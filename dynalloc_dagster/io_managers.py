"""IO managers: Parquet tables and npz scenario paths, one file per partition key.

Writes are atomic (a temporary file in the same folder, then ``os.replace``): a failed
run never leaves a half-written file where a good one was. Partition keys become path
components only after validation (letters, digits, ``_ - .``; no ``..``, no separators).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import numpy as np
import polars as pl

from engine.market.paths import ScenarioPaths
from engine.market.regimes import regime_from_mapping

_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def safe_component(value: str) -> str:
    """Return ``value`` if it is safe as one path component, else raise ValueError."""
    if not _SAFE_COMPONENT.fullmatch(value) or ".." in value:
        raise ValueError(
            f"partition key component {value!r} is not a safe file name: use letters, digits,"
            " '_', '-' and '.', with no '..' and no path separators"
        )
    return value


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _PartitionedFileIOManager(dg.ConfigurableIOManager):
    """Shared layout: ``<root>/<asset key>/<partition>.<ext>``; multi-dimensional keys
    become nested ``<dimension>=<value>`` folders."""

    root: str = "data"

    extension: ClassVar[str] = ""

    def _path(self, asset_key: dg.AssetKey, partition_key: str | None,
              partitions_def: dg.PartitionsDefinition | None) -> Path:
        base = Path(self.root).joinpath(*(safe_component(p) for p in asset_key.path))
        if partition_key is None:
            return base.with_name(base.name + self.extension)
        if isinstance(partitions_def, dg.MultiPartitionsDefinition):
            by_dimension = partitions_def.get_partition_key_from_str(partition_key)
            parts = [
                f"{safe_component(dim)}={safe_component(value)}"
                for dim, value in sorted(by_dimension.keys_by_dimension.items())
            ]
            return base.joinpath(*parts[:-1], parts[-1] + self.extension)
        return base / (safe_component(partition_key) + self.extension)

    def _output_items(self, context: dg.OutputContext, obj: Any) -> list[tuple[Path, Any]]:
        if not context.has_asset_partitions:
            return [(self._path(context.asset_key, None, None), obj)]
        keys = list(context.asset_partition_keys)
        partitions_def = context.asset_partitions_def
        if isinstance(obj, Mapping) and not isinstance(obj, ScenarioPaths):
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
        return [(self._path(context.asset_key, k, partitions_def), v) for k, v in items]

    def _input_paths(self, context: dg.InputContext) -> dict[str, Path]:
        """{partition key: path} of the input ("" for an unpartitioned one); raises
        FileNotFoundError naming what has not been materialized."""
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            path = self._path(asset_key, None, None)
            if not path.exists():
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} has not been materialized ({path})"
                )
            return {"": path}
        partitions_def = context.asset_partitions_def
        paths = {
            key: self._path(asset_key, key, partitions_def) for key in context.asset_partition_keys
        }
        missing = sorted(key for key, path in paths.items() if not path.exists())
        if missing:
            raise FileNotFoundError(
                f"{asset_key.to_user_string()}: {len(missing)} partition(s) not materialized,"
                f" e.g. {missing[:3]}"
            )
        return paths


class PolarsParquetIOManager(_PartitionedFileIOManager):
    """Polars DataFrames as Parquet (zstd). Loading many partitions concatenates them."""

    extension: ClassVar[str] = ".parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        for path, frame in self._output_items(context, obj):
            if not isinstance(frame, pl.DataFrame):
                raise TypeError(f"expected a polars DataFrame for {path}, got {type(frame)}")
            atomic_write(path, lambda tmp, f=frame: f.write_parquet(tmp, compression="zstd"))

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        frames = [pl.read_parquet(path) for path in self._input_paths(context).values()]
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")

    def load_stored(self, asset_name: str) -> pl.DataFrame | None:
        """The stored table of an unpartitioned asset, or None if it was never materialized.

        For an asset that reads an earlier materialization outside the asset graph: the
        optimisation agent's next round reads the previous round's history this way
        (a declared dependency would close a cycle)."""
        path = self._path(dg.AssetKey(asset_name), None, None)
        return pl.read_parquet(path) if path.exists() else None


class ScenarioPathsIOManager(_PartitionedFileIOManager):
    """ScenarioPaths as uncompressed npz (float64 arrays plus the regime as JSON).

    Loading always gives {partition_key: ScenarioPaths} for the partitions asked for.
    """

    extension: ClassVar[str] = ".npz"

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        for path, paths in self._output_items(context, obj):
            atomic_write(path, lambda tmp, p=paths: _save_paths(tmp, p))

    def load_input(self, context: dg.InputContext) -> dict[str, ScenarioPaths]:
        return {key: load_scenario_paths(path) for key, path in self._input_paths(context).items()}


_ARRAYS = ("equity", "variance", "short_rate", "bond", "cash")


def _save_paths(tmp: Path, paths: ScenarioPaths) -> None:
    meta = {
        "regime": paths.regime.to_dict(),
        "warmup_months": paths.warmup_months,
        "measure": paths.measure,
        "bond_maturity": paths.bond_maturity,
    }
    with open(tmp, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)),
                 **{name: getattr(paths, name) for name in _ARRAYS})


def load_scenario_paths(path: Path) -> ScenarioPaths:
    """Read a ScenarioPaths written by :class:`ScenarioPathsIOManager`."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {name: data[name] for name in _ARRAYS}
    return ScenarioPaths(
        regime=regime_from_mapping(meta["regime"]),
        warmup_months=meta["warmup_months"],
        measure=meta["measure"],
        bond_maturity=meta["bond_maturity"],
        **arrays,
    )
