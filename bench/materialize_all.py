"""The whole asset graph through Dagster on a fresh local DAGSTER_HOME, timed.

Runs ``python -m dynalloc_dagster.pipeline`` (ingest -> 5 scenarios x 1000 paths ->
5 x 100 evaluations -> reports) in a new process against an empty DAGSTER_HOME and data
root, then the same engine work alone (paths, evaluations, robustness) in another new
process, and prints both walls and their difference: Dagster's own overhead (process
start-up and imports included in both).

    python bench/materialize_all.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ENGINE_ONLY = """
import datetime as dt
import polars as pl
from engine.market.calibration import calibrate
from engine.market.market_data import synthetic_market_data
from engine.market.paths import simulate_scenario
from engine.market.regimes import REGIMES
from engine.analysis.robustness import robustness_scores
from engine.optimisation.sampling import sample_configs
from engine.strategy import evaluate
market = synthetic_market_data(dt.date.today(), years=10, seed=0)
calibrate(market.history)
configs = sample_configs(100, 0)
tables = [evaluate(simulate_scenario(r, 1000, 0), configs) for r in REGIMES.values()]
robustness_scores(pl.concat(tables))
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dynalloc-bench-") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        data = str(Path(tmp) / "data")
        env = os.environ | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": data}
        total = timed([sys.executable, "-m", "dynalloc_dagster.pipeline"], env)
        engine = timed([sys.executable, "-c", ENGINE_ONLY], env)
    print("whole graph: 5 scenarios x 1000 paths x 100 configs, fresh DAGSTER_HOME")
    print(f"dagster pipeline (4 runs, new process)  {total:7.2f} s   target < 60 s")
    print(f"engine alone (same work, new process)   {engine:7.2f} s")
    print(f"dagster overhead (difference)           {total - engine:7.2f} s   target < 30 s")


if __name__ == "__main__":
    main()
