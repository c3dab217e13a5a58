"""LocalStorage: all-or-nothing writes, checksums, permissions from the umask, stale
temporary files, key validation."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynalloc_dagster.storage import CorruptObjectError, LocalStorage, ObjectNotFoundError
from dynalloc_dagster.storage import local as local_module


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(root=str(tmp_path / "data"))


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _temps(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def test_round_trip_and_recorded_checksum(store: LocalStorage, tmp_path: Path) -> None:
    sums = store.put_many({"a/x.bin": b"alpha", "b.bin": b"beta"})
    assert sums == {"a/x.bin": hashlib.sha256(b"alpha").hexdigest(),
                    "b.bin": hashlib.sha256(b"beta").hexdigest()}
    assert store.get("a/x.bin") == b"alpha"
    assert (tmp_path / "data" / "a" / "x.bin").read_bytes() == b"alpha"
    assert (tmp_path / "data" / ".checksums" / "a" / "x.bin.sha256").read_text() == (
        sums["a/x.bin"] + "\n")
    assert store.uri("b.bin") == (tmp_path / "data" / "b.bin").resolve().as_uri()
    assert store.missing(["a/x.bin", "c.bin", "b.bin"]) == ["c.bin"]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_respect_the_umask(
    store: LocalStorage, tmp_path: Path, umask: None, mask: int, expected: int
) -> None:
    os.umask(mask)
    store.put("t/report.md", b"# report")
    assert _mode(tmp_path / "data" / "t" / "report.md") == expected
    assert _mode(tmp_path / "data" / ".checksums" / "t" / "report.md.sha256") == expected


def test_a_flipped_byte_is_refused_naming_the_path(store: LocalStorage, tmp_path: Path) -> None:
    store.put("t.bin", bytes(range(200)))
    path = tmp_path / "data" / "t.bin"
    data = bytearray(path.read_bytes())
    data[117] ^= 0x01
    path.write_bytes(bytes(data))
    expected = rf"{re.escape(str(path))} is corrupted: sha256 \w+ \(200 bytes\)"
    with pytest.raises(CorruptObjectError, match=expected):
        store.get("t.bin")


def test_a_truncated_file_is_refused_naming_the_path(store: LocalStorage, tmp_path: Path) -> None:
    store.put("t.bin", b"0123456789")
    path = tmp_path / "data" / "t.bin"
    path.write_bytes(b"01234")
    expected = rf"{re.escape(str(path))} is corrupted: .*\(5 bytes\)"
    with pytest.raises(CorruptObjectError, match=expected):
        store.get("t.bin")


def test_a_file_without_a_checksum_is_refused(store: LocalStorage, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "by_hand.bin").write_bytes(b"x")
    with pytest.raises(CorruptObjectError, match=r"by_hand.bin has no recorded checksum"):
        store.get("by_hand.bin")
    with pytest.raises(ObjectNotFoundError, match=r"nothing\.bin does not exist"):
        store.get("nothing.bin")


def test_a_failure_part_way_writes_nothing(
    store: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {f"s/{n}.bin": f"old {n}".encode() for n in "abcde"}
    store.put_many(old)
    real = local_module._write_temp
    calls = []

    def fail_on_fourth(path: Path, data: bytes, mode: int) -> Path:
        calls.append(path)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        return real(path, data, mode)

    monkeypatch.setattr(local_module, "_write_temp", fail_on_fourth)
    with pytest.raises(OSError, match="No space left"):
        store.put_many({key: b"new" for key in old})
    assert len(calls) >= 4  # the writes under way when the fourth failed finished
    assert {key: store.get(key) for key in old} == old  # every object of the old generation
    assert _temps(tmp_path) == []


def test_the_objects_of_a_call_are_written_side_by_side(
    store: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writes wait for each other at a barrier: written one after the other, the
    first would wait alone and the barrier break."""
    monkeypatch.setattr(local_module.os, "cpu_count", lambda: 2)
    real = local_module._write_temp
    barrier = threading.Barrier(2, timeout=10)
    names = []

    def meet(path: Path, data: bytes, mode: int) -> Path:
        if path.suffix == ".bin":
            names.append(threading.current_thread().name)
            barrier.wait()
        return real(path, data, mode)

    monkeypatch.setattr(local_module, "_write_temp", meet)
    objects = {"paths/bull.bin": b"bull" * 1000, "paths/bear.bin": b"bear" * 1000}
    store.put_many(objects)
    assert {key: store.get(key) for key in objects} == objects
    assert len(set(names)) == 2


def test_an_interrupt_while_the_writes_run_leaves_no_temporary(
    store: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches the caller waiting for the writes after they all finished: their
    temporaries are removed, the old objects stay."""
    old = {f"s/{n}.bin": f"old {n}".encode() for n in "abc"}
    store.put_many(old)
    real_wait = local_module.wait

    def interrupted(futures, return_when):
        real_wait(futures)
        raise KeyboardInterrupt

    monkeypatch.setattr(local_module, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put_many({key: b"new" for key in old})
    assert {key: store.get(key) for key in old} == old
    assert _temps(tmp_path) == []


def test_an_interrupt_between_renames_is_detected_not_silent(
    store: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill after a data file was renamed but before its checksum was: the mismatch is
    reported on read, and the temporaries are gone."""
    store.put("k.bin", b"old")
    real_replace = os.replace
    done = []

    class Killed(BaseException):
        pass

    def replace_once(src: str, dst: str) -> None:
        if done:
            raise Killed
        done.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(local_module.os, "replace", replace_once)
    with pytest.raises(Killed):
        store.put("k.bin", b"new")
    monkeypatch.undo()
    assert _temps(tmp_path) == []
    with pytest.raises(CorruptObjectError, match=r"k\.bin is corrupted"):
        store.get("k.bin")


def test_stale_temporary_files_are_removed_before_a_write(
    store: LocalStorage, tmp_path: Path
) -> None:
    folder = tmp_path / "data" / "scenario_paths"
    folder.mkdir(parents=True)
    stale = folder / ".bear.npz.k2j3h4.tmp"
    fresh = folder / ".bull.npz.a8b9c0.tmp"  # a write in progress in another process
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    unrelated = folder / "notes.tmp"  # not one of ours: no leading dot
    unrelated.write_bytes(b"keep")
    os.utime(unrelated, (two_hours_ago, two_hours_ago))

    store.put("scenario_paths/base.npz", b"paths")

    assert not stale.exists()
    assert fresh.exists() and unrelated.exists()
    assert store.get("scenario_paths/base.npz") == b"paths"


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "a//b", ".hidden/x", "a/b\\c", ""])
def test_unsafe_keys_are_refused(store: LocalStorage, tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="is not a relative path of safe names"):
        store.put(key, b"x")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
