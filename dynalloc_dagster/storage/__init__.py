"""Object storage under the IO managers and the artifact store: one seam, two rooms.

``ObjectStorage`` is the seam (whole objects under ``/``-separated keys, every object
stored with its sha256 and verified on read); ``LocalStorage`` keeps them in a folder
(temporary file, then rename), ``S3Storage`` in an S3 bucket (whole-object puts, SSE-KMS).
docs/storage.md states the guarantees. ``S3Storage`` is imported on first use: its
client, dagster-aws's, takes over a second to import, which a local process never needs.
"""

from __future__ import annotations

from typing import Any

from dynalloc_dagster.storage.base import (
    CorruptObjectError,
    ObjectNotFoundError,
    ObjectStorage,
    StorageConfigError,
    StorageError,
    check_key,
    safe_component,
    sha256_hex,
)
from dynalloc_dagster.storage.local import LocalStorage, current_umask

__all__ = [
    "CorruptObjectError",
    "LocalStorage",
    "ObjectNotFoundError",
    "ObjectStorage",
    "S3Storage",
    "StorageConfigError",
    "StorageError",
    "check_key",
    "current_umask",
    "safe_component",
    "sha256_hex",
]


def __getattr__(name: str) -> Any:
    if name == "S3Storage":
        from dynalloc_dagster.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
