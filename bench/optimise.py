"""The optimisation loop through Dagster and without it, on the same work, timed.

1. ``python -m dynalloc_dagster`` in a new process on a fresh DAGSTER_HOME and
   data root: ingest -> 6 scenarios (the five named and the calibrated one) x 1000 paths
   -> the agent's rounds until it stops -> reports. The runs are read back from the
   instance for the wall time of each stage and of each round (its proposal,
   evaluation and history runs).
2. The engine's loop (``engine.optimisation.loop.run_optimisation``) in another new
   process, on the six scenario files the pipeline stored (the same paths), with the
   default objectives and agent (the same seed and proposer), so it proposes the same
   configs: the bench checks that both histories list the same config ids in the same
   order and says so.

Printed: the whole pipeline's wall time, each stage's and each round's, the engine
loop's wall time (in its process, paths loaded) and the new process's, and the ratios
pipeline rounds / engine loop and whole pipeline / engine process.

    python bench/optimise.py [--keep DIR]
"""

from __future__ import annotations

import argparse
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
import sys, time
from pathlib import Path
start = time.perf_counter()
from dynalloc_dagster.storage.io_managers import load_scenario_paths
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings, run_optimisation
files = sorted((Path(sys.argv[1]) / "scenario_paths").glob("*.npz"))
paths = {f.stem: load_scenario_paths(f) for f in files}
loaded = time.perf_counter()
result = run_optimisation(paths, InvestmentObjectives(), AgentSettings())
done = time.perf_counter()
result.history.write_parquet(sys.argv[2])
print(len(paths), loaded - start, done - loaded, result.stop_reason)
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
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True)
        run(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="dynalloc-bench-") as tmp:
            run(Path(tmp))


def run(folder: Path) -> None:
    import polars as pl

    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data = folder / "data"
    env = os.environ | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data)}
    total, _ = timed([sys.executable, "-m", "dynalloc_dagster"], env)
    walls = stage_walls(home)
    history = pl.read_parquet(data / "optimisation_history.parquet")
    engine_history = folder / "engine_history.parquet"
    engine, engine_out = timed(
        [sys.executable, "-c", ENGINE_ONLY, str(data), str(engine_history)], env)
    n_scenarios, load_s, loop_s, engine_stop = engine_out.split()
    engine_ids = pl.read_parquet(engine_history)["config_id"].to_list()
    same = engine_ids == history["config_id"].to_list()

    per_round: dict[str, float] = defaultdict(float)
    for _, rnd, wall in walls:
        if rnd:
            per_round[rnd] += wall
    rounds_s = sum(per_round.values())
    print("optimisation loop: 6 scenarios x 1000 paths, default objectives and agent")
    print("through Dagster (python -m dynalloc_dagster, new process, fresh"
          " DAGSTER_HOME):")
    print(f"  whole pipeline                   {total:7.2f} s   target < 25 s")
    print(f"  runs                             {len(walls):7d}")
    print(f"  configs evaluated                {history.height:7d}")
    print(f"  stop reason                      {history['stop_reason'][-1]}")
    print(f"  best objective                   {history['best_objective_so_far'][-1]:7.4f}")
    for job in ("ingest_job", "scenario_paths_job", "reports_job"):
        print(f"  {job:<32} {sum(w for j, _, w in walls if j == job):7.2f} s")
    print(f"  optimisation rounds              {rounds_s:7.2f} s")
    for rnd in sorted(per_round, key=int):
        n = history.filter(pl.col("round") == int(rnd)).height
        print(f"    round {int(rnd):>2}: {n:3d} configs  {per_round[rnd]:6.2f} s")
    print(f"engine alone (run_optimisation on the pipeline's {n_scenarios} scenario files,"
          " new process):")
    print(f"  process                          {engine:7.2f} s")
    print(f"  imports + loading the paths      {float(load_s):7.2f} s")
    print(f"  the loop                         {float(loop_s):7.2f} s   ({len(engine_ids)}"
          f" configs, stop: {engine_stop})")
    print(f"same configs in the same order     {'yes' if same else 'NO'}")
    print(f"ratio rounds through Dagster / engine loop     {rounds_s / float(loop_s):6.2f}"
          "   target <= 3")
    print(f"ratio whole pipeline / engine process          {total / engine:6.2f}")


if __name__ == "__main__":
    main()
