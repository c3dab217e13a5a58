"""Market data of a portfolio spec: the synthetic source (one path of every asset), and the
files and s3 sources' series layout (docs/market_data.md, "A portfolio's market data"): one
file per series or zero yields by maturity, each series checked on its own rows, then put
on the first equity's calendar; every bad input a user can hand over named by file,
series, date and rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import boto3
import numpy as np
import polars as pl
import pytest
from dagster_test_support import AS_OF

from dynalloc_dagster.assets.ingestion import LONGEST_WINDOW_MONTHS
from dynalloc_dagster.market_sources import as_of_seed, synthetic_inputs, validate_inputs
from dynalloc_dagster.market_sources.base import asset_levels
from dynalloc_dagster.market_sources.synthetic import heston_surface, surface_params
from dynalloc_dagster.resources import MarketDataSource
from dynalloc_dagster.sample_data import US_INDICES_DATA
from engine.market.constant_maturity import constant_maturity_index
from engine.market.rates import Vasicek
from engine.market.regimes import REGIMES
from engine.market.validation import MarketDataError
from engine.portfolio.calibration import calibrate_equities
from engine.portfolio.examples import GLOBAL_SIX, US_INDICES
from engine.portfolio.paths import simulate_portfolio
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec
from engine.rng import as_generator, seed_sequence_for

FRIDAY = dt.date.fromisoformat(AS_OF)
WITH_CASH = PortfolioSpec(assets=(Asset("ust_5y", "government_bond", series="ust_5y",
                                        maturity_years=5.0),
                                  Asset("cash", "cash"),
                                  Asset("world", "equity", series="world")))
"""Listed bonds first: the history's columns still follow ``spec.ordered``."""


def _daily_vol(levels: pl.Series) -> float:
    return float(np.diff(np.log(levels.to_numpy())).std() * np.sqrt(252))


# --- synthetic ---------------------------------------------------------------------------


def test_synthetic_portfolio_has_a_column_per_asset_named_by_it() -> None:
    market = MarketDataSource(years=3).fetch(FRIDAY, longest_window_months=LONGEST_WINDOW_MONTHS,
                                             portfolio=GLOBAL_SIX)
    history = market.history
    assert history.columns == ["date", *GLOBAL_SIX.names, "risk_free"]
    assert history.schema["date"] == pl.Date
    assert all(history.schema[n] == pl.Float64 for n in GLOBAL_SIX.names)
    assert history["date"][-1] == FRIDAY and history.height == 3 * 252 + 1
    assert all(d.weekday() < 5 for d in history["date"].to_list())
    assert "us_equity" in market.origin and "ust_10y" in market.origin
    # the mapping to asset names: each column is its asset's simulated path (the one
    # path of simulate_portfolio the docstring names), and a bucket's daily vol grows
    # with its duration
    paths = simulate_portfolio(GLOBAL_SIX, REGIMES["base"], 1, as_generator(
        seed_sequence_for(as_of_seed(0, FRIDAY), "market_data", "base")),
        warmup_months=0, horizon_years=3)
    for i, name in enumerate(GLOBAL_SIX.names):
        np.testing.assert_array_equal(history[name].to_numpy(), 100.0 * paths.levels[i, 0])
    np.testing.assert_array_equal(history["risk_free"].to_numpy(), paths.short_rate[0])
    bonds = [_daily_vol(history[n]) for n in ("ust_2y", "ust_5y", "ust_10y")]
    assert bonds[0] < bonds[1] < bonds[2]
    holdings = dict(zip(market.holdings["asset"], market.holdings["weight"], strict=True))
    np.testing.assert_allclose([holdings["us_equity"], holdings["em_equity"],
                                holdings["ust_5y"]], [0.6 * 0.6, 0.6 * 0.15, 0.4 / 3],
                               rtol=0, atol=1e-15)
    assert asset_levels(market, GLOBAL_SIX).columns == ["date", "risk_free", *GLOBAL_SIX.names]


def test_synthetic_portfolio_is_seeded_by_the_as_of_date() -> None:
    this_week = synthetic_inputs(FRIDAY, years=2, portfolio=WITH_CASH)
    again = synthetic_inputs(FRIDAY, years=2, portfolio=WITH_CASH)
    next_week = synthetic_inputs(FRIDAY + dt.timedelta(days=7), years=2, portfolio=WITH_CASH)
    assert this_week.history.equals(again.history)
    assert this_week.vol_surface.equals(again.vol_surface)
    assert next_week.history["date"][-1] == FRIDAY + dt.timedelta(days=7)
    assert not np.allclose(this_week.history["world"].to_numpy(),
                           next_week.history["world"].to_numpy())
    # cash earns risk_free: no column, but it is held
    assert this_week.history.columns == ["date", "world", "ust_5y", "risk_free"]
    assert this_week.holdings["asset"].to_list() == ["world", "ust_5y", "cash"]
    history = this_week.history
    assert _daily_vol(history["world"]) > 5 * _daily_vol(history["ust_5y"])


def test_the_two_asset_default_keeps_its_layout() -> None:
    default = synthetic_inputs(FRIDAY, years=2)
    assert default.history.equals(synthetic_inputs(FRIDAY, years=2, portfolio=TWO_ASSET).history)
    assert default.history.columns == ["date", "close", "bond_close", "risk_free"]
    levels = asset_levels(default, TWO_ASSET)
    assert levels.columns == ["date", "risk_free", "equity", "bond"]
    assert levels["equity"].equals(default.history["close"].alias("equity"))
    cash_leg = replace(default, history=default.history.drop("bond_close"))
    assert asset_levels(cash_leg, TWO_ASSET).columns == ["date", "risk_free", "equity"]


# --- files and s3: the series layout ------------------------------------------------------

SPEC = PortfolioSpec(
    assets=(Asset("us", "equity", series="spx"),
            Asset("europe", "equity", series="stoxx", vol_ratio=1.15),
            Asset("ust_2y", "government_bond", series="y_2", maturity_years=2.0),
            Asset("ust_10y", "government_bond", series="ust_10y_tr", maturity_years=10.0),
            Asset("cash", "cash")),
    equity_correlation=((1.0, 0.75), (0.75, 1.0)),
)
"""Two equities from series files, a 2-year bucket built from zero yields, a 10-year
bucket from a total-return index file, and cash."""
TENORS = (1.0, 2.0, 5.0, 10.0)
HOLIDAY_EVERY = 40
"""The European series skips every 40th weekday: its own holidays (~6 a year)."""


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path) if path.suffix == ".parquet" else frame.write_csv(path)


@pytest.fixture
def series_folder(tmp_path: Path) -> Path:
    """Four years of a synthetic six-asset market ending at FRIDAY written as the series
    layout: series/spx.csv, series/stoxx.parquet (on its own holidays),
    series/ust_10y_tr.csv, an unused series/nikkei.csv, yields.csv (the base regime's
    Vasicek zero curve at each day's short rate, y_1 .. y_10), risk_free.csv, a vol
    surface and holdings by weight naming the spec's assets."""
    target = tmp_path / "portfolio"
    market = synthetic_inputs(FRIDAY, years=4, portfolio=GLOBAL_SIX).history
    level = {"spx": "us_equity", "stoxx": "europe_equity", "ust_10y_tr": "ust_10y",
             "nikkei": "em_equity"}
    for series, column in level.items():
        frame = market.select("date", pl.col(column).alias("close"))
        if series == "stoxx":
            frame = frame.filter(pl.int_range(pl.len()) % HOLIDAY_EVERY != 7)
        _write(frame, target / "series" / f"{series}.{'parquet' if series == 'stoxx' else 'csv'}")
    base = REGIMES["base"]
    model = Vasicek(base.rate_mean_reversion, base.short_rate, base.rate_vol,
                    base.rate_risk_premium)
    rates = market["risk_free"].to_numpy()
    _write(market.select("date", *(pl.Series(f"y_{t:g}", model.zero_yield(rates, t))
                                   for t in TENORS)), target / "yields.csv")
    _write(market.select("date", "risk_free"), target / "risk_free.csv")
    _write(heston_surface(surface_params(0.03)), target / "vol_surface.csv")
    _write(pl.DataFrame({"asset": ["us", "europe", "ust_2y", "ust_10y", "cash"],
                         "weight": [0.4, 0.2, 0.2, 0.1, 0.1]}), target / "holdings.csv")
    return target


def _files(folder: Path) -> MarketDataSource:
    return MarketDataSource(kind="files", path=str(folder))


def _fetch(source: MarketDataSource, spec: PortfolioSpec = SPEC, as_of: dt.date = FRIDAY):
    return source.fetch(as_of, longest_window_months=LONGEST_WINDOW_MONTHS, portfolio=spec)


def _violations(source: MarketDataSource, spec: PortfolioSpec = SPEC,
                as_of: dt.date = FRIDAY) -> str:
    with pytest.raises(MarketDataError) as caught:
        _fetch(source, spec, as_of)
    return "\n".join(caught.value.violations)


def test_series_files_and_yields_become_one_column_per_asset(series_folder: Path) -> None:
    market = _fetch(_files(series_folder))
    history = market.history
    assert history.columns == ["date", "us", "europe", "ust_2y", "ust_10y", "risk_free"]
    spx = pl.read_csv(series_folder / "series" / "spx.csv", try_parse_dates=True)
    assert history["date"].equals(spx["date"])  # the first equity's calendar
    np.testing.assert_array_equal(history["us"].to_numpy(), spx["close"].to_numpy())
    # a European holiday takes the last close before it
    stoxx = pl.read_parquet(series_folder / "series" / "stoxx.parquet")
    holiday = history["date"][7]
    assert holiday not in set(stoxx["date"].to_list())
    assert history["europe"][7] == history["europe"][6]
    assert history["europe"][8] == stoxx.filter(pl.col("date") == history["date"][8])["close"][0]
    # the 2-year bucket is the constant-maturity index of the yields
    yields = pl.read_csv(series_folder / "yields.csv", try_parse_dates=True)
    index = constant_maturity_index(yields["date"].to_list(), np.array(TENORS),
                                    yields.drop("date").to_numpy(), 2.0)
    np.testing.assert_allclose(history["ust_2y"].to_numpy(), index, rtol=1e-15, atol=0)
    assert market.sources["asset:ust_2y"].endswith("yields.csv (column 'y_2')")
    assert market.sources["unused:series/nikkei.csv"] == str(series_folder / "series/nikkei.csv")
    assert market.holdings["asset"].to_list() == ["us", "europe", "ust_2y", "ust_10y", "cash"]
    assert asset_levels(market, SPEC).columns == ["date", "risk_free", "us", "europe",
                                                  "ust_2y", "ust_10y"]
    earlier = _fetch(_files(series_folder), as_of=FRIDAY - dt.timedelta(days=7))
    assert earlier.history["date"][-1] == FRIDAY - dt.timedelta(days=7)


def test_the_yield_bucket_tracks_the_simulated_bucket(series_folder: Path) -> None:
    # the yields are the Vasicek curve of the short rate that priced the synthetic
    # ust_2y bucket: the index from yields, on ACT/365F weekdays, follows the simulated
    # one (1/252 a day) to within the two calendars' carry difference
    built = _fetch(_files(series_folder)).history["ust_2y"].to_numpy()
    simulated = synthetic_inputs(FRIDAY, years=4, portfolio=GLOBAL_SIX).history["ust_2y"]
    r_built, r_sim = np.diff(np.log(built)), np.diff(np.log(simulated.to_numpy()))
    assert np.corrcoef(r_built, r_sim)[0, 1] > 0.99


def test_the_calendar_is_the_first_equity_with_a_series(series_folder: Path) -> None:
    bond = SPEC.assets[3]
    simulated_first = PortfolioSpec(
        assets=(Asset("simulated", "equity"), SPEC.assets[1], bond),
        equity_correlation=((1.0, 0.5), (0.5, 1.0)))
    (series_folder / "holdings.csv").unlink()
    history = _fetch(_files(series_folder), simulated_first).history
    stoxx = pl.read_parquet(series_folder / "series" / "stoxx.parquet")
    assert history.columns == ["date", "europe", "ust_10y", "risk_free"]
    assert history["date"].equals(stoxx["date"])
    no_equity = PortfolioSpec(assets=(Asset("simulated", "equity"), bond))
    assert ("rule missing_series: no equity of the portfolio (simulated) names a series"
            in _violations(_files(series_folder), no_equity))


def test_a_series_starting_later_shortens_the_history(series_folder: Path) -> None:
    path = series_folder / "series" / "ust_10y_tr.csv"
    _write(pl.read_csv(path).slice(100), path)
    history = _fetch(_files(series_folder)).history
    assert str(history["date"][0]) == pl.read_csv(path)["date"][0]


def test_the_s3_source_reads_the_same_series(series_folder: Path,
                                             moto_server: dict[str, str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    endpoint = moto_server["endpoint_url"]
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="portfolio-market")
    for path in series_folder.rglob("*"):
        if path.is_file():
            key = f"weekly/{path.relative_to(series_folder).as_posix()}"
            client.put_object(Bucket="portfolio-market", Key=key, Body=path.read_bytes())
    client.put_object(Bucket="portfolio-market", Key="weekly/series/old/spx.csv", Body=b"x")
    source = MarketDataSource(kind="s3", bucket="portfolio-market", prefix="weekly",
                              endpoint_url=endpoint)
    from_s3 = _fetch(source)
    assert from_s3.history.equals(_fetch(_files(series_folder)).history)
    assert from_s3.sources["history"] == "s3://portfolio-market/weekly/series/spx.csv"

    client.delete_object(Bucket="portfolio-market", Key="weekly/series/stoxx.parquet")
    text = _violations(source)
    assert ("s3://portfolio-market/weekly/series/stoxx.csv: rule missing_series: asset"
            " 'europe' names series 'stoxx'") in text
    assert "s3://portfolio-market/weekly/series/stoxx.parquet exists" in text


# --- what a user can hand over wrong, each named by file, series, date and rule -----------


def _edit(path: Path, edit) -> None:
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(
        path, infer_schema_length=0)
    _write(edit(frame), path)


def _row(column: str, row: int, value: str):
    return lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value))
                                    .otherwise(column).alias(column))


@pytest.mark.parametrize(("file", "edit", "expected"), [
    ("series/spx.csv", lambda f: f.filter((pl.int_range(pl.len()) < 300)
                                          | (pl.int_range(pl.len()) > 315)),
     lambda d: f"column 'date', row 300 ({d[316]}): rule gap: 17 business days after {d[299]}"),
    ("series/spx.csv", _row("close", 20, "-3"),
     lambda d: f"column 'close', row 20 ({d[20]}): rule non_positive_price"),
    ("series/spx.csv", _row("close", 20, ""),
     lambda d: f"column 'close', row 20 ({d[20]}): rule nan"),
    ("series/spx.csv", _row("close", 20, "1.234,5"),
     lambda d: "column 'close', row 20: rule not_a_number: '1.234,5'"),
    ("series/ust_10y_tr.csv", _row("close", 50, "9999"),
     lambda d: f"column 'close', row 50 ({d[50]}): rule jump"),
    ("series/ust_10y_tr.csv", lambda f: pl.concat([f.head(10), f.slice(9)]),
     lambda d: f"column 'date', row 10 ({d[9]}): rule duplicate_date"),
    ("series/ust_10y_tr.csv", lambda f: f.with_columns(pl.lit("100.0").alias("close")),
     lambda d: "column 'close', rule constant_price"),
    ("yields.csv", lambda f: f.with_columns(pl.col("y_10").cast(pl.Float64) * 100),
     lambda d: f"column 'y_10', row 0 ({d[0]}): rule rate_in_percent"),
    ("yields.csv", _row("y_5", 30, ""), lambda d: f"column 'y_5', row 30 ({d[30]}): rule nan"),
    ("yields.csv", lambda f: f.rename({"y_5": "y_5y"}),
     lambda d: "column 'y_5y': rule yield_column: not y_<tenor in years>"),
])
def test_each_series_rule_names_the_file_column_and_date(series_folder: Path, file: str,
                                                         edit, expected) -> None:
    path = series_folder / file
    dates = pl.read_csv(path)["date"].to_list()
    _edit(path, edit)
    assert f"{path}: {expected(dates)}" in _violations(_files(series_folder))


def test_a_missing_series_file_names_the_series_and_where_it_was_looked_for(
        series_folder: Path) -> None:
    (series_folder / "series" / "stoxx.parquet").unlink()
    text = _violations(_files(series_folder))
    assert (f"{series_folder}/series/stoxx.csv: rule missing_series: asset 'europe' names"
            f" series 'stoxx', and neither {series_folder}/series/stoxx.csv nor"
            f" {series_folder}/series/stoxx.parquet exists") in text
    (series_folder / "yields.csv").unlink()
    text = _violations(_files(series_folder))
    assert ("rule missing_series: asset 'ust_2y' names series 'y_2', the 2-year zero yield,"
            f" and neither {series_folder}/yields.csv nor {series_folder}/yields.parquet"
            " exists") in text
    assert "'stoxx'" in text  # every violation at once
    (series_folder / "yields.csv").write_text("")  # back, but now risk_free is missing
    _write(pl.read_csv(series_folder / "series" / "spx.csv"), series_folder / "series" /
           "stoxx.csv")
    (series_folder / "risk_free.csv").unlink()
    text = _violations(_files(series_folder))
    assert "rule missing_file: risk_free.csv or risk_free.parquet is required" in text
    assert f"{series_folder}/yields.csv: rule unreadable" in text
    assert "rule missing_series" not in text


def test_a_yield_series_must_be_the_buckets_own_maturity(series_folder: Path) -> None:
    wrong = PortfolioSpec(assets=(SPEC.assets[0], Asset("ust_2y", "government_bond",
                                                         series="y_5", maturity_years=2.0)))
    text = _violations(_files(series_folder), wrong)
    assert ("yields.csv: column 'y_5': rule series_maturity: asset 'ust_2y' has"
            " maturity_years 2 but series 'y_5' is the 5-year yield") in text
    absent = PortfolioSpec(assets=(SPEC.assets[0], Asset("ust_30y", "government_bond",
                                                          series="y_30", maturity_years=30.0)))
    assert ("yields.csv: rule missing_series: asset 'ust_30y' names series 'y_30', a column"
            " the file lacks; found date, y_1, y_2, y_5, y_10") in _violations(
                _files(series_folder), absent)


@pytest.mark.parametrize(("edit", "what"), [
    (lambda f: f.filter(pl.col("date").str.to_date().dt.weekday() == 5), "weekly"),
    (lambda f: f.with_columns(pl.col("date").str.to_date().dt.offset_by("1d")
                              .dt.to_string("%Y-%m-%d")), "shifted a day"),
])
def test_a_series_on_another_calendar_is_refused(series_folder: Path, edit, what) -> None:
    path = series_folder / "series" / "ust_10y_tr.csv"
    _edit(path, edit)
    text = _violations(_files(series_folder))
    assert f"{path}: " in text and "rule calendar: a value dated on" in text, what
    assert "of the history's" in text


def test_a_series_starting_too_late_or_ending_stale_is_named(series_folder: Path) -> None:
    late = series_folder / "series" / "stoxx.parquet"
    _edit(late, lambda f: f.filter(pl.col("date") >= dt.date(2025, 1, 2)))
    stale = series_folder / "series" / "ust_10y_tr.csv"
    _edit(stale, lambda f: f.filter(pl.col("date") <= "2026-10-30"))
    text = _violations(_files(series_folder))
    assert (f"{late}: column 'date', row 0 (2025-01-02): rule coverage: europe starts"
            " 2025-01-02, too late: the first of the 756 rows the history needs is") in text
    assert f"{stale}: column 'date', row" in text
    assert "rule stale: last date is 15 business days before as_of 2026-11-20" in text


def test_holdings_name_the_portfolios_assets(series_folder: Path) -> None:
    path = series_folder / "holdings.csv"
    _edit(path, lambda f: f.with_columns(pl.when(pl.col("asset") == "europe")
                                         .then(pl.lit("japan")).otherwise("asset").alias("asset")))
    text = _violations(_files(series_folder))
    assert (f"{path}: column 'asset', row 1: rule holdings_asset: 'japan' is not one of us,"
            " europe, ust_2y, ust_10y, cash") in text
    synthetic = synthetic_inputs(FRIDAY, years=4, portfolio=SPEC)
    with pytest.raises(MarketDataError, match="'equity' is not one of us, europe"):
        validate_inputs(replace(synthetic, holdings=pl.DataFrame(
            {"asset": ["equity", "bond"], "weight": [0.6, 0.4]})),
            longest_window_months=LONGEST_WINDOW_MONTHS, portfolio=SPEC)


def test_an_asset_named_like_a_history_column_is_refused() -> None:
    spec = PortfolioSpec(assets=(Asset("risk_free", "equity", series="spx"),
                                 Asset("cash", "cash")))
    with pytest.raises(MarketDataError, match=r"rule reserved_name: asset\(s\) risk_free"):
        synthetic_inputs(FRIDAY, years=2, portfolio=spec)


# --- the shipped real portfolio sample --------------------------------------------------


def test_the_shipped_portfolio_sample_is_the_us_indices_spec() -> None:
    market = _files(US_INDICES_DATA).fetch(None, longest_window_months=LONGEST_WINDOW_MONTHS,
                                           portfolio=US_INDICES)
    history = market.history
    assert history.columns == ["date", "sp500", "nasdaq", "risk_free"]
    assert (history.height, str(history["date"][0]), str(history["date"][-1])) == (
        5012, "1999-01-04", "2018-11-30")
    assert market.holdings["asset"].to_list() == ["sp500", "nasdaq", "cash"]
    # the spec's vol ratio and correlation are the sample's, to the 2 decimals given
    returns = np.diff(np.log(history.select("sp500", "nasdaq").to_numpy()), axis=0)
    fitted = calibrate_equities(US_INDICES, returns)
    np.testing.assert_allclose(fitted.equities[1].vol_ratio, US_INDICES.equities[1].vol_ratio,
                               rtol=0, atol=0.005)
    np.testing.assert_allclose(fitted.equity_correlation, US_INDICES.equity_correlation,
                               rtol=0, atol=0.005)
