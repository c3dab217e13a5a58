"""The optimisation loop through Dagster and without it, on the same work, timed.

1. ``python -m dynalloc_dagster`` in a new process on a fresh DAGSTER_HOME and
   data root: ingest -> 6 scenarios (the five named and the calibrated one) x 1000 paths
   -> the agent's rounds until it stops -> reports. The command's own ``main``, with each
   stage's launch timed (wall and this process's CPU, every thread) and printed as it
   ends; a round's time is that of its runs (two for round 0, its configs then its
   evaluations and history; one for each later round: dynalloc_dagster.orchestration.stages).
2. The engine's loop (``engine.optimisation.loop.run_optimisation``) in another new
   process, on the six scenario files the pipeline stored (the same paths), with the
   default objectives and agent (the same seed and proposer), so it proposes the same
   configs: the bench checks that both histories list the same config ids in the same
   order and says so.

Printed: the whole pipeline's wall and CPU time (user + system of the process tree, the
code server included), each stage's and each round's, the engine loop's (in its process,
paths loaded) and the new process's, and the ratios pipeline rounds / engine loop and
whole pipeline / engine process, in wall and in CPU time. Both sides run in one
invocation, one after the other; on a shared machine the CPU ratios are the steadier
figures (the wall ones grow with other users' load, printed at the end). Numba compiles
the engine's kernels into its on-disk cache on first use: on a fresh checkout the first
run's pipeline side pays that (several seconds of round 0 and the reports) and the
engine side does not, so compare runs made with the cache warm.

    python bench/optimise.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from conditions import conditions

ROOT = Path(__file__).resolve().parent.parent
FIRST_STAGES = ("pipeline_start_job", "ingest_job", "scenario_paths_job")
"""The stages before the optimisation rounds (the first one both of the others)."""

ENGINE_ONLY = """
import sys, time
from pathlib import Path
start = time.perf_counter()
from dynalloc_dagster.storage.io_managers import load_scenario_paths
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings, run_optimisation
files = sorted((Path(sys.argv[1]) / "scenario_paths").glob("*.npz"))
paths = {f.stem: load_scenario_paths(f) for f in files}
loaded, loaded_cpu = time.perf_counter(), time.process_time()
result = run_optimisation(paths, InvestmentObjectives(), AgentSettings())
done, done_cpu = time.perf_counter(), time.process_time()
result.history.write_parquet(sys.argv[2])
print(len(paths), loaded - start, done - loaded, done_cpu - loaded_cpu, result.stop_reason)
"""

PIPELINE = """
import json, sys, time
import dynalloc_dagster.orchestration.pipeline as pipeline
from dynalloc_dagster.orchestration.cli import main
launch = pipeline.WorkspaceLauncher.__call__
def timed_launch(self, request):
    wall, cpu = time.perf_counter(), time.process_time()
    run = launch(self, request)
    print("STAGE", json.dumps([run.job_name, run.tags.get("dynalloc/round", ""),
                               time.perf_counter() - wall, time.process_time() - cpu]))
    return run
pipeline.WorkspaceLauncher.__call__ = timed_launch
sys.exit(main([]))
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of ``cmd`` in a new process; the CPU time is
    user + system of the process and every child it waited for (the code server
    included), so it does not grow with the load other users put on the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def stages(stdout: str) -> list[tuple[str, str, float, float]]:
    """(job, round, wall s, CPU s) of every stage the pipeline script printed, in order."""
    return [tuple(json.loads(line.removeprefix("STAGE "))) for line in stdout.splitlines()
            if line.startswith("STAGE ")]


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

    print(conditions(), flush=True)
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data = folder / "data"
    env = os.environ | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data)}
    total, total_cpu, pipeline_out = timed([sys.executable, "-c", PIPELINE], env)
    runs = stages(pipeline_out)
    history = pl.read_parquet(data / "optimisation_history.parquet")
    engine_history = folder / "engine_history.parquet"
    engine, engine_cpu, engine_out = timed(
        [sys.executable, "-c", ENGINE_ONLY, str(data), str(engine_history)], env)
    n_scenarios, load_s, loop_s, loop_cpu, engine_stop = engine_out.split()
    engine_ids = pl.read_parquet(engine_history)["config_id"].to_list()
    same = engine_ids == history["config_id"].to_list()

    per_round: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for _, rnd, wall, cpu in runs:
        if rnd:
            per_round[rnd][0] += wall
            per_round[rnd][1] += cpu
            per_round[rnd][2] += 1
    rounds_s = sum(wall for wall, _, _ in per_round.values())
    rounds_cpu = sum(cpu for _, cpu, _ in per_round.values())
    print("optimisation loop: 6 scenarios x 1000 paths, default objectives and agent")
    print("through Dagster (python -m dynalloc_dagster, new process, fresh"
          " DAGSTER_HOME):")
    print(f"  whole pipeline                   {total:7.2f} s   target < 25 s")
    print(f"  CPU (user + sys, code server in) {total_cpu:7.2f} s")
    print(f"  runs                             {len(runs):7d}")
    print(f"  configs evaluated                {history.height:7d}")
    print(f"  stop reason                      {history['stop_reason'][-1]}")
    print(f"  best objective                   {history['best_objective_so_far'][-1]:7.4f}")
    print(f"  {'stage (wall, CPU of this process)':<32} {'wall s':>7} {'CPU s':>7}")
    for job in (*FIRST_STAGES, "reports_job"):
        rows = [(w, c) for j, _, w, c in runs if j == job]
        if rows:
            print(f"  {job:<32} {sum(w for w, _ in rows):7.2f}"
                  f" {sum(c for _, c in rows):7.2f}")
    print(f"  optimisation rounds              {rounds_s:7.2f} {rounds_cpu:7.2f}")
    for rnd in sorted(per_round, key=int):
        n = history.filter(pl.col("round") == int(rnd)).height
        wall, cpu, n_runs = per_round[rnd]
        print(f"    round {int(rnd):>2}: {n:3d} configs, {n_runs} run(s)"
              f"   {wall:7.2f} {cpu:7.2f}")
    print(f"engine alone (run_optimisation on the pipeline's {n_scenarios} scenario files,"
          " new process):")
    print(f"  process                          {engine:7.2f} s")
    print(f"  CPU (user + sys)                 {engine_cpu:7.2f} s")
    print(f"  imports + loading the paths      {float(load_s):7.2f} s")
    print(f"  the loop                         {float(loop_s):7.2f} s   ({len(engine_ids)}"
          f" configs, stop: {engine_stop})")
    print(f"  the loop's CPU                   {float(loop_cpu):7.2f} s")
    print(f"same configs in the same order     {'yes' if same else 'NO'}")
    print(f"ratio rounds through Dagster / engine loop     {rounds_s / float(loop_s):6.2f}"
          "   target <= 3")
    print(f"  the same in CPU time                         {rounds_cpu / float(loop_cpu):6.2f}")
    print(f"ratio whole pipeline / engine process          {total / engine:6.2f}")
    print(f"ratio of their CPU times                       {total_cpu / engine_cpu:6.2f}")
    print(f"load average at the end (1 min, {os.cpu_count()} cores)   {os.getloadavg()[0]:6.2f}")


if __name__ == "__main__":
    main()
