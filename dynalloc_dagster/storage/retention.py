"""Retention of stored evaluations: the current optimisation loop's, nothing older.

Round 0 of a loop replaces the registered config batches (the dynamic partitions
``config_batches``); the evaluations of the batches it unregistered are no longer a
partition of ``strategy_evaluations``, no report reads them, and without retention they
would pile up forever (one file per scenario x batch, every loop). ``prune_evaluations``
removes them, with their recorded checksums: after round 0 the data root holds the
evaluations of the registered batches only. Folders of an older layout (``config=<id>``)
are not registered batches and go too.

It deletes only under ``<data root>/strategy_evaluations`` and its checksum folder, and
only folders named ``<dimension>=<value>`` that are not ``batch=<registered batch>``.
Local data roots only; on S3 the same rule is an S3 lifecycle or a listing of
``strategy_evaluations/`` (not implemented).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path

EVALUATIONS = "strategy_evaluations"
CHECKSUM_FOLDER = ".checksums"
BATCH_DIMENSION = "batch"
_PARTITION_FOLDER = re.compile(r"^[A-Za-z0-9_]+=[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def prune_evaluations(root: str | Path, registered_batches: Iterable[str]) -> list[Path]:
    """Remove the stored evaluations of every batch not in ``registered_batches``.

    Parameters
    ----------
    root
        The local data root (``<root>/strategy_evaluations/batch=<key>/scenario=<s>.parquet``).
    registered_batches
        The batch keys still registered (``instance.get_dynamic_partitions("config_batches")``).

    Returns
    -------
    list[Path]
        The folders removed (evaluations and their checksum folders), sorted.
    """
    keep = {f"{BATCH_DIMENSION}={batch}" for batch in registered_batches}
    removed: list[Path] = []
    for base in (Path(root) / EVALUATIONS, Path(root) / CHECKSUM_FOLDER / EVALUATIONS):
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            if child.is_dir() and _PARTITION_FOLDER.fullmatch(child.name) \
                    and child.name not in keep:
                shutil.rmtree(child)
                removed.append(child)
    return sorted(removed)
