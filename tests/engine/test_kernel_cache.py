"""The engine's kernels are cached per version of the engine's whole source
(engine.kernel_cache): numba alone keeps a kernel whose callee in another file changed,
and runs the old callee."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest

import engine
from engine.kernel_cache import PREFIX, UNUSED_SECONDS, keyed_cache_dir, source_key
from engine.strategy.kernels import market_pass

CALLER = ("import numba\nfrom pkg.callee import g\n\n"
          "@numba.njit(cache=True)\ndef f():\n    return g()\n")
CALLEE = "import numba\n\n@numba.njit\ndef g():\n    return {value}\n"
RUN = """
import sys
import time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "keyed":
    from engine.kernel_cache import use_keyed_cache
    use_keyed_cache(Path(sys.argv[1]) / "pkg")
from pkg.caller import f
print(f())
"""


def _package(root: Path) -> Path:
    package = root / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "caller.py").write_text(CALLER)
    (package / "callee.py").write_text(CALLEE.format(value=1))
    return package


def _run(root: Path, mode: str, environment: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | (environment or {})
    done = subprocess.run([sys.executable, "-c", RUN, str(root), mode], env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_numba_alone_runs_a_changed_callee_stale(tmp_path: Path) -> None:
    """Why the engine keys its cache: the caller's file is unchanged, so numba loads the
    caller compiled with the old callee. (Should numba learn to see it, this test fails
    and the keyed cache may go.)"""
    package = _package(tmp_path)
    assert _run(tmp_path, "plain") == "1"
    (package / "callee.py").write_text(CALLEE.format(value=2))
    assert _run(tmp_path, "plain") == "1"


def test_the_keyed_cache_compiles_again_when_any_file_changes(tmp_path: Path) -> None:
    package = _package(tmp_path)
    assert _run(tmp_path, "keyed") == "1"
    first = list((package / "__pycache__").glob(f"{PREFIX}*"))
    assert len(first) == 1 and any(first[0].rglob("*.nbi"))
    assert _run(tmp_path, "keyed") == "1"  # from the cache
    (package / "callee.py").write_text(CALLEE.format(value=2))
    assert _run(tmp_path, "keyed") == "2"
    both = set((package / "__pycache__").glob(f"{PREFIX}*"))
    assert len(both) == 2 and set(first) < both  # the old one just used: kept for now


def test_a_set_numba_cache_dir_holds_the_keyed_folders(tmp_path: Path) -> None:
    _package(tmp_path)
    user = tmp_path / "user_cache"
    assert _run(tmp_path, "keyed", {"NUMBA_CACHE_DIR": str(user)}) == "1"
    assert [p.name for p in user.iterdir()] == [PREFIX + source_key(tmp_path / "pkg")]


def test_the_key_follows_every_byte_and_path_of_the_source(tmp_path: Path) -> None:
    package = _package(tmp_path)
    key = source_key(package)
    assert len(key) == 16 and key == source_key(package)
    (package / "callee.py").write_text(CALLEE.format(value=1) + " ")
    assert source_key(package) != key
    (package / "callee.py").write_text(CALLEE.format(value=1))
    assert source_key(package) == key
    (package / "callee.py").rename(package / "moved.py")
    assert source_key(package) != key


def test_other_versions_unused_for_an_hour_are_removed(tmp_path: Path) -> None:
    """Another version's folder goes once nothing was written in it for UNUSED_SECONDS
    (a file written recently deep inside counts); other folders stay."""
    package = _package(tmp_path)
    cache = package / "__pycache__"
    old, recent = cache / f"{PREFIX}0123456789abcdef", cache / f"{PREFIX}fedcba9876543210"
    for folder in (old, recent):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "f.nbi").write_text("")
    (cache / "kept").mkdir()
    long_ago = time.time() - UNUSED_SECONDS - 60
    for path in (old, old / "sub", old / "sub" / "f.nbi", recent, recent / "sub"):
        os.utime(path, (long_ago, long_ago))
    folder = keyed_cache_dir(package)
    assert sorted(p.name for p in cache.iterdir()) == ["kept", recent.name]
    assert folder == cache / (PREFIX + source_key(package))


def test_the_engines_kernels_are_cached_under_the_engines_key() -> None:
    engine_dir = Path(engine.__file__).parent
    expected = (Path(os.environ["NUMBA_CACHE_DIR"]) if "NUMBA_CACHE_DIR" in os.environ
                else engine_dir / "__pycache__") / (PREFIX + source_key(engine_dir))
    assert numba.config.CACHE_DIR == str(expected)
    assert Path(market_pass._cache._cache_path).is_relative_to(expected)


def test_the_key_follows_numbas_version(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    package = _package(tmp_path)
    key = source_key(package)
    monkeypatch.setattr(numba, "__version__", "0.0.1")
    assert source_key(package) != key
