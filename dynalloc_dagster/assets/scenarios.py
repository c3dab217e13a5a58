"""Scenarios: the market regimes and their simulated paths (one partition per scenario).

Six scenarios: the five named regimes and ``calibrated``, the market-implied regime of
the calibration. Scenario seeds derive from (run seed, as-of date, scenario), so each
week's refresh simulates new paths, and the same week always the same ones.

No `from __future__ import annotations`: Dagster reads Config annotations at runtime."""

import math

import dagster as dg
import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from dynalloc_dagster.assets.ingestion import AS_OF_COLUMN
from dynalloc_dagster.memory import memory_limit
from dynalloc_dagster.partitions import CALIBRATED, SCENARIOS, scenario_partitions
from dynalloc_dagster.portfolio import PORTFOLIO_COLUMN, is_multi_asset, spec_from_table
from dynalloc_dagster.storage.metadata import table_metadata
from engine.conventions import TRADING_DAYS_PER_MONTH, TRADING_DAYS_PER_YEAR
from engine.market.calibration import Calibration, calibrated_regime
from engine.market.legs import leg_label
from engine.market.paths import ScenarioPaths, simulate_scenario
from engine.market.regimes import REGIMES, Regime, regime_from_mapping
from engine.portfolio.paths import PortfolioPaths, path_arrays, simulate_portfolio
from engine.portfolio.spec import TWO_ASSET, PortfolioSpec
from engine.rng import seed_sequence_for
from engine.strategy.evaluation import CHUNK_BYTES
from engine.validation import ConfigError

OWNERS = ["team:quant-research"]
LEG_COLUMN = "defensive_leg"
"""market_regimes' column naming the non-equity leg the scenarios hold (engine.market.legs)."""
NON_REGIME_COLUMNS = ("feller_satisfied", AS_OF_COLUMN, LEG_COLUMN, PORTFOLIO_COLUMN)
"""market_regimes' columns that are not fields of engine.market.regimes.Regime."""


class MarketRegimesConfig(dg.Config):
    """Overrides of the six regimes' fields, e.g. {"bear": {"equity_vol": 0.4}}."""

    overrides: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _known_scenarios(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        unknown = sorted(set(value) - set(SCENARIOS))
        if unknown:
            raise ValueError(
                f"unknown scenario(s) {', '.join(unknown)}; allowed: {', '.join(SCENARIOS)}"
            )
        for name, fields in value.items():
            # the calibrated regime's values are known at run time; its fields and their
            # ranges are checked here against the base regime
            template = REGIMES.get(name, REGIMES["base"]).to_dict() | {"name": name}
            regime_from_mapping(template | fields)
        return value

    use_calibrated_dynamics: bool = Field(
        default=False,
        description="also give the five named regimes the calibrated Heston kappa, vol of"
        " vol, spot-variance corr and rate vol instead of the named regimes' defaults (the"
        " calibrated scenario always has them)",
    )


@dg.asset(group_name="scenarios", owners=OWNERS, kinds={"polars", "parquet"}, code_version="1")
def market_regimes(config: MarketRegimesConfig, calibration: pl.DataFrame) -> dg.MaterializeResult:
    """The five named market regimes (docs/regimes.md) and the calibrated one
    (engine.market.calibration.calibrated_regime), one row each, with any run-config
    overrides and, with ``use_calibrated_dynamics``, the calibrated Heston and rate
    dynamics in the named five too. ``as_of`` is the market date they were built on;
    ``defensive_leg`` the non-equity leg every scenario holds: the bond index when the
    market data has one, cash at the risk-free rate when it does not (what the live
    signal holds). A multi-asset portfolio's calibrated spec (calibration's ``portfolio``
    column) is carried on every row."""
    row = calibration.row(0, named=True)
    as_of = row.pop(AS_OF_COLUMN)
    portfolio = {PORTFOLIO_COLUMN: row.pop(PORTFOLIO_COLUMN)} if PORTFOLIO_COLUMN in row else {}
    fitted = Calibration(**row)
    regimes = dict(REGIMES) | {CALIBRATED: calibrated_regime(fitted, name=CALIBRATED)}
    rows = []
    for name, regime in regimes.items():
        if config.use_calibrated_dynamics and name != CALIBRATED:
            regime = fitted.apply_dynamics(regime)
        regime = regime_from_mapping(regime.to_dict() | config.overrides.get(name, {}))
        rows.append(regime.to_dict() | {"feller_satisfied": regime.feller_satisfied,
                                        AS_OF_COLUMN: as_of, LEG_COLUMN: fitted.defensive_leg,
                                        **portfolio})
    table = pl.DataFrame(rows)
    calibrated = regimes[CALIBRATED]
    return dg.MaterializeResult(value=table, metadata={
        **table_metadata(table), "as_of": str(as_of),
        "defensive_leg": f"{fitted.defensive_leg} ({leg_label(fitted.defensive_leg)})",
        **{f"calibrated_{k}": v for k, v in calibrated.to_dict().items() if k != "name"},
    })


MEMORY_SHARE = 0.75
"""The share of the memory this process may use (:func:`dynalloc_dagster.memory.memory_limit`:
machine, cgroup or rlimit) a run's paths and one chunk of configs may take."""


def evaluation_memory_bytes(n_paths: int, horizon_years: int, warmup_months: int,
                            spec: PortfolioSpec = TWO_ASSET) -> int:
    """Peak bytes of the evaluation stage, which holds every scenario's paths at once.

    Notes
    -----
    S x A x n_paths x (21 m + 1) x 8 bytes of paths: S scenarios, A daily float64 arrays
    per path (:func:`engine.portfolio.paths.path_arrays`: 5 for the two-asset study, 11
    for three equities and three bond buckets), m = warm-up + 12 x horizon months; plus
    one chunk of configs, max(CHUNK_BYTES, 10 x 8 x n_paths x 12 x horizon) bytes
    (engine.strategy.evaluation streams configs in such chunks).
    """
    days = (warmup_months + 12 * horizon_years) * TRADING_DAYS_PER_MONTH
    paths = len(SCENARIOS) * path_arrays(spec) * n_paths * (days + 1) * 8
    return paths + max(CHUNK_BYTES, 10 * 8 * n_paths * 12 * horizon_years)


def memory_refusal(n_paths: int, horizon_years: int, warmup_months: int,
                   spec: PortfolioSpec = TWO_ASSET) -> str | None:
    """Why paths of this size and portfolio cannot be held by the evaluations (more than
    :data:`MEMORY_SHARE` of :func:`dynalloc_dagster.memory.memory_limit`), or None."""
    need = evaluation_memory_bytes(n_paths, horizon_years, warmup_months, spec)
    available = memory_limit()
    limit = MEMORY_SHARE * available.bytes
    if need <= limit:
        return None
    assets = "" if not is_multi_asset(spec) else (
        f" of the {len(spec.assets)}-asset portfolio ({', '.join(spec.names)})")
    return (
        f"n_paths = {n_paths} over horizon_years = {horizon_years} (+ warmup_months ="
        f" {warmup_months}) needs about {need / 2**30:.1f} GiB ({need:,} bytes:"
        f" {len(SCENARIOS)} scenarios of {path_arrays(spec)} daily arrays per path{assets}"
        f" held together by the evaluations), more than {limit / 2**30:.1f} GiB"
        f" ({MEMORY_SHARE:.0%} of {available.bytes / 2**30:.1f} GiB, {available.source}):"
        " use fewer paths or a shorter horizon")


class ScenarioPathsConfig(dg.Config):
    """Size and seed of the scenario paths. Its own check sizes the two-asset study; a
    run config's portfolio (ops.market_data.config.portfolio) is sized by
    :func:`dynalloc_dagster.orchestration.run_config.validate_run_config` and again by
    ``scenario_paths`` on the calibrated spec before simulating."""

    n_paths: int = Field(default=1000, ge=2, le=200_000, description="paths per scenario")
    seed: int = Field(
        default=0, ge=0,
        description="run seed; each scenario draws from SeedSequence(seed, as-of date,"
        " scenario name)",
    )
    horizon_years: int = Field(default=5, ge=1, le=30)
    warmup_months: int = Field(default=24, ge=0, le=120)
    antithetic: bool = False

    @model_validator(mode="after")
    def _fits_in_memory(self) -> "ScenarioPathsConfig":
        refusal = self.memory_refusal(TWO_ASSET)
        if refusal:
            raise ValueError(refusal)
        return self

    def memory_refusal(self, spec: PortfolioSpec) -> str | None:
        """:func:`memory_refusal` of these paths for ``spec``."""
        return memory_refusal(self.n_paths, self.horizon_years, self.warmup_months, spec)


@dg.asset(
    group_name="scenarios",
    owners=OWNERS,
    kinds={"numpy"},
    code_version="1",
    partitions_def=scenario_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    io_manager_key="paths_io_manager",
    check_specs=[
        dg.AssetCheckSpec("discounted_martingale", asset="scenario_paths",
                          description="mean of S_T e^{-mu T} is 1 within 4 standard errors"),
        dg.AssetCheckSpec("realized_vol_matches_regime", asset="scenario_paths",
                          description="sqrt of the mean realized variance is the regime's "
                          "vol within 4 standard errors plus 1% discretisation slack"),
    ],
)
def scenario_paths(
    context: dg.AssetExecutionContext, config: ScenarioPathsConfig, market_regimes: pl.DataFrame
):
    """Daily Heston equity, Vasicek rate, bond index and cash paths for each scenario of
    the run (warm-up + horizon), written as one npz file per scenario. Scenario s draws
    from SeedSequence(seed, as_of, s): a new as-of date (the weekly refresh) gives new
    paths, the same one the same bits."""
    regimes = {row["name"]: row for row in market_regimes.iter_rows(named=True)}
    spec = spec_from_table(market_regimes)
    refusal = config.memory_refusal(spec)
    if refusal:
        raise ConfigError(f"scenario_paths config: {refusal}")
    outputs: dict[str, ScenarioPaths | PortfolioPaths] = {}
    martingale, vol_check = {}, {}
    for key in context.partition_keys:
        fields = {k: v for k, v in regimes[key].items() if k not in NON_REGIME_COLUMNS}
        regime = regime_from_mapping(fields)
        as_of = regimes[key][AS_OF_COLUMN]
        seed = seed_sequence_for(config.seed, str(as_of), key)
        antithetic = config.antithetic and config.n_paths % 2 == 0
        if not is_multi_asset(spec):
            paths = simulate_scenario(
                regime, config.n_paths, seed, warmup_months=config.warmup_months,
                horizon_years=config.horizon_years, antithetic=antithetic,
                leg=regimes[key].get(LEG_COLUMN, "bond"),
            )
            outputs[key] = paths
            martingale[key] = _martingale_z(paths.equity, regime.equity_drift)
            vol_check[key] = _realized_vol_z(paths.equity, regime.variance)
            continue
        portfolio = simulate_portfolio(spec, regime, config.n_paths, seed,
                                       warmup_months=config.warmup_months,
                                       horizon_years=config.horizon_years,
                                       antithetic=antithetic)
        outputs[key] = portfolio
        martingale[key], vol_check[key] = _portfolio_checks(portfolio, regime)
    yield dg.Output(outputs, metadata={
        "scenarios": ", ".join(outputs), "n_paths": config.n_paths,
        "as_of": str(next(iter(regimes.values()))[AS_OF_COLUMN]),
        "days_per_path": next(iter(outputs.values())).n_steps,
        **({"defensive_leg": ", ".join(sorted({p.leg for p in outputs.values()}))}
           if not is_multi_asset(spec) else {"assets": ", ".join(spec.names)}),
        "size_mb": round(sum(_nbytes(p) for p in outputs.values()) / 1e6, 1),
    })
    yield dg.AssetCheckResult(
        check_name="discounted_martingale",
        passed=all(abs(z) < 4.0 for z in martingale.values()),
        metadata={f"z_{k}": round(z, 3) for k, z in martingale.items()},
    )
    yield dg.AssetCheckResult(
        check_name="realized_vol_matches_regime",
        passed=all(ok for ok, _ in vol_check.values()),
        metadata={f"realized_vol_{k}": round(v, 4) for k, (_, v) in vol_check.items()},
    )


def _nbytes(paths: ScenarioPaths | PortfolioPaths) -> int:
    if isinstance(paths, ScenarioPaths):
        return paths.nbytes
    return sum(a.nbytes for a in (paths.levels, paths.variance, paths.short_rate, paths.cash))


def _martingale_z(equity: np.ndarray, drift: float) -> float:
    """z of mean(S_T e^{-mu T}) - 1 across paths (S_0 = 1)."""
    years = (equity.shape[1] - 1) / TRADING_DAYS_PER_YEAR
    discounted = equity[:, -1] * math.exp(-drift * years)
    se = discounted.std(ddof=1) / math.sqrt(equity.shape[0])
    return float((discounted.mean() - 1.0) / se)


def _realized_vol_z(equity: np.ndarray, variance: float) -> tuple[bool, float]:
    """(mean realised variance within 4 standard errors plus 2% of ``variance``, the
    realised vol)."""
    log_returns = np.diff(np.log(equity), axis=1)
    per_path = (log_returns**2).mean(axis=1) * TRADING_DAYS_PER_YEAR
    mean_var = per_path.mean()
    se = per_path.std(ddof=1) / math.sqrt(equity.shape[0])
    ok = abs(mean_var - variance) <= 4.0 * se + 0.02 * variance
    return bool(ok), float(math.sqrt(mean_var))


def _portfolio_checks(paths: PortfolioPaths, regime: Regime) -> tuple[float, tuple[bool, float]]:
    """Both checks on every equity of a portfolio (drift mu + drift_spread, variance
    (vol_ratio x vol)^2): the largest |z| of the martingale check, and whether every
    equity passes the realised-vol check with the first one's realised vol."""
    zs, vols = [], []
    for i, asset in enumerate(paths.spec.equities):
        zs.append(_martingale_z(paths.levels[i], regime.equity_drift + asset.drift_spread))
        vols.append(_realized_vol_z(paths.levels[i], regime.variance * asset.vol_ratio ** 2))
    return max(zs, key=abs), (all(ok for ok, _ in vols), vols[0][1])
