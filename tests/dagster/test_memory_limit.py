"""The memory guard of scenario_paths reads the limits this process lives under: cgroup
v2 and v1 memory limits (on its group and every ancestor) and RLIMIT_AS / RLIMIT_DATA,
not only the machine's physical memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dynalloc_dagster.memory import cgroup_limits, machine_memory, memory_limit

GIB = 2**30


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_cgroup_v2_limit_of_the_group_or_an_ancestor(tmp_path: Path) -> None:
    proc = tmp_path / "proc_cgroup"
    _write(proc, "0::/user.slice/job\n")
    root = tmp_path / "cgroup"
    _write(root / "user.slice" / "job" / "memory.max", "max\n")
    _write(root / "user.slice" / "memory.max", f"{3 * GIB // 2}\n")
    _write(root / "memory.max", f"{8 * GIB}\n")

    limit = memory_limit(proc, root)
    assert limit.bytes == 3 * GIB // 2
    assert limit.source == f"the cgroup limit {root / 'user.slice' / 'memory.max'}"
    assert sorted(x.bytes for x in cgroup_limits(proc, root)) == [3 * GIB // 2, 8 * GIB]


def test_cgroup_v1_limit_and_its_unlimited_value(tmp_path: Path) -> None:
    proc = tmp_path / "proc_cgroup"
    _write(proc, "5:cpu,cpuacct:/a\n4:memory:/docker/abc\n0::/\n")
    root = tmp_path / "cgroup"
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", f"{GIB}\n")
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")

    limit = memory_limit(proc, root)
    assert (limit.bytes, limit.source) == (
        GIB, f"the cgroup limit {root / 'memory/docker/abc/memory.limit_in_bytes'}")


def test_no_cgroup_files_leave_the_machine_memory(tmp_path: Path) -> None:
    assert memory_limit(tmp_path / "absent", tmp_path) == machine_memory()


def test_a_config_that_fits_the_machine_but_not_the_rlimit_is_refused_up_front() -> None:
    """RLIMIT_DATA set to what the process uses now + 1 GiB: 10,000 paths over 5 years
    (about 4 GiB in the evaluations) fit this machine but not the limit."""
    if machine_memory().bytes < 8 * GIB:
        pytest.skip("the machine itself is under 8 GiB: the rlimit would not be the least")
    script = textwrap.dedent("""
        import resource
        from dynalloc_dagster.orchestration.run_config import validate_run_config
        from engine.validation import ConfigError

        status = open("/proc/self/status").read().split("VmData:")[1].split()[0]
        limit = int(status) * 1024 + 2**30
        resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
        try:
            validate_run_config({"ops": {"scenario_paths": {"config": {"n_paths": 10000}}}})
        except ConfigError as error:
            print(error)
        else:
            print("accepted")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=os.environ, timeout=120, check=True)
    assert "n_paths = 10000 over horizon_years = 5" in done.stdout, done.stdout + done.stderr
    assert ", RLIMIT_DATA): use fewer paths or a shorter horizon" in done.stdout
