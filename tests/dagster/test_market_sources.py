"""Market data sources: synthetic (as_of honoured), files (CSV, Parquet), s3 (moto's
server), the shipped real sample, and validation at the edge: every rule names the file,
the row or date and the rule, and a bad file never replaces the last good
materialization."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import numpy as np
import polars as pl
import pydantic
import pytest
from dagster_test_support import AS_OF, failure_text, snapshot

from dynalloc_dagster.assets.ingestion import (
    LONGEST_WINDOW_MONTHS,
    MarketDataConfig,
    calibration,
    market_data,
)
from dynalloc_dagster.assets.scenarios import ScenarioPathsConfig, market_regimes, scenario_paths
from dynalloc_dagster.environment import resources_for
from dynalloc_dagster.market_sources import FolderReader, load_tables, synthetic_inputs
from dynalloc_dagster.market_sources.synthetic import heston_surface, surface_params
from dynalloc_dagster.resources import SAMPLE_DATA, MarketDataSource
from engine.market.heston_calibration import fit_heston
from engine.market.regimes import REGIMES
from engine.market.validation import MarketDataError, required_history_rows

FRIDAY = dt.date.fromisoformat(AS_OF)
SAMPLE_END = dt.date(2018, 11, 30)


def _fetch(source: MarketDataSource, as_of: dt.date | None):
    return source.fetch(as_of, longest_window_months=LONGEST_WINDOW_MONTHS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A files-source folder: the last 4 years of the shipped sample, a curve in par
    rates, a Heston surface in strikes and forwards, and holdings in units."""
    target = tmp_path / "market"
    target.mkdir()
    for name in ("equity", "risk_free"):
        frame = pl.read_csv(SAMPLE_DATA / f"{name}.csv")
        frame.filter(pl.col("date") >= "2014-12-01").write_csv(target / f"{name}.csv")
    pl.DataFrame({"tenor_years": [1.0, 2.0, 5.0, 10.0],
                  "par_rate": [0.025, 0.027, 0.029, 0.031]}).write_csv(target / "yield_curve.csv")
    surface = heston_surface(surface_params(0.03))
    surface.select("expiry_years", pl.col("log_moneyness").exp().mul(2700.0).alias("strike"),
                   pl.lit(2700.0).alias("forward"), "implied_vol").write_csv(
        target / "vol_surface.csv")
    shutil.copy(SAMPLE_DATA / "holdings.csv", target / "holdings.csv")
    return target


def _rewrite(path: Path, edit) -> None:
    frame = pl.read_csv(path, infer_schema_length=0)
    edit(frame).write_csv(path)


def _violations(source: MarketDataSource, as_of: dt.date | None = SAMPLE_END) -> str:
    with pytest.raises(MarketDataError) as caught:
        _fetch(source, as_of)
    return "\n".join(caught.value.violations)


# --- synthetic ---------------------------------------------------------------------------


def test_synthetic_history_ends_at_as_of_and_changes_week_to_week() -> None:
    this_week = synthetic_inputs(FRIDAY, years=3)
    again = synthetic_inputs(FRIDAY, years=3)
    next_week = synthetic_inputs(FRIDAY + dt.timedelta(days=7), years=3)

    assert this_week.history["date"][-1] == FRIDAY
    assert next_week.history["date"][-1] == FRIDAY + dt.timedelta(days=7)
    assert this_week.history.equals(again.history)
    assert this_week.vol_surface.equals(again.vol_surface)
    assert not np.allclose(this_week.history["close"].to_numpy(),
                           next_week.history["close"].to_numpy())
    assert synthetic_inputs(FRIDAY, years=3, seed=1).history["close"][-1] != \
        this_week.history["close"][-1]


def test_synthetic_surface_is_heston_and_recovers_its_parameters() -> None:
    params = surface_params(0.02)
    surface = heston_surface(params)
    fit = fit_heston(surface)
    base = REGIMES["base"]
    np.testing.assert_allclose(
        [fit.params.v0, fit.params.kappa, fit.params.theta, fit.params.sigma, fit.params.rho],
        [0.02, base.heston_kappa, base.variance, base.vol_of_vol, base.spot_variance_corr],
        atol=1e-4)
    assert fit.rmse_vol < 1e-5
    assert _fetch(MarketDataSource(years=3), FRIDAY).vol_surface.height == 25  # validated


# --- files -------------------------------------------------------------------------------


def test_files_source_reads_aligns_and_converts(folder: Path) -> None:
    market = _fetch(MarketDataSource(kind="files", path=str(folder)), SAMPLE_END)

    equity = pl.read_csv(folder / "equity.csv", try_parse_dates=True)
    assert market.history.columns == ["date", "close", "risk_free"]
    assert market.history["date"].equals(equity["date"])
    assert market.history["close"].equals(equity["close"])
    assert market.as_of == SAMPLE_END
    # strike / forward became ln K/F exactly
    np.testing.assert_allclose(market.vol_surface["log_moneyness"].to_numpy(),
                               heston_surface(surface_params(0.03))["log_moneyness"].to_numpy(),
                               atol=1e-12)
    assert market.yield_curve.columns == ["tenor_years", "par_rate"]
    assert market.holdings.to_dicts() == [{"asset": "equity", "units": 400.0},
                                          {"asset": "bond", "units": 900000.0}]
    assert market.sources["history"] == str(folder / "equity.csv")


def test_files_source_cuts_the_history_at_as_of(folder: Path) -> None:
    as_of = dt.date(2018, 6, 29)
    market = _fetch(MarketDataSource(kind="files", path=str(folder)), as_of)
    assert market.history["date"][-1] == as_of
    latest = _fetch(MarketDataSource(kind="files", path=str(folder)), None)
    assert latest.as_of == SAMPLE_END  # no as_of: the last date of the files


def test_parquet_files_read_like_csv(folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "parquet"
    other.mkdir()
    for path in folder.iterdir():
        pl.read_csv(path, try_parse_dates=True).write_parquet(other / f"{path.stem}.parquet")
    as_csv = _fetch(MarketDataSource(kind="files", path=str(folder)), SAMPLE_END)
    as_parquet = _fetch(MarketDataSource(kind="files", path=str(other)), SAMPLE_END)
    assert as_parquet.history.equals(as_csv.history)
    assert as_parquet.vol_surface.equals(as_csv.vol_surface)


def test_rate_file_may_have_its_own_dates(folder: Path) -> None:
    """Monthly rates apply to every later day until the next one (as-of join)."""
    _rewrite(folder / "risk_free.csv", lambda f: f.filter(
        pl.col("date").str.slice(0, 7).ne_missing(pl.col("date").shift(1).str.slice(0, 7))))
    strict = MarketDataSource(kind="files", path=str(folder))
    assert "risk_free.csv: column 'date', row 1 (2015-01-02): rule gap" in _violations(strict)
    # a monthly file has month-long gaps and ages a month: generous settings accept it
    market = _fetch(MarketDataSource(kind="files", path=str(folder), max_gap_business_days=25,
                                     max_stale_business_days=25), SAMPLE_END)
    november = market.history.filter(pl.col("date") >= dt.date(2018, 11, 1))
    assert november["risk_free"].unique().to_list() == [0.0216]


# --- validation: one test per rule, each naming file, row or date, and rule ---------------


@pytest.mark.parametrize(("file", "edit", "expected"), [
    ("equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(pl.lit("")).otherwise("close").alias("close")),
     "equity.csv: column 'close', row 10 (2014-12-15): rule nan"),
    ("equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("-5")).otherwise("close").alias("close")),
     "equity.csv: column 'close', row 3 (2014-12-04): rule non_positive_price"),
    ("equity.csv", lambda f: pl.concat([f.head(20), f.slice(19, 1), f.slice(20)]),
     "equity.csv: column 'date', row 20 (2014-12-29): rule duplicate_date"),
    ("equity.csv", lambda f: pl.concat([f.head(5), f.slice(6, 1), f.slice(5, 1), f.slice(7)]),
     "equity.csv: column 'date', row 6 (2014-12-08): rule unsorted_dates"),
    ("equity.csv", lambda f: f.filter(~pl.col("date").is_between(pl.lit("2016-03-01"),
                                                                  pl.lit("2016-03-20"))),
     "(2016-03-21): rule gap: 15 business days after 2016-02-29"),
    ("risk_free.csv", lambda f: f.with_columns(pl.col("risk_free").cast(pl.Float64) * 100),
     "risk_free.csv: column 'risk_free', row"),
    ("equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("12/03/2014")).otherwise("date")
        .alias("date")),
     "equity.csv: column 'date', row 2: rule date_format: '12/03/2014' is not YYYY-MM-DD"),
    ("equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("n/a")).otherwise("close").alias("close")),
     "equity.csv: column 'close', row 7: rule not_a_number: 'n/a'"),
    ("vol_surface.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("-0.2")).otherwise("implied_vol")
        .alias("implied_vol")),
     "vol_surface.csv: column 'implied_vol', row 7"),
    ("vol_surface.csv", lambda f: f.with_columns(
        pl.when(pl.col("expiry_years").cast(pl.Float64) > 1.5)
        .then(pl.col("implied_vol").cast(pl.Float64) * 0.5).otherwise(
            pl.col("implied_vol").cast(pl.Float64)).alias("implied_vol")),
     "rule calendar_arbitrage"),
    ("holdings.csv", lambda f: f.with_columns(pl.lit("gold").alias("asset")).head(1),
     "holdings.csv: column 'asset', row 0: rule holdings_asset: 'gold'"),
    ("yield_curve.csv", lambda f: f.reverse(),
     "yield_curve.csv: column 'tenor_years', row 1"),
])
def test_each_rule_names_file_row_date_and_rule(folder: Path, file: str, edit,
                                                expected: str) -> None:
    _rewrite(folder / file, edit)
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert expected in text
    assert str(folder / file) in text


def test_percent_rates_are_refused_by_name(folder: Path) -> None:
    _rewrite(folder / "risk_free.csv",
             lambda f: f.with_columns(pl.col("risk_free").cast(pl.Float64) * 100))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "rule rate_in_percent" in text and "rates are decimals" in text


def test_stale_and_short_history_are_refused(folder: Path) -> None:
    source = MarketDataSource(kind="files", path=str(folder))
    stale = _violations(source, dt.date(2019, 1, 31))
    assert "rule stale: last date is 44 business days before as_of 2019-01-31" in stale
    short = _violations(source, dt.date(2016, 6, 30))
    assert f"need at least {required_history_rows(LONGEST_WINDOW_MONTHS)}" in short
    assert "rule history_too_short" in short


def test_every_violation_is_listed_at_once(folder: Path) -> None:
    _rewrite(folder / "equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("-5")).otherwise("close").alias("close")))
    _rewrite(folder / "holdings.csv", lambda f: f.with_columns(pl.lit("-1").alias("units")))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "rule non_positive_price" in text
    assert "rule holdings_units" in text


def test_missing_and_ambiguous_files(folder: Path) -> None:
    (folder / "risk_free.csv").unlink()
    assert "risk_free.csv or risk_free.parquet is required" in _violations(
        MarketDataSource(kind="files", path=str(folder)))
    pl.read_csv(folder / "equity.csv").write_parquet(folder / "equity.parquet")
    assert "rule ambiguous_file: both equity.csv and equity.parquet exist" in _violations(
        MarketDataSource(kind="files", path=str(folder)))


def test_rates_must_cover_the_equity_history(folder: Path) -> None:
    _rewrite(folder / "risk_free.csv", lambda f: f.filter(pl.col("date") >= "2015-01-02"))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "risk_free.csv: column 'date', row 0 (2015-01-02): rule coverage" in text


def test_source_config_is_checked_at_the_edge() -> None:
    with pytest.raises(pydantic.ValidationError, match="kind 'files' needs path"):
        MarketDataSource(kind="files")
    with pytest.raises(pydantic.ValidationError, match="kind 's3' needs bucket"):
        MarketDataSource(kind="s3")
    with pytest.raises(pydantic.ValidationError, match="'synthetic', 'files' or 's3'"):
        MarketDataSource(kind="bloomberg")  # type: ignore[arg-type]


def test_a_bad_file_never_replaces_the_last_good_materialization(
    folder: Path, data_root: Path, instance: dg.DagsterInstance
) -> None:
    resources = resources_for("local", data_root=str(data_root)) | {
        "market_source": MarketDataSource(kind="files", path=str(folder))}
    good = dg.materialize([market_data], instance=instance, resources=resources)
    assert good.success
    before = snapshot(data_root)

    _rewrite(folder / "equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 40).then(pl.lit("")).otherwise("close").alias("close")))
    bad = dg.materialize([market_data], instance=instance, resources=resources,
                         raise_on_error=False)

    assert not bad.success
    assert "equity.csv: column 'close', row 40 (2015-01-29): rule nan" in failure_text(bad)
    assert snapshot(data_root) == before
    assert bad.get_asset_materialization_events() == []


# --- the shipped sample ------------------------------------------------------------------


def test_the_shipped_sample_is_two_decades_of_decimals() -> None:
    market = FolderReader(SAMPLE_DATA)
    assert {"equity.csv", "risk_free.csv", "holdings.csv"} <= market.names()
    inputs = load_tables(market, as_of=None)
    history = inputs.history
    assert (history["date"][0], history["date"][-1]) == (dt.date(1999, 1, 4), SAMPLE_END)
    assert history.height == 5012
    # Fama-French RF of 1999-01 is 0.35% a month: 4.2% a year as a decimal
    assert history["risk_free"][0] == pytest.approx(0.042)
    assert 0.0 <= history["risk_free"].min() and history["risk_free"].max() < 0.07
    assert history["close"][0] == 1228.10  # S&P 500 close on 1999-01-04


# --- s3 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_s3_source_reads_the_same_files(folder: Path, moto_endpoint: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    client.create_bucket(Bucket="market")
    for path in folder.iterdir():
        client.put_object(Bucket="market", Key=f"weekly/{path.name}", Body=path.read_bytes())
    client.put_object(Bucket="market", Key="weekly/old/equity.csv", Body=b"ignored")

    source = MarketDataSource(kind="s3", bucket="market", prefix="weekly",
                              endpoint_url=moto_endpoint)
    from_s3 = _fetch(source, SAMPLE_END)
    from_files = _fetch(MarketDataSource(kind="files", path=str(folder)), SAMPLE_END)
    assert from_s3.history.equals(from_files.history)
    assert from_s3.vol_surface.equals(from_files.vol_surface)
    assert from_s3.sources["history"] == "s3://market/weekly/equity.csv"

    client.put_object(Bucket="market", Key="weekly/equity.csv",
                      Body=(folder / "equity.csv").read_bytes().replace(b"2760.17", b"-1"))
    assert "s3://market/weekly/equity.csv: column 'close', row" in _violations(source)
    missing = MarketDataSource(kind="s3", bucket="nope", endpoint_url=moto_endpoint)
    assert "s3://nope: rule unreadable" in _violations(missing)


# --- weekly refresh: scenario seeds from the as-of date -----------------------------------


def _bear_paths(regimes: pl.DataFrame, as_of: dt.date) -> np.ndarray:
    table = regimes.with_columns(pl.lit(as_of).alias("as_of"))
    context = dg.build_asset_context(partition_key="bear")
    outputs = list(scenario_paths(context, ScenarioPathsConfig(
        n_paths=4, horizon_years=1, warmup_months=0), table))
    return outputs[0].value["bear"].equity


def test_scenario_seeds_derive_from_the_as_of_date() -> None:
    regimes = pl.DataFrame([REGIMES["bear"].to_dict() | {"feller_satisfied": True}])
    week1 = _bear_paths(regimes, FRIDAY)
    assert np.array_equal(week1, _bear_paths(regimes, FRIDAY))
    assert not np.array_equal(week1, _bear_paths(regimes, FRIDAY + dt.timedelta(days=7)))


# --- inputs that used to pass silently ------------------------------------------------------


def _ingest(folder: Path, data_root: Path, instance: dg.DagsterInstance,
            assets: list | None = None) -> dg.ExecuteInProcessResult:
    resources = resources_for("local", data_root=str(data_root)) | {
        "market_source": MarketDataSource(kind="files", path=str(folder))}
    return dg.materialize(assets or [market_data, calibration], instance=instance,
                          resources=resources, raise_on_error=False)


def test_timezone_aware_parquet_dates_keep_their_own_calendar_day(folder: Path) -> None:
    """Europe/Berlin midnights are the day they name, not the UTC day before."""
    equity = pl.read_csv(folder / "equity.csv", try_parse_dates=True)
    equity.with_columns(pl.col("date").cast(pl.Datetime("us")).dt.replace_time_zone(
        "Europe/Berlin")).write_parquet(folder / "equity.parquet")
    (folder / "equity.csv").unlink()

    market = _fetch(MarketDataSource(kind="files", path=str(folder)), SAMPLE_END)

    assert market.history["date"].equals(equity["date"])
    assert market.history["date"][0] == dt.date(2014, 12, 1)  # a Monday, not Sunday's


def test_a_one_day_spike_is_refused_naming_the_date(folder: Path) -> None:
    _rewrite(folder / "equity.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(pl.col("close").cast(pl.Float64) * 1000)
        .otherwise(pl.col("close").cast(pl.Float64)).alias("close")))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert (f"{folder / 'equity.csv'}: column 'close', row 100 (2015-04-27): rule jump:"
            " daily log return 6.9") in text


def _wild_equity(folder: Path) -> None:
    """Closes whose daily log returns alternate +-0.2 (under the jump bound, vol 3.2 a
    year): the calibrated vol and drift lie outside the model's ranges."""
    equity = pl.read_csv(folder / "equity.csv")
    steps = 0.2 * np.where(np.arange(equity.height) % 2, -1.0, 1.0)
    steps += np.random.default_rng(1).normal(0.0, 0.01, equity.height)
    equity.with_columns(pl.Series("close", 100.0 * np.exp(np.cumsum(steps)))).write_csv(
        folder / "equity.csv")


def test_every_calibration_clip_is_a_warning_check(
    folder: Path, data_root: Path, instance: dg.DagsterInstance
) -> None:
    _wild_equity(folder)
    (folder / "vol_surface.csv").unlink()  # Heston from the history's moments
    result = _ingest(folder, data_root, instance, [market_data, calibration, market_regimes])
    assert result.success, failure_text(result)

    (check,) = [e for e in result.get_asset_check_evaluations()
                if e.check_name == "calibration_within_model_ranges"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    details = check.metadata["clipped"].value
    assert "equity_vol 3.1" in details and "clipped to 2" in details
    assert "equity_drift" in details and "clipped to 1" in details
    assert "variance autocovariance" in details and "b set to 0.99" in details  # estimator's


def test_constant_prices_are_refused_before_anything_is_stored(
    folder: Path, data_root: Path, instance: dg.DagsterInstance
) -> None:
    assert _ingest(folder, data_root, instance).success
    before = snapshot(data_root)

    _rewrite(folder / "equity.csv", lambda f: f.with_columns(pl.lit("2000.0").alias("close")))
    bad = _ingest(folder, data_root, instance)

    assert not bad.success
    text = failure_text(bad)
    assert f"{folder / 'equity.csv'}: column 'close', rule constant_price" in text
    assert "ZeroDivisionError" not in text
    assert snapshot(data_root) == before


def test_market_data_is_not_stored_when_its_calibration_fails(
    folder: Path, data_root: Path, instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """market_data and calibration never come from different inputs: the new market is
    calibrated (all but the surface fit) before it is stored."""
    assert _ingest(folder, data_root, instance).success
    before = snapshot(data_root)
    (folder / "vol_surface.csv").unlink()

    def broken(close: np.ndarray) -> dict[str, float]:
        raise FloatingPointError("no variance to fit")

    monkeypatch.setattr("engine.market.calibration.heston_moments", broken)
    bad = _ingest(folder, data_root, instance)

    assert not bad.success
    assert "rule not_calibratable: FloatingPointError: no variance to fit" in failure_text(bad)
    assert snapshot(data_root) == before


def test_calendar_arbitrage_is_found_between_expiries_with_different_strikes(
    folder: Path
) -> None:
    """Strikes against a forward that grows with expiry: no two expiries share a
    log-moneyness, and the 2y total variance 0.13^2 x 2 is below the 1y 0.2^2 x 1."""
    strikes = [2400.0, 2550.0, 2700.0, 2850.0, 3000.0]
    pl.DataFrame({
        "expiry_years": [1.0] * 5 + [2.0] * 5, "strike": strikes * 2,
        "forward": [2700.0 * np.exp(0.02)] * 5 + [2700.0 * np.exp(0.04)] * 5,
        "implied_vol": [0.2] * 5 + [0.13] * 5,
    }).write_csv(folder / "vol_surface.csv")
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert f"{folder / 'vol_surface.csv'}: column 'implied_vol', row 6: rule" \
        " calendar_arbitrage" in text


@pytest.mark.parametrize(("frequency", "shown"), [("0", "0.0"), ("2.7", "2.7"), ("", "None"),
                                                  ("NaN", "nan")])
def test_par_curve_frequency_is_checked_at_the_edge(folder: Path, frequency: str,
                                                    shown: str) -> None:
    _rewrite(folder / "yield_curve.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(frequency)).otherwise(pl.lit("2"))
        .alias("frequency")))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert (f"{folder / 'yield_curve.csv'}: column 'frequency', row 2: rule frequency:"
            f" {shown} is not one of 1, 2, 4, 12") in text


def test_semiannual_par_rates_reach_the_calibration(
    folder: Path, data_root: Path, instance: dg.DagsterInstance
) -> None:
    """The stored curve keeps its frequency and the calibration bootstraps with it: for
    4% (0.5y) and 5% (1y) semi-annual par rates, P(0.5) = 1 / 1.02 and P(1) = (1 - 0.025
    P(0.5)) / 1.025, a 1y zero rate of 4.9508% (read as annual: 4.879%)."""
    pl.DataFrame({"tenor_years": [0.5, 1.0], "par_rate": [0.04, 0.05],
                  "frequency": [2, 2]}).write_csv(folder / "yield_curve.csv")
    result = _ingest(folder, data_root, instance)
    assert result.success, failure_text(result)
    p_half = 1.0 / 1.02
    p_one = (1.0 - 0.025 * p_half) / 1.025
    (event,) = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("calibration")]
    zero_curve = event.materialization.metadata["zero_curve"].value
    one_year = next(line for line in zero_curve.splitlines() if line.startswith("| 1 |"))
    np.testing.assert_allclose(float(one_year.split("|")[2]), -np.log(p_one), atol=1e-5)


def test_csv_in_another_locale_says_what_was_expected(folder: Path) -> None:
    text = (folder / "equity.csv").read_text()
    (folder / "equity.csv").write_text(text.replace(",", ";").replace(".", ","))
    message = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert f"{folder / 'equity.csv'}: rule csv_format:" in message
    assert "';'-separated" in message and "comma-separated with '.' decimals" in message
    assert "truncate_ragged_lines" not in message

    (folder / "equity.csv").write_text(text.replace("2057.1", "2057,1"))
    message = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "rule csv_format:" in message and "decimal comma" in message
    assert "truncate_ragged_lines" not in message


def test_percent_vols_and_duplicate_points_have_their_own_rules(folder: Path) -> None:
    original = (folder / "vol_surface.csv").read_text()
    _rewrite(folder / "vol_surface.csv", lambda f: f.with_columns(
        pl.col("implied_vol").cast(pl.Float64) * 100))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "column 'implied_vol', row 0: rule vol_in_percent" in text
    assert "arbitrage" not in text

    (folder / "vol_surface.csv").write_text(original)
    _rewrite(folder / "vol_surface.csv", lambda f: pl.concat([f, f.slice(3, 1)]))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "row 25: rule duplicate_point: expiry 0.08333" in text and "same as row 3" in text
    assert "arbitrage" not in text


def test_all_zero_holdings_are_refused_at_ingest(folder: Path) -> None:
    _rewrite(folder / "holdings.csv", lambda f: f.with_columns(pl.lit("0").alias("units")))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert f"{folder / 'holdings.csv'}: column 'units': rule holdings_units: every unit" in text


def test_low_rate_era_percent_rates_are_refused(folder: Path) -> None:
    """0.36 as a percent (0.36%) read as a decimal is a 36% short rate."""
    _rewrite(folder / "risk_free.csv", lambda f: f.with_columns(
        (pl.int_range(pl.len()) % 10 * 0.04).cast(pl.String).alias("risk_free")))
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert "risk_free.csv: column 'risk_free', row 7" in text
    assert "rule rate_in_percent: 0.28 is above 0.25" in text


def test_symlinks_out_of_the_folder_are_refused_without_reading_them(
    folder: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.env"
    secret.write_text("AWS_SECRET_ACCESS_KEY=hunter2\n")
    (folder / "equity.csv").unlink()
    (folder / "equity.csv").symlink_to(secret)
    text = _violations(MarketDataSource(kind="files", path=str(folder)))
    assert f"{folder / 'equity.csv'}: rule outside_folder: a link to a file outside" in text
    assert "hunter2" not in text and "AWS_SECRET" not in text
    # a link inside the folder is an ordinary file
    (folder / "equity.csv").unlink()
    pl.read_csv(SAMPLE_DATA / "equity.csv").filter(pl.col("date") >= "2014-12-01").write_csv(
        folder / "equity-2018.csv")
    (folder / "equity.csv").symlink_to(folder / "equity-2018.csv")
    assert _fetch(MarketDataSource(kind="files", path=str(folder)), SAMPLE_END).history.height


@pytest.mark.parametrize("as_of", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_as_of_is_bounded(as_of: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="as_of"):
        MarketDataConfig(as_of=as_of)


def test_a_future_as_of_is_refused() -> None:
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    with pytest.raises(pydantic.ValidationError, match="after today"):
        MarketDataConfig(as_of=tomorrow.isoformat())
    MarketDataConfig(as_of=dt.datetime.now(dt.UTC).date().isoformat())


def test_a_stored_file_swapped_with_its_checksum_is_refused(
    folder: Path, data_root: Path, instance: dg.DagsterInstance
) -> None:
    """Yesterday's market_data.parquet and its .sha256 put back together agree with each
    other, but not with the checksum Dagster recorded at the last materialization."""
    assert _ingest(folder, data_root, instance, [market_data]).success
    stored = data_root / "market_data.parquet"
    checksum = data_root / ".checksums" / "market_data.parquet.sha256"
    old = stored.read_bytes(), checksum.read_bytes()

    _rewrite(folder / "equity.csv", lambda f: f.head(f.height - 5))
    assert _ingest(folder, data_root, instance, [market_data]).success
    stored.write_bytes(old[0])
    checksum.write_bytes(old[1])

    result = _ingest(folder, data_root, instance, [*market_data.to_source_assets(),
                                                   calibration])
    assert not result.success
    text = failure_text(result)
    assert "market_data: " in text and "recorded by Dagster" in text
    assert "replaced outside Dagster" in text
