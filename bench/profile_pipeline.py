"""Where the pipeline's time goes: the whole pipeline under cProfile, aggregated by area.

Runs ``python -m dynalloc_dagster`` under cProfile in a new process on a fresh
DAGSTER_HOME and data root (or reads a profile written before with ``--prof``), then
prints the inclusive time of the functions that mark each area: the code location
(code server start, job snapshots and execution plans over gRPC), run creation, the
run's execution, and inside it the event-log writes, the IO manager's reads and
writes, the data-root lease, each asset's own computation (SQL models, charts, PDF,
evaluations ...) and imports. Areas nest (an asset's computation includes the event-log
writes it logs), so the rows do not add up to the total; the time of the code server's
own process is seen here as the wait on its gRPC calls.

    python bench/profile_pipeline.py [--prof FILE] [--top 25]
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

AREAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("code location: start the code server, load it", "_core/workspace/context.py",
     ("__init__",)),
    ("code location: job snapshot per stage (gRPC)",
     "_core/remote_representation/code_location.py", ("get_job",)),
    ("code location: execution plan per stage (gRPC)",
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
    ("  charts.pdf from the PNGs (pdf_of_pngs)", "dynalloc_dagster/committee/pdf.py",
     ("pdf_of_pngs",)),
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
    parser.add_argument("--prof", type=Path, help="read this cProfile output instead of running")
    parser.add_argument("--top", type=int, default=25, help="asset functions listed")
    args = parser.parse_args()
    if args.prof:
        report(args.prof, args.top)
        return
    with tempfile.TemporaryDirectory(prefix="dynalloc-profile-") as tmp:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        env = os.environ | {"DAGSTER_HOME": str(home),
                            "DYNALLOC_DATA_ROOT": str(Path(tmp) / "data")}
        prof = Path(tmp) / "pipeline.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m",
                        "dynalloc_dagster"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        report(prof, args.top)


def report(prof: Path, top: int) -> None:
    stats = pstats.Stats(str(prof))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"pipeline under cProfile: {total:.1f} s in the main process")
    print(f"{'area (inclusive; areas nest)':<52} {'s':>7} {'share':>6}")
    for label, suffix, names in AREAS:
        seconds = area_seconds(stats, suffix, names)
        print(f"{label:<52} {seconds:7.2f} {100 * seconds / total:5.1f}%")
    print(f"\nasset functions (inclusive), top {top}:")
    for name, seconds in asset_seconds(stats)[:top]:
        print(f"  {name:<58} {seconds:7.2f} {100 * seconds / total:5.1f}%")


if __name__ == "__main__":
    main()
