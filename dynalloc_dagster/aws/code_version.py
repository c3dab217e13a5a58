"""The code version: which release of the project a process runs, so a worker never runs a
run launched by other code.

On an image the version is baked in: the release build writes ``dynalloc_dagster/
CODE_VERSION`` into the wheel (deployment/aws/release.sh: ``<git commit>+lock.<sha256 of
requirements.lock, 12 hex>``). In a checkout without that file it is the checkout's git
commit, with ``-dirty`` when files differ from it. The launcher tags each run
``dynalloc/code_version=<its version>`` (and the instance); the run's user data first runs

    <python> -m dynalloc_dagster.aws.code_version <expected> <run id>

which exits 0 when the worker's version is the expected one; otherwise it marks the run
failed in the Dagster instance (``DAGSTER_HOME``) with both versions named, prints the
same to stderr (the console and CloudWatch) and exits 3, so the run never starts and the
instance powers off.

Only the standard library is imported until a mismatch has to be reported: the check
costs a Python start, not a Dagster import.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

CODE_VERSION_TAG = "dynalloc/code_version"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
VERSION_FILE = PACKAGE_DIR / "CODE_VERSION"
MISMATCH_EXIT = 3


@functools.cache
def code_version() -> str:
    """This process's code version (see the module docstring); ``unknown`` outside git
    without a version file."""
    if VERSION_FILE.exists():
        return VERSION_FILE.read_text().strip()
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True,
                              text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}-dirty" if dirty else commit


def mismatch(expected: str, actual: str) -> str | None:
    """The error text when ``actual`` is not ``expected``, else None."""
    if expected == actual:
        return None
    return (f"code version mismatch: the run was launched by code {expected} but this"
            f" worker's image has {actual}; rebuild the image from the launcher's release"
            " (deployment/aws/release.sh) or point the launcher's image_id at it, then"
            " re-run")


def refuse_run(run_id: str, message: str) -> None:
    """Mark the run failed in the instance of ``DAGSTER_HOME`` with ``message``."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, message)


def main(argv: list[str] | None = None) -> int:
    """``<expected> [<run id>]``: 0 if this code is ``expected``, else the run (if given)
    is failed and the exit status is :data:`MISMATCH_EXIT`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m dynalloc_dagster.aws.code_version EXPECTED [RUN_ID]",
              file=sys.stderr)
        return 2
    error = mismatch(args[0], code_version())
    if error is None:
        return 0
    print(f"dynalloc: {error}", file=sys.stderr)
    if len(args) == 2:
        refuse_run(args[1], error)
    return MISMATCH_EXIT


if __name__ == "__main__":
    sys.exit(main())
