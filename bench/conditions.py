"""The machine's state a benchmark's figures depend on besides the code, printed first."""

from __future__ import annotations

import os

from numpy._core import multiarray


def conditions() -> str:
    """numpy's huge-page advice in force (docs/engine.md, "Memory") and the load average."""
    huge = "on" if multiarray._get_madvise_hugepage() else "off"
    setting = os.environ.get("NUMPY_MADVISE_HUGEPAGE", "unset")
    return (f"numpy huge pages {huge} (NUMPY_MADVISE_HUGEPAGE={setting}), load average"
            f" {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
