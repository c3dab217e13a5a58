"""Rebuild the shipped real samples from the data files of the ``arch`` package.

``python -m dynalloc_dagster.sample_data.extract [ARCH_DATA_DIR]`` (with ``arch``
installed, e.g. ``.venv/bin/pip install arch==8.0.0``, or the ``arch/data`` folder of its
unpacked wheel given) reads ``arch/data/sp500/sp500.csv.gz``,
``arch/data/nasdaq/nasdaq.csv.gz`` and ``arch/data/frenchdata/frenchdata.csv.gz`` and
writes ``equity.csv`` and ``risk_free.csv`` next to this file (the two-asset sample) and
the portfolio sample ``us_indices/`` (``series/sp500.csv``, ``series/nasdaq.csv``,
``risk_free.csv``). README.md in this folder gives the provenance.

- equity.csv: date, close = the S&P 500 "Close" column (a price index, dividends not
  reinvested), rounded to the cent it is quoted in.
- risk_free.csv: date, risk_free = the Fama-French one-month T-bill return of the month
  (column RF, percent per month) as an annualised decimal, 12 x RF / 100, on every S&P 500
  trading day of that month.
- us_indices/series/nasdaq.csv: date, close = the NASDAQ Composite "Close" column,
  rounded to the cent, on the same dates.
All cover the months present in every file (1999-01-04 to 2018-11-30).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent


def _arch_data_dir() -> Path:
    import arch.data  # only needed to rebuild the sample, not a runtime dependency

    return Path(arch.data.__file__).resolve().parent


def _closes(data: Path, name: str) -> pl.DataFrame:
    """date, close of ``<name>/<name>.csv.gz`` (Yahoo! Finance columns), close to the cent."""
    with gzip.open(data / name / f"{name}.csv.gz", "rb") as handle:
        frame = pl.read_csv(handle.read())
    return frame.select(
        pl.col("Date").str.to_date("%m/%d/%Y").alias("date"),
        pl.col("Close").round(2).alias("close"),
    ).sort("date")


def extract(out_dir: Path = HERE, data: Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read the arch files (``data``: their folder, default the installed package's),
    write equity.csv and risk_free.csv to ``out_dir`` and the portfolio sample to
    ``out_dir / "us_indices"``."""
    data = data or _arch_data_dir()
    with gzip.open(data / "frenchdata" / "frenchdata.csv.gz", "rb") as handle:
        french = pl.read_csv(handle.read())
    equity = _closes(data, "sp500")
    monthly = french.select(
        pl.col("Date").cast(pl.Int64).alias("yyyymm"),
        (pl.col("RF").cast(pl.Float64) * 12.0 / 100.0).alias("risk_free"),
    )
    equity = equity.with_columns(
        (pl.col("date").dt.year() * 100 + pl.col("date").dt.month()).cast(pl.Int64).alias("yyyymm"))
    joined = equity.join(monthly, on="yyyymm", how="inner").sort("date")
    equity_out = joined.select("date", "close")
    rate_out = joined.select("date", pl.col("risk_free").round(6))
    out_dir.mkdir(parents=True, exist_ok=True)
    equity_out.write_csv(out_dir / "equity.csv")
    rate_out.write_csv(out_dir / "risk_free.csv")
    portfolio = out_dir / "us_indices"
    (portfolio / "series").mkdir(parents=True, exist_ok=True)
    equity_out.write_csv(portfolio / "series" / "sp500.csv")
    nasdaq = _closes(data, "nasdaq").join(equity_out.select("date"), on="date", how="semi")
    nasdaq.write_csv(portfolio / "series" / "nasdaq.csv")
    rate_out.write_csv(portfolio / "risk_free.csv")
    return equity_out, rate_out


if __name__ == "__main__":
    equity, rate = extract(data=Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"equity.csv: {equity.height} rows, {equity['date'][0]} to {equity['date'][-1]}")
    print(f"risk_free.csv: {rate.height} rows, mean {rate['risk_free'].mean():.4f}")
