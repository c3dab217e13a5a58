"""The live signal: the recommended rule on the real history, today's allocation and the
trades to get there, and monitoring (the regime today looks like, and how the rule fares
against what the simulations expected).

No `from __future__ import annotations`: Dagster reads resource annotations at runtime."""

import io
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from dynalloc_dagster.assets.scenarios import NON_REGIME_COLUMNS
from dynalloc_dagster.committee import plots
from dynalloc_dagster.committee.decision import ASSET_WEIGHTS, decision_markdown, weights_text
from dynalloc_dagster.committee.render import render_charts
from dynalloc_dagster.committee.text import data_label
from dynalloc_dagster.partitions import CALIBRATED
from dynalloc_dagster.portfolio import (
    defensive_leg,
    history_levels,
    is_multi_asset,
    lead_history,
    spec_from_table,
)
from dynalloc_dagster.resources import (
    SAMPLE_DATA,
    ArtifactStore,
    MarketDataSource,
    ObjectivesResource,
)
from dynalloc_dagster.storage.metadata import chart_gallery, code_version, table_metadata
from engine.analysis.benchmarks import STATIC_BENCHMARKS, constant_weight_config
from engine.market.legs import leg_label, leg_of
from engine.market.regime_classifier import classify_regime
from engine.market.regimes import regime_from_mapping
from engine.portfolio.live import PortfolioBacktest, backtest_portfolio, portfolio_trades
from engine.portfolio.spec import TWO_ASSET, PortfolioSpec
from engine.strategy import StrategyConfig, config_from_row
from engine.strategy.backtest import BacktestResult, backtest_history
from engine.strategy.trades import trades_frame, trades_to_target

OWNERS = ["team:quant-research"]
GROUP = "live"
BACKTEST_TOP = 5
"""The recommended rule and the next configs of the leaderboard, backtested together."""
LAST_YEAR_MONTHS = 12
RECOMMENDED = "recommended"
MARKET_REGIME = dg.AssetKey("market_regime")
TRADES_CSV = "todays_allocation.csv"
REPORT = dg.AssetKey("report")
BACKTEST_CAPTIONS = {
    "backtest_nav": "NAV on the market history (log scale, 1 at the start): the recommended"
    " rule, the next configs, 60/40 and buy-and-hold equity.",
    "backtest_equity_weight": "The equity weight (of a multi-asset portfolio: the equity"
    " sleeve's) each strategy held month by month on the market history.",
}


def provenance(source: MarketDataSource, market_data: pl.DataFrame) -> dict[str, str]:
    """The provenance columns of every live output: data_source (in words, "real market
    history" only for market files), history ("real history" or "synthetic"), as_of (the
    last market date) and code_version."""
    return {"data_source": data_label(source.kind),
            "history": "synthetic" if source.kind == "synthetic" else "real history",
            "as_of": str(market_data["date"][-1]), "code_version": code_version()}


def holdings_provenance(source: MarketDataSource, holdings: pl.DataFrame) -> tuple[str, str | None]:
    """(where the holdings come from, why the trades are illustrative or None).

    Trades are illustrative when the market data is synthetic, the holdings are the
    synthetic source's demo portfolio or the shipped sample's, or no holdings were given.
    """
    if holdings.height == 0:
        return ("none given (trades from a portfolio of NAV 1 without equity)",
                "no holdings were given")
    if source.kind == "synthetic":
        return ("the synthetic source's demo holdings",
                "synthetic market data and demo holdings")
    if source.kind == "files" and source.path and Path(source.path).resolve() == SAMPLE_DATA:
        return ("the shipped sample's holdings.csv", "the shipped sample's holdings are an"
                " illustrative portfolio, not anyone's positions")
    where = source.path if source.kind == "files" else f"s3://{source.bucket}/{source.prefix}"
    return f"the holdings table of {where}", None


def _month_end_rows(dates: pl.Series) -> list[int]:
    """Rows of the last trading day of each calendar month (backtest_history's month-ends)."""
    month = dates.dt.year() * 12 + dates.dt.month()
    return (month != month.shift(-1)).fill_null(True).arg_true().to_list()


def _backtest_from(history: pl.DataFrame, config: StrategyConfig, first: int,
                   last: int | None = None, spec: PortfolioSpec = TWO_ASSET
                   ) -> BacktestResult | PortfolioBacktest:
    """``config`` on ``history`` with its first rebalance at row ``first`` (a month-end)
    and its last at row ``last``: the history is cut ``window_days`` rows before
    ``first``, so every rule starts on the same date whatever its window. A multi-asset
    ``spec`` runs engine.portfolio.live.backtest_portfolio on every asset."""
    rows = history.slice(first - config.window_days,
                         (len(history) if last is None else last + 1) - first + config.window_days)
    if is_multi_asset(spec):
        return backtest_portfolio(rows["date"], history_levels(spec, rows), rows["risk_free"],
                                  spec, config)
    bond = rows["bond_close"] if "bond_close" in rows.columns else None
    return backtest_history(rows["date"], rows["close"], rows["risk_free"], config,
                            bond_close=bond)


def _strategies(leaderboard: pl.DataFrame, strategy_configs: pl.DataFrame,
                objectives: ObjectivesResource) -> dict[str, tuple[StrategyConfig, str | None]]:
    """label -> (config, config id): the top configs (the first is the recommended rule)
    and the static benchmarks (100% equity never trades: it is buy-and-hold)."""
    by_id = {r["config_id"]: r for r in strategy_configs.iter_rows(named=True)}
    judged_by = objectives.objectives()
    chosen: dict[str, tuple[StrategyConfig, str | None]] = {}
    for row in leaderboard.sort("rank").head(BACKTEST_TOP).iter_rows(named=True):
        label = RECOMMENDED if row["rank"] == 1 else f"#{row['rank']}"
        chosen[label] = (config_from_row(by_id[row["config_id"]]), row["config_id"])
    for name, weight in STATIC_BENCHMARKS.items():
        chosen[name] = (constant_weight_config(weight, tc_bps=judged_by.assumed_tc_bps,
                                               target_vol=judged_by.target_vol), None)
    return chosen


@dg.multi_asset(
    outs={
        "historical_backtest": dg.AssetOut(
            group_name=GROUP, owners=OWNERS, kinds={"polars", "parquet"}, code_version="2",
            description="Metrics of the recommended rule, the next configs and the static"
            " benchmarks (60/40, 100% equity = buy-and-hold) on the real history, over the"
            " full common period and the last 12 months."),
        "historical_backtest_paths": dg.AssetOut(
            group_name=GROUP, owners=OWNERS, kinds={"polars", "parquet"}, code_version="1",
            description="Month by month: each strategy's return net of costs, the equity"
            " weight it held and its NAV (1 at the start)."),
    },
)
def historical_backtest(
    artifacts: ArtifactStore, objectives: ObjectivesResource, market_source: MarketDataSource,
    robustness_leaderboard: pl.DataFrame, strategy_configs: pl.DataFrame,
    market_data: pl.DataFrame,
):
    """engine.strategy.backtest.backtest_history of each strategy on ``market_data``, all
    starting at the first month-end where the longest window is full, so the metrics
    cover the same months; plus the last 12 months of the recommended rule (the
    degradation check compares them with the simulations). For a multi-asset portfolio
    each row also has every asset's mean weight (``weight_<asset>_mean``;
    engine.portfolio.live.backtest_portfolio) and equity_weight is the risky sleeve's."""
    spec = spec_from_table(market_data)
    chosen = _strategies(robustness_leaderboard, strategy_configs, objectives)
    month_ends = _month_end_rows(market_data["date"])
    longest = max(config.window_days for config, _ in chosen.values())
    first = next(row for row in month_ends if row >= longest)
    rows, paths = [], []
    for label, (config, config_id) in chosen.items():
        result = _backtest_from(market_data, config, first, spec=spec)
        monthly = result.monthly_returns
        rows.append({"strategy": label, "config_id": config_id, "period": "full",
                     "start": market_data["date"][first], "end": monthly["date"][-1],
                     "months": monthly.height, **result.metrics, **_mean_weights(result)})
        paths.append(monthly.with_columns(
            pl.lit(label).alias("strategy"),
            (1.0 + pl.col("portfolio_return")).cum_prod().alias("nav")))
    recommended = chosen[RECOMMENDED][0]
    last_first = month_ends[-(LAST_YEAR_MONTHS + 1)]
    recent = _backtest_from(market_data, recommended, last_first, spec=spec)
    rows.append({"strategy": RECOMMENDED, "config_id": chosen[RECOMMENDED][1],
                 "period": "last_year", "start": market_data["date"][last_first],
                 "end": recent.monthly_returns["date"][-1],
                 "months": recent.monthly_returns.height, **recent.metrics,
                 **_mean_weights(recent)})
    origin = provenance(market_source, market_data)
    multi = is_multi_asset(spec)
    leg = defensive_leg(spec) if multi else leg_of(market_data.columns)
    table = pl.DataFrame(rows, schema_overrides={"config_id": pl.String}).with_columns(
        pl.lit(leg).alias("defensive_leg"),
        *(pl.lit(value).alias(name) for name, value in origin.items() if name != "as_of"),
        pl.lit(origin["as_of"]).alias("data_as_of"))
    path_table = pl.concat(paths).select("date", "strategy", "portfolio_return",
                                         "equity_weight", "nav")
    note = (f"Data: {data_label(market_source.kind)}; {path_table['date'].min()} to"
            f" {path_table['date'].max()}, month-ends; dynalloc.")
    if multi:
        note = (f"{note} Recommended rule's mean weights: "
                + weights_text(0.0, leg, _weight_items(full_rows(rows)[RECOMMENDED])) + ".")
    pngs = render_charts({
        "backtest_nav": lambda: plots.backtest_nav(path_table, RECOMMENDED, note),
        "backtest_equity_weight": lambda: plots.backtest_equity_weight(
            path_table, RECOMMENDED, note, sleeve=multi)})
    uris = {name: artifacts.write(f"{name}.png", png) for name, png in pngs.items()}
    full = full_rows(rows)
    key_figures = {
        f"{prefix}_{metric}": dg.MetadataValue.float(round(float(full[name][metric]), 4))
        for prefix, name in (("recommended", RECOMMENDED), ("buy_and_hold", "100% equity"),
                             ("sixty_forty", "60/40"))
        for metric in ("sharpe", "max_drawdown", "turnover", "ann_return", "ann_vol")
    }
    yield dg.Output(table, "historical_backtest", metadata={
        "provenance": dg.MetadataValue.md(
            f"**{origin['history'].capitalize()}**: {origin['data_source']}, as of"
            f" {origin['as_of']}; non-equity leg {leg_label(leg)}; {origin['code_version']}"),
        **origin, "defensive_leg": leg_label(leg),
        **({"recommended_mean_weights": weights_text(0.0, leg, _weight_items(full[RECOMMENDED]))}
           if multi else {}),
        **table_metadata(table.select("strategy", "period", "start", "end", "sharpe",
                                      "ann_return", "ann_vol", "max_drawdown", "turnover"),
                         preview_rows=table.height),
        **key_figures,
        "charts": chart_gallery(pngs, BACKTEST_CAPTIONS),
        **{name: dg.MetadataValue.url(uri) for name, uri in uris.items()},
    })
    yield dg.Output(path_table, "historical_backtest_paths", metadata={
        **table_metadata(path_table), "strategies": ", ".join(chosen)})


def full_rows(rows: list[dict]) -> dict[str, dict]:
    """The full-period backtest row of each strategy."""
    return {r["strategy"]: r for r in rows if r["period"] == "full"}


def _mean_weights(result: BacktestResult | PortfolioBacktest) -> dict[str, float]:
    """``weight_<asset>_mean`` of a portfolio backtest (none for the two-asset one)."""
    if isinstance(result, BacktestResult):
        return {}
    return {f"weight_{name}_mean": w for name, w in result.asset_weights.items()}


def _weight_items(row: dict) -> list[dict]:
    """[{asset, weight}] of a backtest row's ``weight_<asset>_mean`` columns."""
    return [{"asset": k.removeprefix("weight_").removesuffix("_mean"), "weight": v}
            for k, v in row.items() if k.startswith("weight_") and k.endswith("_mean")]


@dg.asset_check(
    asset="historical_backtest",
    additional_ins={"market_regime": dg.AssetIn("market_regime"),
                    "strategy_evaluations": dg.AssetIn("strategy_evaluations")},
    description="The recommended rule's Sharpe over the last 12 months is at least the 5th"
    " percentile of its simulated Sharpe in the regime today looks like (a warning). The"
    " simulated figure is over the evaluation horizon, so a 12-month Sharpe falls below"
    " it more often than 5% of the time: a prompt to look, not a verdict.",
)
def rule_underperformance(
    historical_backtest: pl.DataFrame, market_regime: pl.DataFrame,
    strategy_evaluations: pl.DataFrame,
) -> dg.AssetCheckResult:
    recent = historical_backtest.filter((pl.col("strategy") == RECOMMENDED)
                                        & (pl.col("period") == "last_year")).row(0, named=True)
    regime = market_regime.filter(pl.col("nearest"))["regime"][0]
    expected = strategy_evaluations.filter((pl.col("config_id") == recent["config_id"])
                                           & (pl.col("scenario") == regime))
    if expected.height == 0:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={
            "reason": f"no evaluation of {recent['config_id']} in scenario {regime}"})
    p5 = float(expected["sharpe_p5"][0])
    realised = float(recent["sharpe"])
    return dg.AssetCheckResult(
        passed=realised >= p5, severity=dg.AssetCheckSeverity.WARN,
        metadata={"config_id": recent["config_id"], "regime": regime,
                  "realised_sharpe_last_year": dg.MetadataValue.float(round(realised, 4)),
                  "simulated_sharpe_p5": dg.MetadataValue.float(round(p5, 4)),
                  "realised_return_last_year": dg.MetadataValue.float(
                      round(float(recent["ann_return"]), 4)),
                  "simulated_return_p5": dg.MetadataValue.float(
                      round(float(expected["ann_return_p5"][0]), 4)),
                  "window": f"{recent['start']} to {recent['end']}"},
    )


@dg.asset(group_name=GROUP, owners=OWNERS, kinds={"polars", "csv"}, code_version="2",
          tags={"dynalloc/output": "business"}, deps=[REPORT])
def todays_allocation(
    artifacts: ArtifactStore, market_source: MarketDataSource,
    recommended_allocation: pl.DataFrame, market_data: pl.DataFrame,
    market_holdings: pl.DataFrame,
) -> dg.MaterializeResult:
    """The recommended rule's target weights as of the latest data and the trades that move
    the current holdings there (engine.strategy.trades.trades_to_target, with the rule's
    no-trade band and cost), one row per asset; also written as todays_allocation.csv
    for a portfolio system. Holdings in units are valued at the last equity and bond
    closes (the non-equity leg is cash at 1 without a bond index); holdings by weight
    give value changes as fractions of NAV; no holdings: from a portfolio without
    equity, NAV 1. A multi-asset portfolio has one row per asset of its spec
    (engine.portfolio.live.portfolio_trades; units valued at each asset's last level,
    no holdings: NAV 1 in the defensive sleeve's fixed mix), each labelled with where its
    data comes from. Every row carries its provenance (data source, holdings source,
    as-of date, code version) and whether the trades are illustrative (synthetic data,
    demo or sample holdings, or none given): such trades are not orders.

    Written after the report (a dependency without data): when the report fails, the
    stage fails before the CSV a portfolio system reads is replaced, so the CSV never
    trades a rule the committee's report does not show."""
    spec = spec_from_table(market_data)
    recommended = recommended_allocation.row(0, named=True)
    table = trades_table(market_source, recommended, market_data, market_holdings, spec)
    target = float(recommended["equity_weight_today"])
    origin = provenance(market_source, market_data)
    holdings_source = table["holdings_source"][0]
    reason = table["illustrative_reason"][0]
    leg = defensive_leg(spec) if is_multi_asset(spec) else leg_of(market_data.columns)
    equities = table.filter(pl.col("asset").is_in([a.name for a in spec.equities]))
    current = float(equities["current_weight"].sum())
    new = float(equities["new_weight"].sum())
    trade, cost = bool(table["trade"][0]), float(table["cost"].sum())
    buffer = io.BytesIO()
    table.write_csv(buffer)
    uri = artifacts.write(TRADES_CSV, buffer.getvalue())
    sleeve = "equity sleeve" if is_multi_asset(spec) else "equity"
    extra = [f"**Trades:** {'ILLUSTRATIVE (' + reason + '): ' if reason else ''}"
             f"{trade}; {sleeve} {current:.1%} -> {new:.1%}; holdings: {holdings_source}"]
    decision = decision_markdown(
        rule=recommended["rule"], config_id=recommended["config_id"], equity_weight=target,
        leg=leg, as_of=origin["as_of"], data_source=origin["data_source"],
        status=recommended["mandate_status"], extra=extra,
        weights=recommended.get(ASSET_WEIGHTS))
    return dg.MaterializeResult(value=table, metadata={
        "decision": dg.MetadataValue.md(decision),
        "illustrative": reason or "no: real data and holdings",
        "holdings_source": holdings_source, **origin,
        "config_id": recommended["config_id"],
        "target_equity_weight": dg.MetadataValue.float(round(target, 6)),
        "current_equity_weight": dg.MetadataValue.float(round(current, 6)),
        "trade": trade, "cost": dg.MetadataValue.float(cost),
        "csv": dg.MetadataValue.url(uri),
        **table_metadata(table),
    })


def trades_table(source: MarketDataSource, recommended: dict, market_data: pl.DataFrame,
                 holdings: pl.DataFrame, spec: PortfolioSpec = TWO_ASSET) -> pl.DataFrame:
    """The trades from ``holdings`` to the recommended rule's weights today, one row per
    asset, with its label, the provenance and illustrative columns (todays_allocation's
    table; the report shows the same)."""
    rule = config_from_row(recommended)
    origin = provenance(source, market_data)
    holdings_source, reason = holdings_provenance(source, holdings)
    if reason is None and source.kind == "synthetic":
        reason = "synthetic market data"
    if is_multi_asset(spec):
        items = recommended[ASSET_WEIGHTS]
        held = _portfolio_holdings(spec, holdings, market_data)
        frame = portfolio_trades([i["asset"] for i in items], [i["weight"] for i in items],
                                 no_trade_band=rule.no_trade_band, tc_bps=rule.tc_bps, **held)
        label = pl.Series([i["label"] for i in items])
        trade, nav = bool((frame["weight_change"] != 0.0).any()), float(held["nav"])
    else:
        trades = trades_to_target(float(recommended["equity_weight_today"]),
                                  no_trade_band=rule.no_trade_band, tc_bps=rule.tc_bps,
                                  **_holdings(holdings, market_data))
        frame = trades_frame(trades)
        label = pl.when(pl.col("asset") == "equity").then(pl.lit("equity")).otherwise(
            pl.lit(leg_label(leg_of(market_data.columns))))
        trade, nav = trades.trade, trades.nav
    return frame.select(
        pl.lit(origin["as_of"]).alias("as_of"),
        pl.lit(recommended["config_id"]).alias("config_id"),
        pl.all(),
        (pl.lit(label) if isinstance(label, pl.Series) else label).alias("asset_label"),
        pl.lit(trade).alias("trade"),
        pl.lit(nav).alias("nav"),
        pl.lit(reason is not None).alias("illustrative"),
        pl.lit(reason, dtype=pl.String).alias("illustrative_reason"),
        pl.lit(origin["data_source"]).alias("data_source"),
        pl.lit(holdings_source).alias("holdings_source"),
        pl.lit(origin["code_version"]).alias("code_version"))


def _holdings(holdings: pl.DataFrame, market_data: pl.DataFrame) -> dict[str, float]:
    """trades_to_target's holdings arguments from the market_holdings table."""
    if holdings.height == 0:
        return {"nav": 1.0, "equity_weight": 0.0}
    column = "units" if "units" in holdings.columns and holdings["units"].is_not_null().all() \
        else "weight"
    held = {row["asset"]: float(row[column]) for row in holdings.iter_rows(named=True)}
    if column == "weight":
        return {"nav": 1.0, "equity_weight": held.get("equity", 0.0)}
    bond_price = (float(market_data["bond_close"][-1]) if "bond_close" in market_data.columns
                  else 1.0)
    return {"equity_units": held.get("equity", 0.0), "bond_units": held.get("bond", 0.0),
            "equity_price": float(market_data["close"][-1]), "bond_price": bond_price}


def _portfolio_holdings(spec: PortfolioSpec, holdings: pl.DataFrame,
                        market_data: pl.DataFrame) -> dict:
    """portfolio_trades' holdings arguments (current, nav, prices) from market_holdings:
    weights by asset (assets not listed hold 0), or units valued at each asset's last
    level; none: NAV 1 in the defensive sleeve's fixed mix (equal without one)."""
    names = [a.name for a in spec.ordered]
    unknown = sorted(set(holdings["asset"]) - set(names)) if holdings.height else []
    if unknown:
        raise ValueError(f"market_holdings: asset(s) {', '.join(unknown)} are not in the"
                         f" portfolio ({', '.join(names)})")
    if holdings.height == 0:
        n_eq, defensive = len(spec.equities), spec.defensive
        mix = spec.defensive_weights or [1.0 / len(defensive)] * len(defensive)
        return {"current": np.array([0.0] * n_eq + list(mix)), "nav": 1.0}
    column = "units" if "units" in holdings.columns and holdings["units"].is_not_null().all() \
        else "weight"
    held = dict(zip(holdings["asset"], holdings[column].cast(pl.Float64), strict=True))
    amounts = np.array([held.get(name, 0.0) for name in names])
    if column == "weight":
        return {"current": amounts, "nav": 1.0}
    prices = history_levels(spec, market_data)[:, -1]
    values = amounts * prices
    return {"current": values / values.sum(), "nav": float(values.sum()), "prices": prices}


@dg.asset(
    group_name=GROUP, owners=OWNERS, kinds={"polars", "parquet"}, code_version="1",
    check_specs=[dg.AssetCheckSpec(
        "regime_shift", asset="market_regime",
        description="The regime today looks like is the one of the previous materialization"
        " (a warning when it changed; the regime_shift_reoptimisation sensor can then start"
        " a fresh optimisation).")],
)
def market_regime(context: dg.AssetExecutionContext, market_source: MarketDataSource,
                  market_data: pl.DataFrame, market_regimes: pl.DataFrame):
    """Which of the named regimes (as configured in market_regimes, the calibrated one
    left out) the last year of data looks like (engine.market.regime_classifier): every
    regime's standardised distance, the nearest flagged; the features in the metadata."""
    regimes = {row["name"]: regime_from_mapping(
        {k: v for k, v in row.items() if k not in NON_REGIME_COLUMNS})
        for row in market_regimes.iter_rows(named=True) if row["name"] != CALIBRATED}
    spec = spec_from_table(market_data)
    history = lead_history(spec, market_data) if is_multi_asset(spec) else market_data
    found = classify_regime(history, regimes=regimes)
    previous = _previous_regime(context.instance)
    origin = provenance(market_source, market_data)
    table = pl.DataFrame({"regime": list(found.distances),
                          "distance": list(found.distances.values())}).with_columns(
        (pl.col("regime") == found.regime).alias("nearest"),
        pl.lit(previous, dtype=pl.String).alias("previous_regime"),
        *(pl.lit(value).alias(name) for name, value in origin.items()))
    yield dg.Output(table, metadata={
        **table_metadata(table), "regime": found.regime, "previous_regime": previous or "none",
        **origin, "window_days": found.window_days,
        **{k: dg.MetadataValue.float(round(v, 4)) for k, v in found.features.items()},
    })
    yield dg.AssetCheckResult(
        check_name="regime_shift", passed=previous is None or previous == found.regime,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"regime": found.regime, "previous_regime": previous or "none"})


def _previous_regime(instance: dg.DagsterInstance) -> str | None:
    """The regime of the latest materialization of market_regime before this one."""
    event = instance.get_latest_materialization_event(MARKET_REGIME)
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("regime")
    return None if value is None else str(value.value)
