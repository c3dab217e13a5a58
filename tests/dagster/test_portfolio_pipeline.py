"""A multi-asset portfolio through the pipeline: the ingest step's ``portfolio`` config,
the calibrated spec, PortfolioPaths in storage, and every asset in today's allocation,
the trades, the backtest, the charts and the report's decision, on the synthetic
source's portfolio market (one level column per asset, named by the asset)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from dagster_test_support import REPO_ROOT, small_run_config

from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.orchestration.cli import read_config
from dynalloc_dagster.orchestration.pipeline import run_pipeline
from dynalloc_dagster.orchestration.run_config import validate_run_config
from dynalloc_dagster.portfolio import PortfolioConfig, asset_weights
from dynalloc_dagster.storage.io_managers import ScenarioPathsIOManager
from engine.market.regimes import REGIMES
from engine.portfolio.calibration import calibrate_equities
from engine.portfolio.examples import GLOBAL_SIX, US_INDICES
from engine.portfolio.paths import PortfolioPaths, simulate_portfolio
from engine.portfolio.spec import TWO_ASSET, PortfolioSpec
from engine.validation import ConfigError

NAMES = list(GLOBAL_SIX.names)


def _config(portfolio: dict | None, **sizes) -> dict:
    config = small_run_config(**sizes)
    if portfolio is not None:
        config["ops"]["market_data"]["config"]["portfolio"] = portfolio
    return config


# --- the spec in run config ---------------------------------------------------------------


def test_a_shipped_name_or_a_mapping_gives_the_spec() -> None:
    assert PortfolioConfig().spec() == TWO_ASSET
    assert PortfolioConfig(name="global_six").spec() == GLOBAL_SIX
    given = json.loads(json.dumps(GLOBAL_SIX.to_dict()))
    assert PortfolioConfig(**given).spec() == GLOBAL_SIX
    validate_run_config(_config(given))


@pytest.mark.parametrize(("portfolio", "message"), [
    ({"name": "global_seven"}, "portfolio.name = 'global_seven' is not a shipped portfolio"),
    ({"name": "global_six", "risky_weights": [1.0]}, "give name (a shipped portfolio) or assets"),
    ({"assets": [{"name": "eq", "asset_class": "equity"},
                 {"name": "ust", "asset_class": "government_bond"}]},
     "Asset('ust').maturity_years is required"),
    ({"assets": [{"name": "eq", "asset_class": "equity", "vol_ratio": 9.0},
                 {"name": "cash", "asset_class": "cash"}]}, "Asset('eq').vol_ratio = 9.0"),
    ({"assets": [{"name": "a", "asset_class": "equity"}, {"name": "b", "asset_class": "equity"},
                 {"name": "c", "asset_class": "cash"}]}, "equity_correlation is required"),
    ({"assets": [{"name": "eq", "asset_class": "equity"},
                 {"name": "c", "asset_class": "cash", "maturity": 2}]}, "maturity"),
    ({"assets": [{"name": "eq", "asset_class": "equity"}, {"name": "c", "asset_class": "cash"}],
      "defensive_weights": [0.5, 0.5]}, "defensive_weights"),
])
def test_a_bad_spec_fails_before_any_run_naming_the_field(portfolio: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=r"ops\.market_data\.config") as error:
        validate_run_config(_config(portfolio))
    assert message in str(error.value)


def test_portfolio_paths_round_trip_through_the_io_manager(tmp_path: Path) -> None:
    manager = ScenarioPathsIOManager(root=str(tmp_path))
    for spec in (GLOBAL_SIX, TWO_ASSET):
        paths = simulate_portfolio(spec, REGIMES["bear"], 4, 5, warmup_months=1,
                                   horizon_years=1)
        back = manager.decode(manager.encode(paths, "k"))
        assert isinstance(back, PortfolioPaths) and back.spec == spec
        assert (back.regime, back.warmup_months, back.measure) == ("bear", 1, "physical")
        for name in ("levels", "variance", "short_rate", "cash"):
            np.testing.assert_array_equal(getattr(back, name), getattr(paths, name))
        assert (back.two_asset is None) == (paths.two_asset is None)
    assert back.two_asset is not None and back.two_asset.regime == REGIMES["bear"]
    np.testing.assert_array_equal(back.two_asset.bond, paths.two_asset.bond)


# --- the pipeline -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole pipeline once on GLOBAL_SIX (20 paths, 6 configs in 2 rounds)."""
    root = tmp_path_factory.mktemp("six") / "data"
    defs = build_definitions(data_root=str(root))
    with dg.instance_for_test() as instance:
        runs = run_pipeline(defs, instance, run_config=_config(
            {"name": "global_six"}, n_paths=20, initial_batch=4, batch_size=2, max_configs=6))
        statuses = [(r.job_name, r.status) for r in runs]
        allocation = instance.get_latest_materialization_event(
            dg.AssetKey("todays_allocation")).asset_materialization.metadata
    return {"root": root, "statuses": statuses, "trades_metadata": allocation}


@pytest.mark.slow
def test_the_six_asset_pipeline_lists_every_asset_in_every_output(six: dict) -> None:
    root: Path = six["root"]
    assert all(status == dg.DagsterRunStatus.SUCCESS for _, status in six["statuses"])
    calibration = pl.read_parquet(root / "calibration.parquet")
    calibrated = PortfolioSpec.from_dict(json.loads(calibration["portfolio"][0]))
    history = pl.read_parquet(root / "market_data.parquet")
    equities = history.select(NAMES[:3]).to_numpy()
    assert calibrated == calibrate_equities(GLOBAL_SIX, np.diff(np.log(equities), axis=0))
    assert calibrated.equity_correlation != GLOBAL_SIX.equity_correlation
    regimes = pl.read_parquet(root / "market_regimes.parquet")
    assert set(regimes["portfolio"]) == {calibration["portfolio"][0]}
    configs = pl.read_parquet(root / "strategy_configs.parquet")
    assert {"risky_mix", "defensive_mix"} <= set(configs.columns)
    evaluations = pl.read_parquet(next((root / "strategy_evaluations").rglob("*.parquet")))
    assert {f"weight_{n}_mean" for n in NAMES} <= set(evaluations.columns)

    recommended = pl.read_parquet(root / "recommended_allocation.parquet").row(0, named=True)
    items = recommended["asset_weights_today"]
    assert f"; equities {recommended['risky_mix'].replace('_', ' ')}, defensive" in \
        recommended["rule"]
    assert [i["asset"] for i in items] == NAMES
    assert sum(i["weight"] for i in items) == pytest.approx(1.0, abs=1e-12)
    assert all(0.0 <= i["weight"] <= 1.0 for i in items)
    assert recommended["equity_weight_today"] == pytest.approx(
        sum(i["weight"] for i in items[:3]), abs=1e-12)
    assert [i["label"] for i in items][::3] == [
        "us_equity: equity index (synthetic, simulated)",
        "ust_2y: 2y government bond, zero-coupon, daily roll (synthetic, simulated)"]

    trades = pl.read_csv(root / "artifacts" / "todays_allocation.csv")
    assert trades["asset"].to_list() == NAMES
    assert trades["target_weight"].sum() == pytest.approx(1.0, abs=1e-9)
    holdings = pl.read_parquet(root / "market_holdings.parquet")
    assert trades["current_weight"].to_list() == pytest.approx(
        [dict(holdings.iter_rows())[n] for n in NAMES])
    assert trades["asset_label"].to_list() == [i["label"] for i in items]

    backtest = pl.read_parquet(root / "historical_backtest.parquet")
    mean_weights = backtest.select(f"weight_{n}_mean" for n in NAMES)
    np.testing.assert_allclose(mean_weights.sum_horizontal(), 1.0, atol=1e-9)

    decision = six["trades_metadata"]["decision"].value
    report = (root / "artifacts" / "report.md").read_text()
    for item in items:
        assert f"{item['asset']} {item['weight']:.1%}" in decision
        assert f"{item['asset']} {item['weight']:.1%}" in report[:report.index("## Narrative")]
        assert item["label"] in report
    assert (root / "artifacts" / "asset_weights.png").read_bytes().startswith(b"\x89PNG")
    bands = pl.read_parquet(root / "allocation_paths.parquet")
    for _, rows in bands.group_by("scenario"):
        assert rows["asset"].unique(maintain_order=True).to_list() == NAMES
    assert (root / "artifacts" / "allocation_dynamics.png").read_bytes().startswith(b"\x89PNG")


US_INDICES_YAML = REPO_ROOT / "examples" / "us_indices.yaml"


def test_the_us_indices_example_reads_the_shipped_real_series() -> None:
    config = read_config(US_INDICES_YAML)
    validate_run_config(config)
    portfolio = config["ops"]["market_data"]["config"]["portfolio"]
    assert PortfolioConfig(**portfolio).spec() == US_INDICES
    source = config["resources"]["market_source"]["config"]
    folder = REPO_ROOT / source["path"]
    assert source["kind"] == "files"
    assert {p.stem for p in (folder / "series").iterdir()} == {"sp500", "nasdaq"}


@pytest.mark.slow
def test_the_us_indices_example_runs_and_allocates_to_both_indices_and_cash(
        tmp_path: Path) -> None:
    """examples/us_indices.yaml through the whole pipeline on the shipped 1999-2018 closes,
    sized down (10 paths, 1-year horizon, 3 configs in 2 rounds)."""
    config = read_config(US_INDICES_YAML)
    small = small_run_config(n_paths=10, initial_batch=2, batch_size=1, max_configs=3)
    config["ops"]["scenario_paths"] = small["ops"]["scenario_paths"]
    config["resources"]["agent"] = small["resources"]["agent"]
    source = config["resources"]["market_source"]["config"]
    source["path"] = str(REPO_ROOT / source["path"])
    root = tmp_path / "data"
    with dg.instance_for_test() as instance:
        runs = run_pipeline(build_definitions(data_root=str(root)), instance,
                            run_config=config)
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    recommended = pl.read_parquet(root / "recommended_allocation.parquet").row(0, named=True)
    assert str(recommended["as_of"]) == "2018-11-30"
    items = recommended["asset_weights_today"]
    assert [i["asset"] for i in items] == ["sp500", "nasdaq", "cash"]
    assert [i["label"] for i in items] == [
        "sp500: equity index (files series sp500)",
        "nasdaq: equity index (files series nasdaq)",
        "cash: cash at the risk-free rate (files risk_free)"]
    assert sum(i["weight"] for i in items) == pytest.approx(1.0, abs=1e-12)
    trades = pl.read_csv(root / "artifacts" / "todays_allocation.csv")
    assert trades["asset"].to_list() == ["sp500", "nasdaq", "cash"]
    bands = pl.read_parquet(root / "allocation_paths.parquet")
    assert bands["asset"].unique(maintain_order=True).to_list() == ["sp500", "nasdaq", "cash"]


def test_the_shipped_example_config_is_valid_and_names_global_six() -> None:
    config = read_config(REPO_ROOT / "examples" / "global_six.yaml")
    validate_run_config(config)
    portfolio = config["ops"]["market_data"]["config"]["portfolio"]
    assert PortfolioConfig(**portfolio).spec() == GLOBAL_SIX


def test_asset_labels_say_where_each_assets_data_comes_from() -> None:
    spec = PortfolioSpec.from_dict({"assets": [
        {"name": "sp500", "asset_class": "equity", "series": "sp500"},
        {"name": "ust_5y", "asset_class": "government_bond", "series": "dgs5",
         "maturity_years": 5.0, "coupon_rate": 0.02, "roll": "monthly"},
        {"name": "ust_30y", "asset_class": "government_bond", "maturity_years": 30.0},
        {"name": "cash", "asset_class": "cash"}]})
    items = asset_weights(spec, [0.5, 0.2, 0.2, 0.1], "files", {"sp500", "ust_5y"})
    assert [i["label"] for i in items] == [
        "sp500: equity index (files series sp500)",
        "ust_5y: 5y government bond, 2.00% coupon, monthly roll (files series dgs5)",
        "ust_30y: 30y government bond, zero-coupon, daily roll (no series: simulated only)",
        "cash: cash at the risk-free rate (files risk_free)"]
    assert asset_weights(spec, [0.5, 0.2, 0.2, 0.1], "synthetic")[0]["label"] == (
        "sp500: equity index (synthetic, simulated)")
