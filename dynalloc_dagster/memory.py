"""How much memory this process may use: the least of the machine's memory, the memory
limits of its control groups (cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``, on
its own group and every ancestor) and its ``RLIMIT_AS`` / ``RLIMIT_DATA`` soft limits.

A container's limit is what gets a process OOM-killed, with no message; a memory guard
comparing with the machine's physical memory accepts what such a container cannot hold.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
UNLIMITED_V1 = 2**62
"""cgroup v1 reports "no limit" as a page-rounded 2^63 - 1; anything above this is none."""


@dataclass(frozen=True)
class MemoryLimit:
    """A limit in bytes and where it comes from (for error messages)."""

    bytes: int
    source: str


def machine_memory() -> MemoryLimit:
    return MemoryLimit(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                       "this machine's memory")


def cgroup_limits(proc_cgroup: Path = PROC_CGROUP,
                  cgroup_root: Path = CGROUP_ROOT) -> list[MemoryLimit]:
    """The memory limits of this process's control groups and their ancestors.

    ``proc_cgroup`` lines read ``0::/path`` (v2, files under ``cgroup_root/path``) or
    ``N:memory:/path`` (v1, under ``cgroup_root/memory/path``). A container often sees its
    own group as ``/``, so the root's files count too. Unreadable files are skipped."""
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, name = cgroup_root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = cgroup_root / "memory", "memory.limit_in_bytes"
        else:
            continue
        parts = Path(path).relative_to("/").parts
        for depth in range(len(parts), -1, -1):
            file = base.joinpath(*parts[:depth], name)
            value = _read_limit(file)
            if value is not None:
                limits.append(MemoryLimit(value, f"the cgroup limit {file}"))
    return limits


def _read_limit(file: Path) -> int | None:
    try:
        text = file.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if text == "max" or not text.isdigit() or int(text) >= UNLIMITED_V1:
        return None
    return int(text)


def rlimits() -> list[MemoryLimit]:
    """This process's soft RLIMIT_AS and RLIMIT_DATA, where set."""
    limits = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY:
            limits.append(MemoryLimit(soft, name))
    return limits


def memory_limit(proc_cgroup: Path = PROC_CGROUP,
                 cgroup_root: Path = CGROUP_ROOT) -> MemoryLimit:
    """The smallest of the machine's memory, the cgroup limits and the rlimits."""
    candidates = [machine_memory(), *cgroup_limits(proc_cgroup, cgroup_root), *rlimits()]
    return min(candidates, key=lambda limit: limit.bytes)
