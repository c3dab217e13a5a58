"""Market data sources, one room: ``synthetic`` (demos, tests), ``files`` (CSV or Parquet
in a folder) and ``s3`` (the same files in a bucket). Each returns
:class:`~dynalloc_dagster.market_sources.base.MarketInputs`, validated by
:func:`~dynalloc_dagster.market_sources.base.validate_inputs` before anything uses it.
The ``MarketDataSource`` resource (dynalloc_dagster.resources) picks one by ``kind``.
"""

from dynalloc_dagster.market_sources.base import (
    MarketInputs,
    SourceKind,
    up_to,
    validate_inputs,
)
from dynalloc_dagster.market_sources.files import FolderReader, load_tables
from dynalloc_dagster.market_sources.synthetic import as_of_seed, synthetic_inputs

__all__ = ["FolderReader", "MarketInputs", "SourceKind", "as_of_seed", "load_tables",
           "synthetic_inputs", "up_to", "validate_inputs"]
