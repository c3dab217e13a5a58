"""How close the agent's pick comes to the optimum, per seed, against a large LHS pool.

For each seed: run the optimisation loop (engine.optimisation.loop.run_optimisation, the
same loop the pipeline's rounds run) over the pipeline's six scenarios (the five named
regimes and the calibrated one, fitted to the synthetic market of ``--as-of`` as the
ingestion and calibration assets fit it), then pool its configs with a Latin-hypercube
sample of ``--pool`` configs on the same paths and rescore everything together with
``score_configs`` (the objective is relative: best_s is the best over the configs
scored, so a pick is only comparable on a common set). Printed per seed: the pick's
pooled rank, its objective gap to the pooled best ((best - pick) / |best|), the configs
the loop evaluated, its stop reason and its wall time (the loop only: the pool is not
counted). The paths are the same for every seed, so one pool is the yardstick of every
seed and variant: it is evaluated once per run (or read from ``--cache``).

Variants are agent settings: ``--variant NAME:field=value,field=value`` (AgentSettings
fields; repeatable); ``default`` is AgentSettings(). ``--bedrock`` adds the Bedrock
proposer (dynalloc_dagster.bedrock) against the fake Converse server of
tests/bedrock/fake_converse.py on 127.0.0.1: it measures the proposer's plumbing and
prompt on real sockets; the fake answers with random points of the schema, not a model.

    python bench/agent_quality.py [--seeds 5] [--pool 1000] [--paths 1000]
        [--variant big0:initial_batch=256] [--bedrock] [--cache /tmp/pools]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from dynalloc_dagster.market_sources.synthetic import synthetic_inputs
from engine.analysis.scoring import score_configs
from engine.market.calibration import calibrate, calibrated_regime
from engine.market.paths import ScenarioPaths, simulate_scenario
from engine.market.regimes import REGIMES
from engine.market.yield_curve import curve_from_frame
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings, OptimisationResult, run_optimisation
from engine.optimisation.proposers import Proposer
from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import SearchSpace
from engine.rng import seed_sequence_for
from engine.strategy.evaluation import evaluate

CALIBRATED = "calibrated"
TARGET_GAP = 0.02
TARGET_RANK = 5


def six_scenarios(n_paths: int, as_of: dt.date, seed: int = 0) -> dict[str, ScenarioPaths]:
    """The pipeline's scenarios at its defaults: the five named regimes and the one
    calibrated to the synthetic market of ``as_of``; scenario s seeded from
    SeedSequence(seed, as_of, s) as the scenario_paths asset seeds it."""
    market = synthetic_inputs(as_of)
    curve = curve_from_frame(market.yield_curve) if market.yield_curve.height else None
    fitted = calibrate(market.history, vol_surface=market.vol_surface, yield_curve=curve,
                       dividend_yield=market.dividend_yield)
    regimes = dict(REGIMES) | {CALIBRATED: calibrated_regime(fitted, name=CALIBRATED)}
    return {name: simulate_scenario(regime, n_paths, seed_sequence_for(seed, str(as_of), name))
            for name, regime in regimes.items()}


def lhs_pool(paths: dict[str, ScenarioPaths], objectives: InvestmentObjectives, n: int,
             cache: Path | None, seed: int = 0) -> pl.DataFrame:
    """The stacked evaluations of ``n`` Latin-hypercube configs (a stream of its own),
    read from ``cache`` when an earlier run with the same figures stored them there."""
    n_paths = next(iter(paths.values())).n_paths
    stored = cache / f"pool-{n}-{n_paths}-{seed}.parquet" if cache else None
    if stored is not None and stored.exists():
        return pl.read_parquet(stored)
    configs = sample_configs(n, seed_sequence_for(seed, "bench-pool"), SearchSpace(),
                             tc_bps=objectives.assumed_tc_bps)
    table = pl.concat([evaluate(p, configs, objectives) for p in paths.values()])
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(stored)
    return table


def judged(result: OptimisationResult, pool: pl.DataFrame,
           objectives: InvestmentObjectives) -> tuple[int, float, float, int]:
    """(pooled rank of the pick, relative gap to the pooled best, pick's pooled objective,
    pooled configs). The pick is the top of the loop's own final history."""
    pick = result.history.sort("objective", descending=True, nulls_last=True)["config_id"][0]
    pooled = pl.concat([result.evaluations, pool.select(result.evaluations.columns)]).unique(
        subset=["scenario", "config_id"], keep="first")
    scores = score_configs(pooled, objectives)
    best = float(scores["objective"][0])
    row = scores.filter(pl.col("config_id") == pick).row(0, named=True)
    return int(row["rank"]), (best - row["objective"]) / abs(best), row["objective"], scores.height


def variant(text: str) -> tuple[str, dict[str, object]]:
    """``NAME:field=value,...`` -> (NAME, AgentSettings overrides), values typed by field."""
    name, _, body = text.partition(":")
    types = {f.name: f.type for f in dataclasses.fields(AgentSettings)}
    overrides: dict[str, object] = {}
    for item in filter(None, body.split(",")):
        field, _, value = item.partition("=")
        if field not in types:
            raise SystemExit(f"--variant {text!r}: {field!r} is not an AgentSettings field")
        kind = str(types[field])
        overrides[field] = (int(value) if kind == "int" else float(value) if kind == "float"
                            else value.lower() == "true" if kind == "bool" else value)
    return name, overrides


def bedrock_factory() -> tuple[Callable[[], Proposer], Callable[[], None]]:
    """A Bedrock proposer maker pointed at a started fake Converse server, and its stop."""
    from dynalloc_dagster.bedrock.resource import BedrockResource
    from tests.bedrock.fake_converse import FakeConverse

    fake = FakeConverse().start()
    os.environ.update(fake.env())
    resource = BedrockResource(mode="bedrock")
    space = SearchSpace()
    tc_bps = InvestmentObjectives().assumed_tc_bps
    return (lambda: resource.proposer(space, tc_bps)), fake.close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=1000)
    parser.add_argument("--as-of", default="2026-12-04")
    parser.add_argument("--variant", action="append", default=[], type=variant)
    parser.add_argument("--no-default", action="store_true", help="skip AgentSettings()")
    parser.add_argument("--bedrock", action="store_true")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder keeping the pools' evaluations between runs (same"
                        " --as-of and objectives only)")
    args = parser.parse_args()
    objectives = InvestmentObjectives()
    started = time.perf_counter()
    paths = six_scenarios(args.paths, dt.date.fromisoformat(args.as_of))
    print(f"6 scenarios x {args.paths} paths ({', '.join(paths)}) in"
          f" {time.perf_counter() - started:.1f} s; pool {args.pool} LHS configs")
    variants = ([] if args.no_default else [("default", {})]) + args.variant
    makers: dict[str, Callable[[], Proposer] | None] = {name: None for name, _ in variants}
    settings = {name: AgentSettings(**over) for name, over in variants}  # type: ignore[arg-type]
    stop_fake = None
    if args.bedrock:
        make, stop_fake = bedrock_factory()
        makers["bedrock"] = make
        settings["bedrock"] = AgentSettings(proposer="bedrock")
    rows: dict[str, list[tuple[int, float, int, float]]] = {name: [] for name in settings}
    t0 = time.perf_counter()
    pool = lhs_pool(paths, objectives, args.pool, args.cache)
    print(f"pool evaluated (or read) in {time.perf_counter() - t0:.1f} s")
    try:
        for seed in range(args.seeds):
            print(f"seed {seed}")
            for name, base in settings.items():
                maker = makers[name]
                t0 = time.perf_counter()
                result = run_optimisation(paths, objectives, dataclasses.replace(base, seed=seed),
                                          maker() if maker else None)
                wall = time.perf_counter() - t0
                rank, gap, value, size = judged(result, pool, objectives)
                rows[name].append((rank, gap, result.history.height, wall))
                print(f"  {name:<12} rank {rank:5d} of {size:5d}  gap {gap:7.2%}"
                      f"  objective {value:7.4f}  configs {result.history.height:4d}"
                      f"  rounds {int(result.history['round'].max()) + 1:3d}"
                      f"  {result.stop_reason:<11}  {wall:6.1f} s"
                      f"  fallbacks {len(result.fallbacks)}", flush=True)
    finally:
        if stop_fake is not None:
            stop_fake()
    print(f"\nsummary: a seed hits when gap <= {TARGET_GAP:.0%} or rank <= {TARGET_RANK}")
    print(f"{'variant':<12}{'hits':>6}{'median rank':>13}{'median gap':>12}"
          f"{'mean configs':>14}{'mean wall s':>13}")
    for name, results in rows.items():
        hits = sum(gap <= TARGET_GAP or rank <= TARGET_RANK for rank, gap, _, _ in results)
        print(f"{name:<12}{f'{hits}/{len(results)}':>6}"
              f"{statistics.median(r for r, _, _, _ in results):>13.0f}"
              f"{statistics.median(g for _, g, _, _ in results):>12.2%}"
              f"{statistics.mean(c for _, _, c, _ in results):>14.1f}"
              f"{statistics.mean(w for _, _, _, w in results):>13.1f}")


if __name__ == "__main__":
    main()
