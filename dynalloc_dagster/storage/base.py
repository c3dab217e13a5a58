"""The storage seam: keys, checksums, errors and the ``ObjectStorage`` interface."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

import dagster as dg

_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# a key component is a safe name, or ``<safe name>=<safe name>`` (a partition dimension)
_KEY_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(=[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


class StorageError(Exception):
    """A storage operation failed; the message names the object's path or URI."""


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """No object is stored under the key."""


class CorruptObjectError(StorageError):
    """The stored bytes do not match the sha256 recorded when they were written (a flipped
    byte, a truncated file, a write killed half-way), or no checksum was recorded."""


class StorageConfigError(StorageError):
    """The storage is misconfigured (bucket not reachable, KMS key missing or disabled)."""


def safe_component(value: str) -> str:
    """Return ``value`` if it is safe as one path component, else raise ValueError.

    Safe: letters, digits, ``_ - .``, not starting with ``.`` or ``-``, no ``..``.
    """
    if not _SAFE_COMPONENT.fullmatch(value) or ".." in value:
        raise ValueError(
            f"partition key component {value!r} is not a safe file name: use letters, digits,"
            " '_', '-' and '.', with no '..' and no path separators"
        )
    return value


def check_key(key: str) -> str:
    """Return ``key`` if every ``/``-separated component is a safe name or
    ``<name>=<value>``, else raise ValueError naming the key."""
    parts = key.split("/")
    if not all(_KEY_COMPONENT.fullmatch(p) and ".." not in p for p in parts):
        raise ValueError(f"storage key {key!r} is not a relative path of safe names")
    return key


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data`` (the checksum recorded with every object)."""
    return hashlib.sha256(data).hexdigest()


class ObjectStorage(dg.ConfigurableResource):
    """Whole objects under relative keys such as ``strategy_evaluations/config=ab/scenario=
    bear.parquet``. Every object is stored with the sha256 of its bytes; ``get`` returns
    the bytes only when they match it. Backends: ``LocalStorage``, ``S3Storage``."""

    def put_many(self, objects: Mapping[str, bytes]) -> dict[str, str]:
        """Store every object of ``objects`` ({key: bytes}), all or none where the backend
        allows it (docs/storage.md); return {key: sha256}."""
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> str:
        """Store one object whole; return its sha256."""
        return self.put_many({key: data})[key]

    def get(self, key: str) -> bytes:
        """The object's bytes, verified against the recorded sha256.

        Raises ObjectNotFoundError, CorruptObjectError or StorageError, each naming the
        object's location."""
        raise NotImplementedError

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys of ``keys`` with no stored object, in the order given."""
        raise NotImplementedError

    def stamp(self, key: str) -> str | None:
        """A token that changes whenever the object of ``key`` or its recorded checksum is
        written or altered, got without reading the object; None when the backend cannot
        tell cheaply (the object is then read again each time it is needed)."""
        return None

    def uri(self, key: str) -> str:
        """Where the object of ``key`` is (``file://`` or ``s3://``)."""
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where this storage keeps its objects: a folder or ``s3://bucket/prefix``."""
        raise NotImplementedError
