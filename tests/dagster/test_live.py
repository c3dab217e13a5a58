"""The live signal on the shipped real sample: the historical backtest against its
benchmarks, today's allocation and trades, the regime classifier with its shift check,
the degradation check and the re-optimisation sensor. Direct calls, hand-computed
references."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster._core.events import StepMaterializationData
from dagster._core.utils import make_new_run_id

from dynalloc_dagster.assets.live import (
    MARKET_REGIME,
    RECOMMENDED,
    historical_backtest,
    market_regime,
    rule_underperformance,
    todays_allocation,
)
from dynalloc_dagster.environment import resources_for
from dynalloc_dagster.market_sources import FolderReader, load_tables
from dynalloc_dagster.orchestration.monitoring import (
    PIPELINE,
    regime_shift_reoptimisation,
    reoptimisation_request,
)
from dynalloc_dagster.resources import SAMPLE_DATA, MarketDataSource, ObjectivesResource
from dynalloc_dagster.storage.metadata import png_data_uri
from dynalloc_dagster.tags import PIPELINE_TAG, RUN_CONFIG_TAG, START_JOB
from engine.market.regimes import REGIMES
from engine.strategy import StrategyConfig

SAMPLE_SOURCE = MarketDataSource(kind="files", path=str(SAMPLE_DATA))
RULES = [StrategyConfig(target_vol=0.10, weight_fn="inverse_vol", vol_window_months=12,
                        tc_bps=10.0, no_trade_band=0.02),
         StrategyConfig(target_vol=0.08, weight_fn="linear", vol_window_months=6,
                        risk_aversion=2.0, tc_bps=10.0)]


@pytest.fixture(scope="module")
def sample() -> dict[str, pl.DataFrame]:
    inputs = load_tables(FolderReader(SAMPLE_DATA), as_of=None)
    history = inputs.history.with_columns(pl.lit(0.0).alias("dividend_yield"))
    return {"market_data": history, "market_holdings": inputs.holdings}


@pytest.fixture(scope="module")
def configs() -> pl.DataFrame:
    return pl.DataFrame([{"config_id": c.config_id, **c.to_dict()} for c in RULES],
                        schema_overrides={"risk_aversion": pl.Float64})


@pytest.fixture(scope="module")
def leaderboard(configs: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"config_id": configs["config_id"], "rank": [1, 2]})


@pytest.fixture
def artifacts(tmp_path: Path):
    return resources_for("local", data_root=str(tmp_path / "data"))["artifacts"]


def _recommended(configs: pl.DataFrame, weight: float) -> pl.DataFrame:
    """A recommended_allocation row: the first rule with today's weight and its status."""
    return configs.head(1).with_columns(
        pl.lit(weight).alias("equity_weight_today"), pl.lit("inverse vol").alias("rule"),
        pl.lit("Meets the mandate in 4 of 6 scenarios.").alias("mandate_status"))


def _regimes() -> pl.DataFrame:
    return pl.DataFrame([r.to_dict() | {"feller_satisfied": True} for r in REGIMES.values()])


def test_historical_backtest_on_the_sample(
    sample: dict[str, pl.DataFrame], configs: pl.DataFrame, leaderboard: pl.DataFrame,
    artifacts, tmp_path: Path,
) -> None:
    outputs = {o.output_name: o for o in historical_backtest(
        artifacts=artifacts, objectives=ObjectivesResource(), market_source=SAMPLE_SOURCE,
        robustness_leaderboard=leaderboard, strategy_configs=configs,
        market_data=sample["market_data"])}
    table = outputs["historical_backtest"].value
    paths = outputs["historical_backtest_paths"].value
    full = {r["strategy"]: r for r in table.filter(pl.col("period") == "full").iter_rows(
        named=True)}

    assert list(full) == [RECOMMENDED, "#2", "60/40", "100% equity"]
    assert {(r["start"], r["end"], r["months"]) for r in full.values()} == {
        (dt.date(2000, 1, 31), dt.date(2018, 11, 30), 226)}  # the 12-month window is full
    assert full[RECOMMENDED]["config_id"] == RULES[0].config_id
    # 100% equity never trades: buy-and-hold, its return is the index's, hand-computed
    close = sample["market_data"].filter(pl.col("date").is_in([dt.date(2000, 1, 31),
                                                               dt.date(2018, 11, 30)]))["close"]
    hold = full["100% equity"]
    assert hold["turnover"] == 0.0
    np.testing.assert_allclose(hold["ann_return"], (close[1] / close[0]) ** (12 / 226) - 1,
                               rtol=1e-10)
    assert full["60/40"]["turnover"] > 0.0
    assert full[RECOMMENDED]["max_drawdown"] < hold["max_drawdown"]
    # the NAV path compounds the monthly returns
    rec = paths.filter(pl.col("strategy") == RECOMMENDED)
    np.testing.assert_allclose(rec["nav"][-1], np.prod(1 + rec["portfolio_return"].to_numpy()),
                               rtol=1e-12)
    last_year = table.filter(pl.col("period") == "last_year").row(0, named=True)
    assert (last_year["start"], last_year["end"], last_year["months"]) == (
        dt.date(2017, 11, 30), dt.date(2018, 11, 30), 12)
    metadata = outputs["historical_backtest"].metadata
    assert metadata["buy_and_hold_turnover"].value == 0.0
    # provenance: the sample is real history without a bond index, so the leg is cash
    assert set(table["history"]) == {"real history"}
    assert set(table["data_source"]) == {"files market data"}
    assert set(table["data_as_of"]) == {"2018-11-30"}
    assert set(table["defensive_leg"]) == {"cash"}
    assert table["code_version"][0].startswith("dynalloc")
    assert metadata["defensive_leg"].value == "cash"
    assert next(iter(metadata)) == "provenance"
    # each chart is on the asset's page itself (a data URI), the file beside it the same PNG
    gallery = metadata["charts"].value
    for name in ("backtest_nav", "backtest_equity_weight"):
        stored = Path(metadata[name].value.removeprefix("file://")).read_bytes()
        assert stored[:4] == b"\x89PNG"
        assert f"![{name}]({png_data_uri(stored)})" in gallery


def test_todays_allocation_trades_the_held_units_to_the_target(
    sample: dict[str, pl.DataFrame], configs: pl.DataFrame, artifacts,
) -> None:
    recommended = _recommended(configs, 0.35)
    result = todays_allocation(artifacts=artifacts, market_source=SAMPLE_SOURCE,
                               recommended_allocation=recommended,
                               market_data=sample["market_data"],
                               market_holdings=sample["market_holdings"])
    table = result.value

    equity_value, bond_value = 400 * 2760.17, 900_000.0  # holdings.csv at the last close
    nav = equity_value + bond_value
    weight = equity_value / nav
    cost = 10.0 / 1e4 * 2 * abs(0.35 - weight) * nav
    rows = {r["asset"]: r for r in table.iter_rows(named=True)}
    np.testing.assert_allclose(rows["equity"]["current_weight"], weight, rtol=1e-12)
    np.testing.assert_allclose(rows["equity"]["cost"], cost, rtol=1e-12)
    np.testing.assert_allclose(rows["equity"]["value_change"], 0.35 * (nav - cost) - equity_value,
                               rtol=1e-12)
    np.testing.assert_allclose(rows["equity"]["units_change"],
                               (0.35 * (nav - cost) - equity_value) / 2760.17, rtol=1e-12)
    assert table["as_of"].to_list() == ["2018-11-30"] * 2
    assert result.metadata["trade"] is True
    # the sample's holdings are illustrative; the leg is cash; provenance on every row
    assert table["illustrative"].to_list() == [True, True]
    np.testing.assert_allclose(table["nav"].to_list(), [nav, nav], rtol=1e-12)
    assert "illustrative portfolio" in table["illustrative_reason"][0]
    assert table["asset_label"].to_list() == ["equity", "cash"]
    assert set(table["holdings_source"]) == {"the shipped sample's holdings.csv"}
    assert set(table["data_source"]) == {"files market data"}
    assert table["code_version"][0].startswith("dynalloc")
    first_key, first = next(iter(result.metadata.items()))
    assert first_key == "decision" and "ILLUSTRATIVE" in first.value
    assert "equity 35.0%, cash 65.0%" in first.value
    stored = Path(result.metadata["csv"].value.removeprefix("file://")).read_bytes()
    assert pl.read_csv(io.BytesIO(stored), try_parse_dates=True).equals(table)


def test_a_move_inside_the_no_trade_band_is_not_traded(
    sample: dict[str, pl.DataFrame], configs: pl.DataFrame, artifacts,
) -> None:
    recommended = _recommended(configs, 0.61)
    holdings = pl.DataFrame({"asset": ["equity", "bond"], "weight": [0.6, 0.4]})
    source = MarketDataSource(kind="files", path="/srv/market")
    result = todays_allocation(artifacts=artifacts, market_source=source,
                               recommended_allocation=recommended,
                               market_data=sample["market_data"], market_holdings=holdings)
    # real files and real holdings: not illustrative
    assert result.value["illustrative"].to_list() == [False, False]
    assert result.value["holdings_source"][0] == "the holdings table of /srv/market"
    assert result.metadata["trade"] is False  # |0.61 - 0.60| < the 2% band
    assert result.value["weight_change"].to_list() == [0.0, 0.0]


def test_market_regime_warns_when_the_regime_shifts(
    sample: dict[str, pl.DataFrame], tmp_path: Path,
) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        first = list(market_regime(dg.build_asset_context(instance=instance),
                                   market_source=SAMPLE_SOURCE,
                                   market_data=sample["market_data"], market_regimes=_regimes()))
        regime = first[0].metadata["regime"].value
        table = first[0].value
        assert table.height == 5 and table.filter(pl.col("nearest"))["regime"][0] == regime
        assert table.sort("distance")["regime"][0] == regime
        assert first[1].passed  # nothing to compare with
        assert set(table["history"]) == {"real history"}
        assert set(table["as_of"]) == {"2018-11-30"}
        assert table["previous_regime"].null_count() == table.height

        other = "bear" if regime != "bear" else "bull"
        instance.report_runless_asset_event(dg.AssetMaterialization(
            MARKET_REGIME, metadata={"regime": other}))
        second = list(market_regime(dg.build_asset_context(instance=instance),
                                    market_source=SAMPLE_SOURCE,
                                    market_data=sample["market_data"],
                                    market_regimes=_regimes()))
        assert not second[1].passed
        assert second[1].severity == dg.AssetCheckSeverity.WARN
        assert second[0].metadata["previous_regime"].value == other


@pytest.mark.parametrize(("p5", "passed"), [(0.5, False), (-0.2, True)])
def test_rule_underperformance_against_the_simulated_p5(p5: float, passed: bool) -> None:
    backtest = pl.DataFrame({"strategy": [RECOMMENDED, RECOMMENDED], "config_id": ["c1", "c1"],
                             "period": ["full", "last_year"], "sharpe": [0.6, 0.1],
                             "ann_return": [0.05, 0.01], "start": ["a", "b"], "end": ["c", "d"]})
    regime = pl.DataFrame({"regime": ["base", "bear"], "distance": [1.0, 2.0],
                           "nearest": [True, False]})
    evaluations = pl.DataFrame({"config_id": ["c1", "c1", "c2"],
                                "scenario": ["base", "bear", "base"],
                                "sharpe_p5": [p5, 5.0, 5.0], "ann_return_p5": [0.0, 0.0, 0.0]})
    result = rule_underperformance(historical_backtest=backtest, market_regime=regime,
                                   strategy_evaluations=evaluations)
    assert result.passed is passed
    assert result.metadata["simulated_sharpe_p5"].value == p5
    assert result.metadata["realised_sharpe_last_year"].value == 0.1


def _regime_event(instance: dg.DagsterInstance, regime: str, previous: str):
    instance.report_runless_asset_event(dg.AssetMaterialization(
        MARKET_REGIME, metadata={"regime": regime, "previous_regime": previous,
                                 "as_of": "2018-11-30"}))
    return instance.get_latest_materialization_event(MARKET_REGIME)


def test_sensor_starts_a_fresh_optimisation_on_a_shift(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert isinstance(reoptimisation_request(instance, _regime_event(
            instance, "base", "none")), dg.SkipReason)
        assert isinstance(reoptimisation_request(instance, _regime_event(
            instance, "base", "base")), dg.SkipReason)
        request = reoptimisation_request(instance, _regime_event(instance, "bear", "base"))
        assert isinstance(request, dg.RunRequest)
        assert request.job_name == START_JOB
        assert request.tags[PIPELINE_TAG] == PIPELINE
        assert request.run_config["ops"]["market_data"]["config"] == {"as_of": "2018-11-30"}
        assert request.run_config["resources"]["agent"]["config"] == {"seed": 20181130}

        context = dg.build_sensor_context(instance=instance)
        result = regime_shift_reoptimisation.evaluate_tick(context)
        assert [r.job_name for r in result.run_requests or []] == [START_JOB]


def test_the_shift_s_pipeline_config_is_kept_and_the_as_of_seed_wins(tmp_path: Path) -> None:
    """The shift is seen by a run of a pipeline whose run config seeds the agent with 7:
    the new pipeline keeps that config (source, sizes, proposer) but its agent is seeded
    by the as-of date, a fresh search rather than a replay of the old one."""
    old_config = {"ops": {"market_data": {"config": {"as_of": "2018-11-30"}},
                          "scenario_paths": {"config": {"n_paths": 50}}},
                  "resources": {"agent": {"config": {"seed": 7, "proposer": "lhs",
                                                     "max_configs": 24}}}}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = instance.add_run(dg.DagsterRun(
            job_name="reports_job", run_id=make_new_run_id(),
            tags={PIPELINE_TAG: "weekly", RUN_CONFIG_TAG: json.dumps(old_config)}))
        materialization = dg.AssetMaterialization(
            MARKET_REGIME, metadata={"regime": "bear", "previous_regime": "base",
                                     "as_of": "2018-11-30"})
        instance.report_dagster_event(dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.ASSET_MATERIALIZATION.value,
            job_name=run.job_name, event_specific_data=StepMaterializationData(materialization)),
            run_id=run.run_id)
        event = instance.get_latest_materialization_event(MARKET_REGIME)
        assert event.run_id == run.run_id

        request = reoptimisation_request(instance, event)

    assert isinstance(request, dg.RunRequest)
    assert request.run_config["resources"]["agent"]["config"] == {
        "seed": 20181130, "proposer": "lhs", "max_configs": 24}
    assert request.run_config["ops"]["scenario_paths"] == {"config": {"n_paths": 50}}
    assert request.run_config["ops"]["market_data"]["config"] == {"as_of": "2018-11-30"}
    assert json.loads(request.tags[RUN_CONFIG_TAG]) == request.run_config
