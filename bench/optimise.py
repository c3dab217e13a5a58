"""The optimisation loop through Dagster on a fresh local DAGSTER_HOME, timed.

Runs ``python -m dynalloc_dagster`` (ingest -> 6 scenarios (the five named and
the calibrated one) x 1000 paths -> the agent's rounds until it stops -> reports) in a
new process against an empty DAGSTER_HOME and data root; then reads the runs back from
the instance and prints the wall time of each stage and of each optimisation round (a
round = its proposal, evaluation and history runs), the configs evaluated and the stop
reason. Then the loop without Dagster (engine.optimisation.loop.run_optimisation) over
the five named regimes in another new process: the engine's share of the work (it has
no calibrated regime, so its loop may stop at another round).

    python bench/optimise.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ENGINE_ONLY = """
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings, run_optimisation
paths = {name: simulate_scenario(regime, 1000, 0) for name, regime in REGIMES.items()}
result = run_optimisation(paths, InvestmentObjectives(), AgentSettings())
print(result.history.height, result.stop_reason)
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def stage_walls(home: Path) -> list[tuple[str, str, float]]:
    """(job, round, wall seconds) of every run in the instance, oldest first."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
    rows = [(r.dagster_run.job_name, r.dagster_run.tags.get("dynalloc/round", ""),
             r.start_time or 0.0, r.end_time or 0.0) for r in records]
    return [(job, rnd, end - start) for job, rnd, start, end in sorted(rows, key=lambda r: r[2])]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dynalloc-bench-") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        data = Path(tmp) / "data"
        env = os.environ | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data)}
        total, _ = timed([sys.executable, "-m", "dynalloc_dagster"], env)
        walls = stage_walls(home)
        import polars as pl

        history = pl.read_parquet(data / "optimisation_history.parquet")
        engine, engine_out = timed([sys.executable, "-c", ENGINE_ONLY], env)

    per_round: dict[str, float] = defaultdict(float)
    for _, rnd, wall in walls:
        if rnd:
            per_round[rnd] += wall
    print("optimisation loop through Dagster: 6 scenarios x 1000 paths, default agent,"
          " fresh DAGSTER_HOME")
    print(f"whole pipeline (new process)       {total:7.2f} s   target < 90 s")
    print(f"runs                               {len(walls):7d}")
    print(f"configs evaluated                  {history.height:7d}")
    print(f"stop reason                        {history['stop_reason'][-1]}")
    print(f"best objective                     {history['best_objective_so_far'][-1]:7.4f}")
    for job in ("ingest_job", "scenario_paths_job", "reports_job"):
        print(f"  {job:<32} {sum(w for j, _, w in walls if j == job):7.2f} s")
    print("per round (proposal + evaluations + history runs):")
    for rnd in sorted(per_round, key=int):
        n = history.filter(pl.col("round") == int(rnd)).height
        print(f"  round {int(rnd):>2}: {n:3d} configs  {per_round[rnd]:6.2f} s")
    print(f"engine alone, 5 named regimes (new process) {engine:7.2f} s"
          f"  (configs, stop: {engine_out.strip()})")


if __name__ == "__main__":
    main()
