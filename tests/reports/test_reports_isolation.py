"""dbt_like_reports is pure Python: importing it never pulls in Dagster (the dependency
runs dynalloc_dagster -> dbt_like_reports, never the reverse). A fresh process is needed
because this test session imports Dagster elsewhere."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
import dbt_like_reports, dbt_like_reports.loader, dbt_like_reports.schema_tests
print(json.dumps(sorted(
    m for m in sys.modules if m.split(".")[0] in {"dagster", "dynalloc_dagster"}
)))
"""


def test_importing_dbt_like_reports_does_not_import_dagster():
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
