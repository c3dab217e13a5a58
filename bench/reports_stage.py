"""The reports stage alone, timed: wall and CPU seconds, and where they go.

The reports stage (SQL models and their schema tests, cost sensitivity, the live signal,
the Bedrock narrative's offline fallback, the charts, the report and its PDF) reads what
the earlier stages stored. This bench runs the default pipeline once
(``python -m dynalloc_dagster`` on a fresh DAGSTER_HOME and data root, 6 scenarios x 1000
paths, the default agent), or reuses a folder a previous ``--keep`` left, then launches the
reports stage again on that data root ``--repeat`` times, as ``python -m dynalloc_dagster``
does (created for the workspace's code location, loaded and executed in this process; the
location is loaded before the clock starts, as it is once per pipeline before its first
stage, the objects alive are frozen out of the garbage collector before each run, and
the runs share the objects they read, as ``run_pipeline``'s stages do).

The first repeat is the stage launched alone in a new process: it reads the scenario
paths (some 400 MB, their sha256 checked) and loads the engine's compiled kernels. The
later repeats find both in memory, as the reports stage of a pipeline does (the paths
kept since the first stage wrote them, the kernels loaded by the rounds): their median
is the stage's figure, against the target.

Printed per repeat: the stage's wall seconds and CPU seconds (user + system of this
process and of its child processes, the chart workers). The machine is shared, so CPU
seconds are the steadier figure. ``--steps N`` prints the last run's N longest steps
(wall seconds from its event log) and its event count, without a profiler's overhead.
With ``--profile`` the last repeat runs under cProfile and the areas of
``bench/profile_pipeline.py`` are printed for it.

    python bench/reports_stage.py [--keep DIR] [--repeat 3] [--steps 12] [--profile cpu]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from conditions import conditions

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TARGET_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="the pipeline's folder (dagster_home/, data/): reused when it"
                        " holds a finished pipeline, else made there and kept")
    parser.add_argument("--repeat", type=int, default=4,
                        help="reports stage runs timed (the first alone, the others as in a"
                        " pipeline: module docstring)")
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help="print the N longest steps of the last run (wall seconds)")
    parser.add_argument("--profile", choices=("wall", "cpu"),
                        help="run the last repeat under cProfile timing wall or CPU seconds"
                        " of this process and print its areas")
    args = parser.parse_args()
    if args.keep:
        run(args.keep, args.repeat, args.profile, args.steps)
    else:
        with tempfile.TemporaryDirectory(prefix="dynalloc-reports-") as tmp:
            run(Path(tmp), args.repeat, args.profile, args.steps)


def run(folder: Path, repeat: int, profile: str | None, steps: int = 0) -> None:
    home, data = folder / "dagster_home", folder / "data"
    if not (data / "report.parquet").exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        print(f"running the default pipeline once into {folder} ...", flush=True)
        subprocess.run([sys.executable, "-m", "dynalloc_dagster"], cwd=ROOT, check=True,
                       capture_output=True, env=os.environ | {
                           "DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(data)})
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DYNALLOC_DATA_ROOT"] = str(data)

    import dagster as dg

    import dynalloc_dagster.definitions  # noqa: F401  imported by the earlier stages in a pipeline
    from dynalloc_dagster.orchestration.pipeline import (
        freeze_survivors,
        heap_frozen,
        workspace_launcher,
    )
    from dynalloc_dagster.orchestration.stages import stage_request
    from dynalloc_dagster.storage.io_managers import objects_kept_across_runs
    from dynalloc_dagster.tags import REPORTS_JOB

    print(f"reports stage on {data}; {conditions()}")
    print(f"{'run':<10} {'wall s':>7} {'CPU s':>7}   target wall <= {TARGET_S:.0f} s")
    walls = []
    with dg.DagsterInstance.get() as instance, workspace_launcher(instance) as launcher, \
            objects_kept_across_runs(), heap_frozen():
        for i in range(repeat):
            profiler = None
            if profile and i == repeat - 1:
                profiler = cProfile.Profile(time.process_time) if profile == "cpu" \
                    else cProfile.Profile()
            request = stage_request(REPORTS_JOB, instance, pipeline="bench")
            freeze_survivors()  # as run_pipeline does before each stage, off the clock
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            if profiler:
                profiler.enable()
            finished = launcher(request)
            if profiler:
                profiler.disable()
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            if finished.status != dg.DagsterRunStatus.SUCCESS:
                raise SystemExit(f"the reports run {finished.run_id} ended {finished.status}")
            label = f"{i + 1}{' (prof)' if profiler else ''}"
            print(f"{label:<10} {wall:7.2f} {cpu:7.2f}"
                  + ("   alone: paths read, kernels loaded" if i == 0 else ""), flush=True)
            if i and not profiler:
                walls.append(wall)
        if walls:
            print(f"{'median':<10} {statistics.median(walls):7.2f}"
                  f"           of the {len(walls)} repeats after the first, as in a pipeline;"
                  f" target <= {TARGET_S:.0f} s")
        if steps:
            print_steps(instance, finished.run_id, steps)
    if profile:
        sys.path.insert(0, str(ROOT / "bench"))
        from profile_pipeline import report_areas

        prof = folder / "reports_stage.prof"
        profiler.dump_stats(prof)  # type: ignore[union-attr]
        print()
        report_areas(prof, 25)


def print_steps(instance, run_id: str, top: int) -> None:
    """The run's steps by wall seconds (STEP_START to STEP_SUCCESS in its event log), the
    ``top`` longest, and how many events the run wrote."""
    import dagster as dg

    events = instance.all_logs(run_id)
    started, seconds = {}, {}
    for event in events:
        kind = event.dagster_event.event_type if event.dagster_event else None
        if kind == dg.DagsterEventType.STEP_START:
            started[event.step_key] = event.timestamp
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            seconds[event.step_key] = event.timestamp - started[event.step_key]
    print(f"\nsteps of the last run by wall seconds ({len(seconds)} steps,"
          f" {len(events)} events):")
    for step, wall in sorted(seconds.items(), key=lambda item: -item[1])[:top]:
        print(f"  {step:<50} {wall:6.2f}")


def cpu_seconds() -> float:
    """User + system seconds of this process, its ended children and its live
    descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
            + sum(_proc_cpu(pid) for pid in _descendants(os.getpid())))


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


if __name__ == "__main__":
    main()
