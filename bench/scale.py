"""100, 1,000 and 10,000 configs through Dagster on one machine: wall time and peak memory.

Each size runs the whole pipeline (``python -m dynalloc_dagster``) in a new
process on a fresh DAGSTER_HOME and data root, 1000 paths per scenario, with the agent
set to evaluate N configs in its Latin hypercube round 0 and stop (initial_batch =
max_configs = N), so the figures measure the evaluation of N configs end to end:
ingest, scenario paths, the N x scenarios evaluations, the history and the reports.
Peak memory is the largest resident set of the pipeline process and its children
(getrusage RUSAGE_CHILDREN, ru_maxrss).

    python bench/scale.py [--sizes 100 1000 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def run(n_configs: int) -> tuple[float, float]:
    """(wall seconds, peak RSS GiB) of the pipeline for ``n_configs`` configs."""
    with tempfile.TemporaryDirectory(prefix="dynalloc-scale-") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        config = Path(tmp) / "run.yaml"
        config.write_text(yaml.safe_dump({"resources": {"agent": {"config": {
            "initial_batch": n_configs, "max_configs": n_configs}}}}))
        env = os.environ | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": f"{tmp}/data"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dynalloc_dagster", "--config",
                        str(config)], cwd=ROOT, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    args = parser.parse_args()
    print("configs   wall (s)   s/config   peak RSS (GiB, max so far)")
    for n in args.sizes:
        wall, peak = run(n)
        print(f"{n:7d}   {wall:8.1f}   {wall / n:8.4f}   {peak:6.2f}")


if __name__ == "__main__":
    main()
