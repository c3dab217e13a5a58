"""Objects as files in a local folder: ``<root>/<key>``, checksums in ``<root>/.checksums``.

A write goes to a temporary sibling ``.<name>.<random>.tmp`` created with the permissions
``0666 & ~umask``, and is renamed over the target only once every object of the call is
written; a failure removes the temporaries and leaves every target as it was. Temporaries
left by a killed process are removed by the next write into their folder once older than
``stale_temp_age_s``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from pydantic import Field

from dynalloc_dagster.storage.base import (
    CorruptObjectError,
    ObjectNotFoundError,
    ObjectStorage,
    StorageError,
    check_key,
    sha256_hex,
)

CHECKSUM_FOLDER = ".checksums"
CHECKSUM_SUFFIX = ".sha256"
TEMP_SUFFIX = ".tmp"


def current_umask() -> int:
    """The process umask, read from /proc where there is one (no race with other threads),
    else by setting and restoring it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class LocalStorage(ObjectStorage):
    """Objects as files under ``root``; see the module docstring for the guarantees."""

    root: str = Field(description="folder the objects are stored in")
    stale_temp_age_s: float = Field(
        default=3600.0, gt=0,
        description="temporary files older than this (seconds) are removed before a write"
        " into their folder: a write in progress is never that old",
    )

    @property
    def location(self) -> str:
        return self.root

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return Path(self.root, *check_key(key).split("/"))

    def _checksum_path(self, key: str) -> Path:
        return Path(self.root, CHECKSUM_FOLDER, *check_key(key).split("/")).with_name(
            key.rsplit("/", 1)[-1] + CHECKSUM_SUFFIX)

    def uri(self, key: str) -> str:
        return self.path(key).resolve().as_uri()

    def put_many(self, objects: Mapping[str, bytes]) -> dict[str, str]:
        sums = {check_key(key): sha256_hex(data) for key, data in objects.items()}
        mode = 0o666 & ~current_umask()
        targets = [(self.path(k), objects[k]) for k in sums] + [
            (self._checksum_path(k), f"{s}\n".encode()) for k, s in sums.items()]
        for folder in sorted({path.parent for path, _ in targets}):
            folder.mkdir(parents=True, exist_ok=True)
            self.remove_stale_temps(folder)
        staged = list(zip(_write_temps(targets, mode), (path for path, _ in targets),
                          strict=True))
        try:
            # data files first, then their checksums: a process killed between the two
            # leaves a file whose checksum does not match, which a read reports
            while staged:
                tmp, path = staged[0]
                os.replace(tmp, path)
                staged.pop(0)
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        return sums

    def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{path} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        try:
            recorded = self._checksum_path(key).read_text().strip()
        except FileNotFoundError:
            raise CorruptObjectError(
                f"{path} has no recorded checksum ({self._checksum_path(key)} is missing):"
                " written before checksums or by hand; re-materialize it") from None
        actual = sha256_hex(data)
        if actual != recorded:
            raise CorruptObjectError(
                f"{path} is corrupted: sha256 {actual} ({len(data)} bytes) does not match the"
                f" {recorded} recorded when it was written; re-materialize it")
        return data

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [key for key in keys if not self.path(key).is_file()]

    def stamp(self, key: str) -> str | None:
        """Inode, size and modification time (ns) of the file and of its checksum file: a
        write replaces both files (new inodes), an edit in place changes the time."""
        try:
            stats = (self.path(key).stat(), self._checksum_path(key).stat())
        except FileNotFoundError:
            return None
        return "/".join(f"{s.st_ino}:{s.st_size}:{s.st_mtime_ns}" for s in stats)

    def remove_stale_temps(self, folder: Path) -> list[Path]:
        """Remove ``.*.tmp`` files in ``folder`` older than ``stale_temp_age_s``; return them."""
        cutoff = time.time() - self.stale_temp_age_s
        removed = []
        for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed.append(tmp)
            except FileNotFoundError:  # removed meanwhile by another writer
                continue
        return removed


def _write_temps(targets: Sequence[tuple[Path, bytes]], mode: int) -> list[Path]:
    """Each target's data in a new temporary sibling (:func:`_write_temp`), the writes side
    by side on a thread per core (a write releases the GIL; where first touching the page
    cache is slow, as on a VM whose host backs its memory lazily, six 71 MB scenario files
    took 4.2-5.3 s so against 7.1-7.4 s one after the other); the temporaries in target
    order.

    If a write fails or the caller is interrupted, the writes not started are cancelled,
    the ones under way finish, every temporary is removed and the first failure in target
    order is raised."""
    if len(targets) < 2:
        return [_write_temp(path, data, mode) for path, data in targets]
    pool = ThreadPoolExecutor(max_workers=min(len(targets), os.cpu_count() or 1),
                              thread_name_prefix="local-storage-write")
    futures = [pool.submit(_write_temp, path, data, mode) for path, data in targets]
    settled = False
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        settled = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        ran = [f for f in futures if not f.cancelled()]
        written = [f.result() for f in ran if f.exception() is None]
        failures = [f.exception() for f in ran if f.exception() is not None]
        if failures or not settled:
            for tmp in written:
                tmp.unlink(missing_ok=True)
    if failures:
        raise failures[0]
    return written


def _write_temp(path: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to a new temporary sibling of ``path`` with permissions ``mode``."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)  # mkstemp creates 0600 whatever the umask
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
