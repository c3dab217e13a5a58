"""The whole pipeline on the aws environment here against the local environment, timed.

aws: moto's server (S3, KMS, EC2, IAM, Secrets Manager) and a throwaway PostgreSQL
cluster on 127.0.0.1, deployment/aws/dagster.yaml, the EC2 run launcher, and stand-in
EC2 workers running each instance's user data as a subprocess (tests/aws/aws_deployment.py):
every stage is its own ``python -m dagster api execute_run`` process, data in S3 under
SSE-KMS, runs and events in PostgreSQL. local: the same stages in this process
(``dynalloc_dagster.orchestration.pipeline.run_pipeline``) on SQLite and files. Same run config for
both (tests' small config by default: 50 paths, 1-year horizon, 8 + 4 + 4 configs).

    python bench/aws_vs_local.py [--paths N]

Needs moto[server] and PostgreSQL's server binaries (/usr/lib/postgresql/*/bin).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "aws"), str(ROOT / "tests" / "dagster")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, default=50, help="paths per scenario")
    args = parser.parse_args()

    import warnings

    import dagster as dg
    from aws_deployment import StandInWorkers, provision, run_pipeline_on_aws, workspace
    from aws_test_support import moto_server, postgres_bin, postgres_cluster
    from dagster_test_support import small_run_config

    from dynalloc_dagster.definitions import build_definitions
    from dynalloc_dagster.orchestration.pipeline import run_pipeline

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    run_config = small_run_config(n_paths=args.paths)
    bindir = postgres_bin()
    if bindir is None:
        print("PostgreSQL server binaries not found (apt-get install postgresql)")
        return 2

    with tempfile.TemporaryDirectory(prefix="dynalloc-bench-") as tmp:
        # local: in process, SQLite + files
        os.environ.pop("DYNALLOC_ENV", None)
        defs = build_definitions("local", data_root=str(Path(tmp) / "data"))
        (Path(tmp) / "local_home").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(tmp) / "local_home")) as instance:
            start = time.perf_counter()
            local_runs = run_pipeline(defs, instance, run_config=run_config)
            local_s = time.perf_counter() - start
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in local_runs)

        # aws: moto + PostgreSQL + EC2 launcher + stand-in workers
        with moto_server() as endpoint, postgres_cluster(bindir) as postgres:
            deployment = provision(endpoint, postgres, Path(tmp) / "aws_home")
            os.environ.update(deployment.environment)
            aws_defs = build_definitions("aws")
            workers = StandInWorkers(endpoint=endpoint, work_dir=Path(tmp) / "workers")
            with dg.DagsterInstance.get() as instance, workers.running(), \
                    workspace(instance) as context:
                start = time.perf_counter()
                aws_runs = run_pipeline_on_aws(instance, context, aws_defs, workers,
                                               run_config)
                aws_s = time.perf_counter() - start
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in aws_runs)

    print(f"run config: {args.paths} paths x {len(local_runs)} stage runs")
    print(f"local (in process, SQLite + files):            {local_s:7.1f} s,"
          f" {len(local_runs)} runs")
    print(f"aws (EC2 launcher + stand-in workers, moto S3/KMS, PostgreSQL):"
          f" {aws_s:7.1f} s, {len(aws_runs)} runs, {aws_s / len(aws_runs):.1f} s per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
