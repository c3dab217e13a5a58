"""Object storage under the IO managers and the artifact store: one seam, two rooms.

``ObjectStorage`` is the seam (whole objects under ``/``-separated keys, every object
stored with its sha256 and verified on read); ``LocalStorage`` keeps them in a folder
(temporary file, then rename), ``S3Storage`` in an S3 bucket (whole-object puts, SSE-KMS).
docs/storage.md states the guarantees.
"""

from __future__ import annotations

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
from dynalloc_dagster.storage.s3 import S3Storage

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
