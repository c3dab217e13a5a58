"""Run workers as processes of this machine: which process started a run, and whether it
is still alive. The local run launcher's health check and the data-root lease's staleness
rule both judge a run by them."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

_CLOCK_SLACK_S = 2.0  # /proc start times are in clock ticks since boot: allow rounding


def worker_start(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, unix time) of the ``RUN_START`` event of ``run_id``, or None before it."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    if not records:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event else None
    return None if pid is None else (int(pid), float(entry.timestamp))


def process_alive(pid: int, *, not_after: float) -> tuple[bool, str]:
    """Whether process ``pid`` exists, is not a zombie, and (where ``/proc`` tells) started
    no later than ``not_after`` (unix seconds) plus a clock slack of 2 s; with why not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, "no such process"
    except PermissionError:
        pass  # exists, owned by another user
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True, "alive"  # no /proc (macOS): existence is all we know
    state, start_ticks = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    if state in {"Z", "X"}:
        return False, "exited, a zombie not yet reaped"
    started_at = _boot_time() + start_ticks / os.sysconf("SC_CLK_TCK")
    if started_at > not_after + _CLOCK_SLACK_S:
        return False, "the pid now belongs to a process started after the run"
    return True, "alive"


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("/proc/stat has no btime line")
