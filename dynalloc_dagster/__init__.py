"""dynalloc's Dagster project: assets, partitions, IO managers, checks, schedules."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository's root: workspace.yaml, dagster_home/ and the default data/ live here."""
