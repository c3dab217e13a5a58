"""Where the pipeline's time goes: per run, per event type, and under cProfile by area.

Runs ``python -m dynalloc_dagster``'s ``main`` (``launch_pipeline``: every stage created
on the workspace's code location and executed in this process) in a new process on a
fresh DAGSTER_HOME and data root, with timers (wall and this process's CPU) around:

- the code location's load (from ``launch_pipeline``'s start to its first stage) and
  the end (after the last stage: the code server's shutdown, when there is one);
- per run: the job snapshot and execution plan (``CodeLocation.get_job`` and
  ``get_execution_plan``), the run's creation (``instance.create_run``), its execution
  (``execute_run``) and, inside that, the event-log writes (the event log storage's
  ``store_event`` / ``store_event_batch``), the IO manager's reads and writes; then the
  chain's ``next_stage_request`` (storage reads of the run's metadata, the next request);
- every event-log write by event type (count, seconds) over the whole pipeline.

With ``--cprofile`` the same run is also under cProfile (slower, so the timers grow with
it), and the inclusive time of the functions that mark each area is printed: the code
location, run creation, execution, event-log writes, IO, the lease, each asset's own
computation (SQL models, charts, PDF, evaluations ...) and imports. Areas nest, so those
rows do not add up to the total; a code server's own process is seen as the wait on its
gRPC calls. ``--prof FILE`` reads a cProfile output written before (areas only).

    python bench/profile_pipeline.py [--cprofile] [--prof FILE] [--top 25]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conditions import conditions

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import cProfile, collections, json, sys, time
import dagster as dg
from dagster._core.remote_representation import code_location as cl
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
import dynalloc_dagster.orchestration.pipeline as pipeline
from dynalloc_dagster.orchestration.cli import main
from dynalloc_dagster.storage import io_managers

clock = lambda: (time.perf_counter(), time.process_time())
runs, events = [], collections.defaultdict(lambda: [0, 0.0, 0.0])
state = {"run": None, "first": None, "last": None, "start": None}
depth = collections.Counter()

def timed(owner, name, phase):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        depth[phase] += 1
        wall, cpu = clock()
        try:
            return original(*args, **kwargs)
        finally:
            depth[phase] -= 1
            if state["run"] is not None and depth[phase] == 0:
                w, c = clock()
                slot = state["run"].setdefault(phase, [0, 0.0, 0.0])
                slot[0] += 1; slot[1] += w - wall; slot[2] += c - cpu
    setattr(owner, name, wrapper)

def store(original, batch):
    def wrapper(self, event_or_events):
        wall, cpu = clock()
        try:
            return original(self, event_or_events)
        finally:
            w, c = clock()
            batch_events = event_or_events if batch else [event_or_events]
            kinds = {e.dagster_event.event_type_value if e.dagster_event else "LOG_MESSAGE"
                     for e in batch_events}
            kind = "+".join(sorted(kinds)) + (" (batch)" if batch else "")
            slot = events[kind]
            slot[0] += len(batch_events); slot[1] += w - wall; slot[2] += c - cpu
            if state["run"] is not None:
                run_slot = state["run"].setdefault("event-log writes", [0, 0.0, 0.0])
                run_slot[0] += len(batch_events); run_slot[1] += w - wall
                run_slot[2] += c - cpu
    return wrapper

SqlEventLogStorage.store_event = store(SqlEventLogStorage.store_event, False)
SqlEventLogStorage.store_event_batch = store(SqlEventLogStorage.store_event_batch, True)
timed(cl.CodeLocation, "get_job", "job snapshot")
for location in (cl.InProcessCodeLocation, cl.GrpcServerCodeLocation):
    timed(location, "get_execution_plan", "execution plan")
timed(dg.DagsterInstance, "create_run", "create run")
timed(pipeline, "execute_run", "execute")
timed(io_managers._PartitionedIOManager, "_store", "IO writes")
timed(io_managers._PartitionedIOManager, "_load_all", "IO reads")
timed(io_managers.PolarsParquetIOManager, "load_stored", "IO reads")
timed(pipeline, "next_stage_request", "chain (next_stage_request)")

launch, run_pipeline = pipeline.launch_pipeline, pipeline.run_pipeline
def timed_launch(*args, **kwargs):
    state["start"] = clock()
    try:
        return launch(*args, **kwargs)
    finally:
        state["end"] = clock()
pipeline.launch_pipeline = timed_launch
def timed_run_pipeline(*args, launcher, **kwargs):
    def timed_launcher(request):
        now = clock()
        if state["first"] is None:
            state["first"] = now
        if state["run"] is not None:  # the chain after the previous run
            state["run"]["total"][0] = now[0] - state["run"]["total"][0]
            state["run"]["total"][1] = now[1] - state["run"]["total"][1]
            runs.append(state["run"])
        state["run"] = {"total": list(now)}
        run = launcher(request)
        state["run"]["job"] = run.job_name
        state["run"]["round"] = run.tags.get("dynalloc/round", "")
        return run
    try:
        return run_pipeline(*args, launcher=timed_launcher, **kwargs)
    finally:
        now = clock()
        if state["run"] is not None:
            state["run"]["total"] = [now[0] - state["run"]["total"][0],
                                     now[1] - state["run"]["total"][1]]
            runs.append(state["run"])
        state["run"], state["last"] = None, now
pipeline.run_pipeline = timed_run_pipeline

profile = cProfile.Profile() if sys.argv[1] else None
if profile:
    profile.enable()
code = main([])
if profile:
    profile.disable()
    profile.dump_stats(sys.argv[1])
start, first, last, end = state["start"], state["first"], state["last"], state["end"]
print("PROFILE " + json.dumps({
    "runs": runs, "events": events,
    "load": [first[0] - start[0], first[1] - start[1]],
    "end": [end[0] - last[0], end[1] - last[1]],
    "launch": [end[0] - start[0], end[1] - start[1]]}))
sys.exit(code)
"""

PHASES = ("job snapshot", "execution plan", "create run", "execute", "event-log writes",
          "IO reads", "IO writes", "chain (next_stage_request)")
"""The per-run columns; event-log writes and IO are inside execute."""

AREAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("code location: start the code server, load it", "_core/workspace/context.py",
     ("__init__",)),
    ("code location: job snapshot per stage",
     "_core/remote_representation/code_location.py", ("get_job",)),
    ("code location: execution plan per stage",
     "_core/remote_representation/code_location.py", ("get_execution_plan",)),
    ("run creation (instance.create_run)", "_core/instance/methods/run_methods.py",
     ("create_run",)),
    ("run execution (execute_run, all steps)", "_core/execution/api.py", ("execute_run",)),
    ("  event-log writes (handle_new_event)", "_core/instance/methods/event_methods.py",
     ("handle_new_event",)),
    ("  IO manager reads", "dynalloc_dagster/storage/io_managers.py",
     ("load_input", "load_stored")),
    ("  IO manager writes", "dynalloc_dagster/storage/io_managers.py", ("handle_output",)),
    ("  data-root lease (hold, release)", "dynalloc_dagster/storage/lease.py",
     ("hold_data_root", "end_of_run")),
    ("  asset checks", "dynalloc_dagster/checks.py", ()),
    ("  SQL models (run_model)", "dbt_like_reports/loader.py", ("run_model",)),
    ("  SQL schema tests (run_test)", "dbt_like_reports/schema_tests.py", ("run_test",)),
    ("  chart figures (plots.*)", "dynalloc_dagster/committee/plots.py",
     ("scenario_comparison", "sharpe_by_scenario", "robustness_ranking", "risk_return",
      "allocation_dynamics", "parameter_sensitivity", "weight_window_interaction",
      "optimisation_convergence", "cost_sensitivity", "summary_table", "backtest_nav",
      "backtest_equity_weight")),
    ("  chart PNG rendering (png_bytes)", "dynalloc_dagster/committee/plots.py", ("png_bytes",)),
    ("  PDF (report_pdf)", "dynalloc_dagster/committee/pdf.py", ("report_pdf",)),
    ("  charts.pdf pages (chart_page, pdf_of_pages)", "dynalloc_dagster/committee/pdf.py",
     ("chart_page", "pdf_of_pages")),
    ("  engine evaluate()", "engine/strategy/evaluation.py", ("evaluate",)),
    ("  engine scenario simulation", "engine/market/paths.py", ("simulate_scenario",)),
    ("imports (_find_and_load)", "<frozen importlib._bootstrap>", ("_find_and_load",)),
)
"""(label, file suffix, function names): the area's time is the sum of those functions'
inclusive times (names empty: every function of the file called from outside it)."""


def area_seconds(stats: pstats.Stats, suffix: str, names: tuple[str, ...]) -> float:
    """Inclusive seconds of the matching functions, each counted where it is entered from
    a function that does not match (so a match calling a match is not counted twice)."""
    def matches(func: tuple[str, int, str]) -> bool:
        filename, _, name = func
        return filename.endswith(suffix) and (not names or name in names)

    total = 0.0
    for func, (_, _, _, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if not matches(func):
            continue
        for caller, (_, _, _, cumulative) in callers.items():
            if not matches(caller):
                total += cumulative
    return total


def asset_seconds(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Inclusive seconds of each function defined in dynalloc_dagster/assets/ (the assets'
    own computations and their helpers), largest first."""
    rows = []
    for (filename, line, name), (_, _, _, cumulative, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "dynalloc_dagster/assets/" in filename and not any(
                "dynalloc_dagster/assets/" in c[0] for c in callers):
            rows.append((f"{Path(filename).stem}.{name}:{line}", cumulative))
    return sorted(rows, key=lambda r: -r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cprofile", action="store_true",
                        help="also run under cProfile and print the areas")
    parser.add_argument("--prof", type=Path, help="read this cProfile output instead of running")
    parser.add_argument("--top", type=int, default=25, help="asset functions listed")
    args = parser.parse_args()
    if args.prof:
        report_areas(args.prof, args.top)
        return
    print(conditions(), flush=True)
    with tempfile.TemporaryDirectory(prefix="dynalloc-profile-") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        env = os.environ | {"DAGSTER_HOME": str(home),
                            "DYNALLOC_DATA_ROOT": str(Path(tmp) / "data")}
        prof = Path(tmp) / "pipeline.prof"
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, str(prof) if args.cprofile else ""],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        (line,) = (x for x in done.stdout.splitlines() if x.startswith("PROFILE "))
        report_phases(json.loads(line.removeprefix("PROFILE ")))
        if args.cprofile:
            report_areas(prof, args.top)
    print(f"load average at the end (1 min, {os.cpu_count()} cores): {os.getloadavg()[0]:.2f}")


def report_phases(profile: dict) -> None:
    """The per-run table (wall / CPU seconds of each phase) and the event-log writes by
    event type."""
    launch_wall, launch_cpu = profile["launch"]
    print(f"launch_pipeline: {launch_wall:.2f} s wall, {launch_cpu:.2f} s CPU (this process)")
    print(f"  code location load (before the first run) {profile['load'][0]:6.2f} s wall"
          f" {profile['load'][1]:6.2f} s CPU")
    print(f"  after the last run (shutdown)             {profile['end'][0]:6.2f} s wall"
          f" {profile['end'][1]:6.2f} s CPU")
    short = ("snapshot", "plan", "create", "execute", "events", "IO read", "IO write", "chain")
    print("\nper run, wall / CPU s (events: their count first; events and IO are inside"
          " execute; chain: next_stage_request after the run)")
    print(f"  {'job':<28} {'rnd':>3} {'total':>11} " + " ".join(f"{s:>13}" for s in short))
    sums: dict[str, list[float]] = {p: [0, 0.0, 0.0] for p in (*PHASES, "total")}
    for run in profile["runs"]:
        cells = []
        for phase in PHASES:
            n, wall, cpu = run.get(phase, [0, 0.0, 0.0])
            sums[phase] = [sums[phase][0] + n, sums[phase][1] + wall, sums[phase][2] + cpu]
            cells.append(f"{n:>4d} " if phase == "event-log writes" else "")
            cells[-1] += f"{wall:4.2f}/{cpu:4.2f}"
        sums["total"][1] += run["total"][0]
        sums["total"][2] += run["total"][1]
        print(f"  {run['job']:<28} {run['round']:>3} {run['total'][0]:5.2f}/{run['total'][1]:5.2f} "
              + " ".join(f"{c:>13}" for c in cells))
    cells = [(f"{int(sums[p][0]):>4d} " if p == "event-log writes" else "")
             + f"{sums[p][1]:4.1f}/{sums[p][2]:4.1f}" for p in PHASES]
    print(f"  {'all runs':<28} {'':>3} {sums['total'][1]:5.1f}/{sums['total'][2]:5.1f} "
          + " ".join(f"{c:>13}" for c in cells))
    print("\nevent-log writes by event type (whole pipeline)")
    print(f"  {'event type':<44} {'count':>6} {'wall s':>7} {'CPU s':>7}")
    for kind, (n, wall, cpu) in sorted(profile["events"].items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:<44} {n:6d} {wall:7.2f} {cpu:7.2f}")


def report_areas(prof: Path, top: int) -> None:
    stats = pstats.Stats(str(prof))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\npipeline under cProfile: {total:.1f} s in the main process")
    print(f"{'area (inclusive; areas nest)':<52} {'s':>7} {'share':>6}")
    for label, suffix, names in AREAS:
        seconds = area_seconds(stats, suffix, names)
        print(f"{label:<52} {seconds:7.2f} {100 * seconds / total:5.1f}%")
    print(f"\nasset functions (inclusive), top {top}:")
    for name, seconds in asset_seconds(stats)[:top]:
        print(f"  {name:<58} {seconds:7.2f} {100 * seconds / total:5.1f}%")


if __name__ == "__main__":
    main()
