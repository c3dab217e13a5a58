"""Where numba caches the engine's compiled kernels: a folder named after the engine's
source, so that no process runs a kernel compiled from other source.

numba keeps a kernel compiled with ``cache=True`` until the file that defines it changes.
A kernel that calls or inlines a kernel of another file keeps the callee's old machine
code when only that other file changes (numba's documented limit of cache invalidation),
and runs it, with no warning, until its own file changes too. The engine's kernels call
each other across files (the risk-parity lanes inside the base mixes, the mixes inside the
rule pass), so the cache is kept per version of the whole engine instead:
``<folder>/numba-<key>``, the key a digest of every ``.py`` file of the engine and of
numba's version. A changed engine compiles afresh once; the folders of other versions
are removed once unused for :data:`UNUSED_SECONDS` (a process of another version, such as
one started before an edit, may still be writing to its own). The folder is
``engine/__pycache__`` (numba's own default place, beside the code), or
``$NUMBA_CACHE_DIR`` when set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import numba

PREFIX = "numba-"
UNUSED_SECONDS = 3600.0
"""How long another version's folder must have gone unwritten before it is removed."""


def source_key(package: Path) -> str:
    """A digest of every ``.py`` file under ``package`` (paths and bytes, in path order)
    and of numba's version: 16 hex digits."""
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def keyed_cache_dir(package: Path, parent: Path | None = None) -> Path:
    """``parent / (PREFIX + source_key(package))`` (default parent: ``package``'s
    ``__pycache__``), after removing the other versions' folders beside it that nothing
    has written to for :data:`UNUSED_SECONDS`."""
    parent = parent or package / "__pycache__"
    folder = parent / f"{PREFIX}{source_key(package)}"
    if parent.is_dir():
        for other in parent.glob(f"{PREFIX}*"):
            if other != folder and time.time() - _last_written(other) > UNUSED_SECONDS:
                shutil.rmtree(other, ignore_errors=True)
    return folder


def _last_written(folder: Path) -> float:
    """The latest modification time of ``folder`` and of everything in it (0 if gone)."""
    try:
        return max(p.stat().st_mtime for p in (folder, *folder.rglob("*")))
    except FileNotFoundError:
        return 0.0


def use_keyed_cache(package: Path) -> Path:
    """Point numba's cache at :func:`keyed_cache_dir` for the kernels defined from now
    on (numba reads ``numba.config.CACHE_DIR`` when a kernel is defined); returns it."""
    user = os.environ.get("NUMBA_CACHE_DIR")
    folder = keyed_cache_dir(package, Path(user) if user else None)
    numba.config.CACHE_DIR = str(folder)
    return folder
