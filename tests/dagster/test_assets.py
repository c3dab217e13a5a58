"""Assets one by one: direct calls (build_asset_context) and small materializations.

Direct calls check what an asset computes from given inputs; materializations check the
partitioning, the files written and the asset checks, against tmp storage and a tmp
instance. Partitioned stages run the way the pipeline runs them (one run per stage,
partition range tags from ``dynalloc_dagster.orchestration.stages``).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pydantic
import pytest
from dagster_test_support import (
    AS_OF,
    HORIZON_YEARS,
    N_CONFIGS,
    WARMUP_MONTHS,
    Upstream,
    failure_text,
    run_job,
    small_run_config,
    snapshot,
)

from dynalloc_dagster.assets import strategies
from dynalloc_dagster.assets.ingestion import (
    MarketDataConfig,
    calibration,
    market_data,
    market_data_sanity,
)
from dynalloc_dagster.assets.scenarios import (
    MarketRegimesConfig,
    ScenarioPathsConfig,
    market_regimes,
    scenario_paths,
)
from dynalloc_dagster.assets.strategies import StrategyConfigsConfig, strategy_configs
from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.environment import resources_for
from dynalloc_dagster.orchestration.stages import evaluation_range_tags, stage_request
from dynalloc_dagster.partitions import SCENARIOS, batch_partitions
from dynalloc_dagster.resources import MarketDataSource, ObjectivesResource, OptimisationAgent
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager, load_scenario_paths
from dynalloc_dagster.tags import EVALUATIONS_JOB, INGEST_JOB, SCENARIOS_JOB
from engine.conventions import TRADING_DAYS_PER_MONTH
from engine.market.calibration import Calibration, calibrated_regime
from engine.market.regimes import REGIMES
from engine.market.yield_curve import curve_from_frame

INGEST_TABLES = ("market_data", "market_vol_surface", "market_yield_curve", "market_holdings")


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    """market_data's four tables for a 3-year synthetic market, from a direct call."""
    outputs = market_data(MarketDataConfig(as_of=AS_OF), market_source=MarketDataSource(years=3))
    return {output.output_name: output.value for output in outputs}


@pytest.fixture(scope="module")
def history(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return tables["market_data"]


@pytest.fixture(scope="module")
def fitted(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return calibration(tables["market_data"], tables["market_vol_surface"],
                       tables["market_yield_curve"]).value


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _evaluation_files(root: Path) -> dict[str, bytes]:
    folder = root / "strategy_evaluations"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def _key(batch: str, scenario: str) -> str:
    return str(dg.MultiPartitionKey({"batch": batch, "scenario": scenario}))


# --- ingestion ---------------------------------------------------------------------------


def test_market_data_materializes_its_tables_and_passes_sanity(
    data_root: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [market_data, market_data_sanity], instance=instance,
        resources=resources_for("local", data_root=str(data_root)),
        run_config={"ops": {"market_data": {"config": {"as_of": AS_OF}}}},
    )

    assert result.success
    assert sorted(p.name for p in data_root.iterdir() if not p.name.startswith(".")) == [
        f"{t}.parquet" for t in sorted(INGEST_TABLES)]
    assert _check_results(result) == {"market_data_sanity": True}
    meta = {event.asset_key.to_user_string(): event.materialization.metadata
            for event in result.get_asset_materialization_events()}
    assert set(meta) == set(INGEST_TABLES)
    assert meta["market_data"]["as_of"].value == AS_OF
    stored = pl.read_parquet(data_root / "market_data.parquet")
    assert meta["market_data"]["dagster/row_count"].value == stored.height >= 252
    assert stored["date"].max() == dt.date.fromisoformat(AS_OF)  # a Friday: the last row
    assert stored.columns == ["date", "close", "bond_close", "risk_free", "dividend_yield"]
    holdings = pl.read_parquet(data_root / "market_holdings.parquet")
    assert holdings.to_dicts() == [{"asset": "equity", "weight": 0.6},
                                   {"asset": "bond", "weight": 0.4}]


def test_market_data_sanity_reports_each_problem(history: pl.DataFrame) -> None:
    assert market_data_sanity(history).passed

    broken = pl.concat([history, history.tail(1)]).with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(-1.0).otherwise(pl.col("close")).alias("close")
    )
    result = market_data_sanity(broken)
    assert not result.passed
    details = result.metadata["details"].value
    assert result.metadata["violations"].value == 2
    assert f"row 5 ({history['date'][5]}): rule non_positive_price" in details
    assert f"row {history.height} ({history['date'][-1]}): rule duplicate_date" in details

    short = market_data_sanity(history.head(100))
    assert not short.passed
    assert "rule history_too_short: 100 rows, need at least 756" in short.metadata[
        "details"].value


def test_calibration_fits_heston_to_the_surface_with_its_figures_as_metadata(
    tables: dict[str, pl.DataFrame],
) -> None:
    result = calibration(tables["market_data"], tables["market_vol_surface"],
                         tables["market_yield_curve"])
    assert result.value.height == 1
    row = result.value.row(0, named=True)
    for name in ("equity_drift", "equity_vol", "heston_kappa", "vol_of_vol",
                 "spot_variance_corr", "equity_bond_corr", "short_rate", "rate_vol",
                 "heston_rmse_vol", "heston_fit_seconds"):
        assert result.metadata[name] == round(row[name], 6), name
    assert row["heston_source"] == "surface"
    assert row["as_of"] == dt.date.fromisoformat(AS_OF)
    # the synthetic surface is the Heston model's own with the base regime's parameters
    base = REGIMES["base"]
    np.testing.assert_allclose(
        [row["heston_kappa"], row["heston_theta"], row["vol_of_vol"], row["spot_variance_corr"]],
        [base.heston_kappa, base.variance, base.vol_of_vol, base.spot_variance_corr],
        atol=1e-4)
    assert row["heston_rmse_vol"] < 1e-4
    # the short rate is the curve's instantaneous forward at 0, not the last rate
    curve = curve_from_frame(tables["market_yield_curve"])
    assert row["short_rate"] == pytest.approx(curve.short_rate, abs=1e-12)


def test_calibration_without_surface_or_curve_takes_history(history: pl.DataFrame) -> None:
    empty_surface = pl.DataFrame(schema={"expiry_years": pl.Float64,
                                         "log_moneyness": pl.Float64, "implied_vol": pl.Float64})
    empty_curve = pl.DataFrame(schema={"tenor_years": pl.Float64, "zero_yield": pl.Float64})
    row = calibration(history, empty_surface, empty_curve).value.row(0, named=True)
    assert row["heston_source"] == "history"
    assert row["short_rate"] == history["risk_free"][-1]


def test_market_regimes_are_the_five_and_the_calibrated_one(fitted: pl.DataFrame) -> None:
    table = market_regimes(MarketRegimesConfig(), fitted).value
    assert table["name"].to_list() == list(SCENARIOS) == [*REGIMES, "calibrated"]
    fields = dict(fitted.row(0, named=True))
    fields.pop("as_of")
    expected_calibrated = calibrated_regime(Calibration(**fields)).to_dict()
    for row in table.iter_rows(named=True):
        expected = (expected_calibrated if row["name"] == "calibrated"
                    else REGIMES[row["name"]].to_dict())
        assert {k: row[k] for k in expected} == expected
        assert row["as_of"] == dt.date.fromisoformat(AS_OF)
    calibrated = table.row(5, named=True)
    assert calibrated["heston_kappa"] == pytest.approx(fields["heston_kappa"])
    assert calibrated["equity_vol"] == pytest.approx(math.sqrt(fields["heston_theta"]))
    # the history has a bond index: every scenario holds it
    assert set(table["defensive_leg"]) == {fields["defensive_leg"]} == {"bond"}


def test_without_a_bond_index_every_scenario_holds_cash(fitted: pl.DataFrame) -> None:
    cash = fitted.with_columns(pl.lit("cash").alias("defensive_leg"))
    table = market_regimes(MarketRegimesConfig(), cash).value
    assert set(table["defensive_leg"]) == {"cash"}
    context = dg.build_asset_context(partition_key="bear")
    outputs = list(scenario_paths(context, ScenarioPathsConfig(
        n_paths=4, horizon_years=1, warmup_months=0), table))
    paths = outputs[0].value["bear"]
    assert paths.leg == "cash" and paths.defensive is paths.cash
    assert outputs[0].metadata["defensive_leg"].value == "cash"


def test_market_regimes_applies_overrides(fitted: pl.DataFrame) -> None:
    config = MarketRegimesConfig(overrides={"bear": {"equity_vol": 0.4, "short_rate": 0.005}})
    table = market_regimes(config, fitted).value
    rows = {row["name"]: row for row in table.iter_rows(named=True)}

    assert rows["bear"]["equity_vol"] == 0.4
    assert rows["bear"]["short_rate"] == 0.005
    assert rows["bear"]["equity_drift"] == REGIMES["bear"].equity_drift
    for name in ("base", "bull", "high_vol", "low_vol"):
        assert rows[name]["equity_vol"] == REGIMES[name].equity_vol


def test_market_regimes_can_take_the_calibrated_dynamics(fitted: pl.DataFrame) -> None:
    calibrated = fitted.row(0, named=True)
    table = market_regimes(MarketRegimesConfig(use_calibrated_dynamics=True), fitted).value
    plain = market_regimes(MarketRegimesConfig(), fitted).value
    for row in table.iter_rows(named=True):
        for name in ("heston_kappa", "vol_of_vol", "spot_variance_corr", "rate_vol"):
            assert row[name] == pytest.approx(calibrated[name]), (row["name"], name)
        if row["name"] != "calibrated":
            assert row["equity_vol"] == REGIMES[row["name"]].equity_vol
            assert row["heston_kappa"] != REGIMES[row["name"]].heston_kappa
    assert table.row(5) == plain.row(5)  # the calibrated regime has them either way


def test_market_regimes_overrides_the_calibrated_regime(fitted: pl.DataFrame) -> None:
    config = MarketRegimesConfig(overrides={"calibrated": {"equity_drift": 0.04}})
    table = market_regimes(config, fitted).value
    assert table.filter(pl.col("name") == "calibrated")["equity_drift"][0] == 0.04


def test_market_regimes_config_rejects_an_unknown_scenario() -> None:
    with pytest.raises(pydantic.ValidationError,
                       match=r"unknown scenario\(s\) crash; allowed: base, bull"):
        MarketRegimesConfig(overrides={"crash": {"equity_vol": 0.5}})


def test_market_regimes_config_rejects_an_out_of_range_override() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"equity_vol = -0\.4 is outside"):
        MarketRegimesConfig(overrides={"bear": {"equity_vol": -0.4}})


def test_market_regimes_unknown_scenario_fails_the_run_naming_it(
    data_root: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [market_data, calibration, market_regimes], instance=instance,
        resources=resources_for("local", data_root=str(data_root)),
        run_config={"ops": {"market_data": {"config": {"as_of": AS_OF}},
                            "market_regimes": {"config": {"overrides": {"crash": {}}}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert "unknown scenario(s) crash" in failure_text(result)
    assert not (data_root / "market_regimes.parquet").exists()


# --- scenario paths ----------------------------------------------------------------------


def _paths_config(n_paths: int, seed: int = 0) -> dict:
    return small_run_config(n_paths=n_paths, seed=seed)


def test_scenario_paths_one_partition(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    folder = upstream.root / "scenario_paths"
    untouched = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "bear.npz"}

    result = run_job(defs, SCENARIOS_JOB, instance, partition_key="bear",
                     run_config=_paths_config(30, seed=7))

    assert result.success, failure_text(result)
    assert [m.partition for m in result.get_asset_materialization_events()] == ["bear"]
    paths = load_scenario_paths(folder / "bear.npz")
    n_steps = (WARMUP_MONTHS + 12 * HORIZON_YEARS) * TRADING_DAYS_PER_MONTH
    assert paths.equity.shape == (30, n_steps + 1)
    assert paths.regime == REGIMES["bear"]
    assert paths.warmup_months == WARMUP_MONTHS
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "bear.npz"} == untouched
    assert set(_check_results(result)) == {"discounted_martingale", "realized_vol_matches_regime"}

    again = run_job(defs, SCENARIOS_JOB, instance, partition_key="bear",
                    run_config=_paths_config(30, seed=7))
    assert again.success
    repeat = load_scenario_paths(folder / "bear.npz")
    for name in ("equity", "variance", "short_rate", "bond", "cash"):
        assert np.array_equal(getattr(repeat, name), getattr(paths, name)), name


def test_scenario_paths_of_two_as_of_dates_are_new_draws(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    """The weekly refresh: the same run seed on the next week's market data draws new
    paths for a named regime (whose parameters do not depend on the data), and going back
    to the first as-of date draws the first week's paths again."""
    folder = upstream.root / "scenario_paths"

    def bear_paths_as_of(as_of: str) -> np.ndarray:
        config = _paths_config(30, seed=7)
        config["ops"]["market_data"]["config"]["as_of"] = as_of
        ingest = run_job(defs, INGEST_JOB, instance, run_config=config)
        assert ingest.success, failure_text(ingest)
        paths = run_job(defs, SCENARIOS_JOB, instance, partition_key="bear", run_config=config)
        assert paths.success, failure_text(paths)
        [event] = paths.get_asset_materialization_events()
        assert event.materialization.metadata["as_of"].value == as_of
        return load_scenario_paths(folder / "bear.npz").equity

    week_one = bear_paths_as_of(AS_OF)
    next_week = (dt.date.fromisoformat(AS_OF) + dt.timedelta(days=7)).isoformat()
    week_two = bear_paths_as_of(next_week)
    assert week_one.shape == week_two.shape
    assert not np.array_equal(week_one, week_two)
    assert np.array_equal(bear_paths_as_of(AS_OF), week_one)


def test_scenario_paths_range_in_one_run_passes_both_checks(
    defs: dg.Definitions, data_root: Path, upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    tags = stage_request(SCENARIOS_JOB, instance, pipeline="manual").tags
    result = run_job(defs, SCENARIOS_JOB, instance, tags=tags, run_config=_paths_config(200))

    assert result.success, failure_text(result)
    assert sorted(m.partition for m in result.get_asset_materialization_events()) == sorted(
        SCENARIOS)
    assert _check_results(result) == {"discounted_martingale": True,
                                      "realized_vol_matches_regime": True}
    for name in SCENARIOS:
        paths = load_scenario_paths(data_root / "scenario_paths" / f"{name}.npz")
        assert paths.n_paths == 200
        assert paths.regime.name == name
    # different scenarios draw different numbers (seeded by (seed, scenario name))
    base = load_scenario_paths(data_root / "scenario_paths" / "base.npz")
    bull = load_scenario_paths(data_root / "scenario_paths" / "bull.npz")
    assert not np.array_equal(base.equity, bull.equity)


# --- strategy configs: the agent's rounds ----------------------------------------------


def _store(data_root: Path, asset: str, table: pl.DataFrame) -> None:
    """Store ``table`` as the IO manager does (with its checksum)."""
    PolarsParquetIOManager(root=str(data_root)).handle_output(
        dg.build_output_context(asset_key=asset), table)


def _round(instance: dg.DagsterInstance, data_root: Path, round_index: int, *,
           seed: int = 3, proposer: str = "tpe") -> dg.MaterializeResult:
    """One direct call of strategy_configs, storing its table like the IO manager does."""
    io_manager = PolarsParquetIOManager(root=str(data_root))
    result = strategy_configs(
        dg.build_asset_context(instance=instance), StrategyConfigsConfig(round=round_index),
        agent=OptimisationAgent(initial_batch=N_CONFIGS, batch_size=4, max_configs=16,
                                seed=seed, proposer=proposer),
        objectives=ObjectivesResource(), bedrock=BedrockResource(), io_manager=io_manager,
    )
    data_root.mkdir(parents=True, exist_ok=True)
    _store(data_root, "strategy_configs", result.value)
    instance.report_runless_asset_event(dg.AssetMaterialization(
        "strategy_configs", metadata=result.metadata))
    return result


def test_round_zero_is_a_latin_hypercube_batch_registered_as_partitions(
    instance: dg.DagsterInstance, data_root: Path,
) -> None:
    first = _round(instance, data_root, 0)

    table = first.value
    ids = table["config_id"].to_list()
    assert len(set(ids)) == N_CONFIGS
    assert table["round"].to_list() == [0] * N_CONFIGS
    assert set(table["proposer"]) == {"lhs"}
    assert set(table["tc_bps"]) == {ObjectivesResource().assumed_tc_bps}
    (batch,) = set(table["batch"])
    assert batch.startswith("r000-")
    assert instance.get_dynamic_partitions(batch_partitions.name) == [batch]
    assert first.metadata["batch"] == batch
    inverse = table.filter(pl.col("weight_fn").str.starts_with("inverse"))
    assert inverse["risk_aversion"].is_null().all()

    again = _round(instance, data_root, 0)
    assert again.value.equals(table)
    assert instance.get_dynamic_partitions(batch_partitions.name) == [batch]


def test_a_new_loop_with_another_seed_replaces_the_registered_ids(
    instance: dg.DagsterInstance, data_root: Path,
) -> None:
    old = _round(instance, data_root, 0, seed=1)
    new = _round(instance, data_root, 0, seed=2)

    assert not set(new.value["config_id"]) & set(old.value["config_id"])
    assert instance.get_dynamic_partitions(batch_partitions.name) == [new.value["batch"][0]]


def test_a_later_round_needs_the_history_of_the_round_before(
    instance: dg.DagsterInstance, data_root: Path,
) -> None:
    _round(instance, data_root, 0)
    with pytest.raises(ValueError, match="needs the configs and the optimisation history"):
        _round(instance, data_root, 1)


def _fake_history(configs: pl.DataFrame, stop_reason: str | None = None) -> pl.DataFrame:
    return configs.with_columns(
        pl.int_range(1, pl.len() + 1).alias("evaluation_index"),
        (pl.int_range(pl.len()) / 10.0).alias("objective"),
        pl.lit(stop_reason, dtype=pl.String).alias("stop_reason"),
    )


@pytest.mark.parametrize("proposer", ["tpe", "lhs"])
def test_a_later_round_appends_a_batch_proposed_from_the_history(
    instance: dg.DagsterInstance, data_root: Path, proposer: str,
) -> None:
    first = _round(instance, data_root, 0)
    _store(data_root, "optimisation_history", _fake_history(first.value))

    second = _round(instance, data_root, 1, proposer=proposer)

    table = second.value
    assert table.head(N_CONFIGS).equals(first.value)
    new = table.filter(pl.col("round") == 1)
    assert new.height == 4
    # local_share 0.5: the global proposer's half, then the trust region's
    assert new["proposer"].to_list() == [proposer] * 2 + ["trust_region"] * 2
    assert table["config_id"].n_unique() == N_CONFIGS + 4
    assert instance.get_dynamic_partitions(batch_partitions.name) == table["batch"].unique(
        maintain_order=True).to_list()
    assert new["batch"][0].startswith("r001-")
    assert second.metadata["loop_started_at"] == first.metadata["loop_started_at"]


def test_a_stopped_loop_takes_no_further_round(
    instance: dg.DagsterInstance, data_root: Path,
) -> None:
    first = _round(instance, data_root, 0)
    _store(data_root, "optimisation_history", _fake_history(first.value, "converged"))
    with pytest.raises(ValueError, match=r"the loop stopped at round 0 \(converged\)"):
        _round(instance, data_root, 1)


# --- strategy evaluations ----------------------------------------------------------------


def test_strategy_evaluations_one_key_alone(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    key = _key(upstream.batch, "bear")

    result = run_job(defs, EVALUATIONS_JOB, instance, partition_key=key)

    assert result.success, failure_text(result)
    assert [m.partition for m in result.get_asset_materialization_events()] == [key]
    name = f"batch={upstream.batch}/scenario=bear.parquet"
    assert list(_evaluation_files(upstream.root)) == [name]
    rows = pl.read_parquet(upstream.root / "strategy_evaluations" / f"batch={upstream.batch}"
                           / "scenario=bear.parquet")
    assert rows["config_id"].to_list() == upstream.config_ids
    assert set(rows["scenario"]) == {"bear"}
    assert set(rows["n_paths"]) == {50}


@pytest.fixture
def evaluated(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance
) -> dict[str, bytes]:
    """Every scenario of the batch evaluated in one run; the stored files' bytes."""
    result = run_job(defs, EVALUATIONS_JOB, instance, tags=evaluation_range_tags(upstream.batch))
    assert result.success, failure_text(result)
    keys = [m.partition for m in result.get_asset_materialization_events()]
    assert sorted(keys) == sorted(_key(upstream.batch, s) for s in SCENARIOS)
    (metadata,) = {
        m.materialization.metadata["keys_in_run"].value
        for m in result.get_asset_materialization_events()
    }
    assert metadata == len(SCENARIOS)
    return _evaluation_files(upstream.root)


def test_strategy_evaluations_one_file_per_scenario_and_batch(
    evaluated: dict[str, bytes], upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    assert sorted(evaluated) == sorted(f"batch={upstream.batch}/scenario={s}.parquet"
                                       for s in SCENARIOS)
    for name in evaluated:
        rows = pl.read_parquet(upstream.root / "strategy_evaluations" / name)
        assert rows["config_id"].to_list() == upstream.config_ids
        assert set(rows["scenario"]) == {name.split("scenario=")[1].removesuffix(".parquet")}
    assert len(instance.get_runs()) == 1
    done = instance.get_materialized_partitions(dg.AssetKey("strategy_evaluations"))
    assert done == {_key(upstream.batch, s) for s in SCENARIOS}


def test_strategy_evaluations_rerun_is_idempotent(
    evaluated: dict[str, bytes], defs: dg.Definitions, upstream: Upstream,
    instance: dg.DagsterInstance,
) -> None:
    result = run_job(defs, EVALUATIONS_JOB, instance, tags=evaluation_range_tags(upstream.batch))
    assert result.success, failure_text(result)
    assert _evaluation_files(upstream.root) == evaluated


def test_strategy_evaluations_unknown_batch_fails_and_leaves_other_keys(
    evaluated: dict[str, bytes], defs: dg.Definitions, upstream: Upstream,
    instance: dg.DagsterInstance,
) -> None:
    instance.add_dynamic_partitions(batch_partitions.name, ["r009-feedface"])
    before = snapshot(upstream.root)

    result = run_job(defs, EVALUATIONS_JOB, instance,
                     partition_key=_key("r009-feedface", "base"))

    assert not result.success
    assert "batches not in strategy_configs" in failure_text(result)
    assert "r009-feedface" in failure_text(result)
    assert snapshot(upstream.root) == before


def test_strategy_evaluations_engine_failure_leaves_stored_keys(
    evaluated: dict[str, bytes], defs: dg.Definitions, upstream: Upstream,
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_evaluate = strategies.evaluate

    def evaluate_failing_in_high_vol(paths, configs, objectives=None):
        if paths.regime.name == "high_vol":
            raise FloatingPointError("NaN weights in high_vol")
        return real_evaluate(paths, configs, objectives)

    monkeypatch.setattr(strategies, "evaluate", evaluate_failing_in_high_vol)
    before = snapshot(upstream.root)

    result = run_job(defs, EVALUATIONS_JOB, instance, tags=evaluation_range_tags(upstream.batch))

    assert not result.success
    assert "NaN weights in high_vol" in failure_text(result)
    assert snapshot(upstream.root) == before
    assert not list(upstream.root.rglob("*.tmp"))


def test_strategy_evaluations_missing_paths_fail_naming_them(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance
) -> None:
    (upstream.root / "scenario_paths" / "low_vol.npz").unlink()
    result = run_job(defs, EVALUATIONS_JOB, instance,
                     partition_key=_key(upstream.batch, "low_vol"))
    assert not result.success
    assert "scenario_paths: 1 partition(s) not materialized" in failure_text(result)
    assert not (upstream.root / "strategy_evaluations").exists()
