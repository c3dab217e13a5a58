"""Environments in one place: which one is active, and its resources.

``DYNALLOC_ENV`` selects the environment (default ``local``: files under the project,
SQLite, no AWS). Secrets, when an environment needs them, come through ``dg.EnvVar``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.io_managers import PolarsParquetIOManager, ScenarioPathsIOManager
from dynalloc_dagster.resources import (
    ArtifactStore,
    MarketDataSource,
    ObjectivesResource,
    OptimisationAgent,
)

Environment = Literal["local"]
ENVIRONMENTS: tuple[str, ...] = ("local",)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def current_environment() -> Environment:
    """The environment named by ``$DYNALLOC_ENV`` (default ``local``)."""
    name = os.environ.get("DYNALLOC_ENV", "local")
    if name not in ENVIRONMENTS:
        raise ValueError(f"DYNALLOC_ENV = {name!r} is not one of {', '.join(ENVIRONMENTS)}")
    return name  # type: ignore[return-value]


def resources_for(environment: Environment, *, data_root: str | None = None) -> dict[str, Any]:
    """The resources of an environment. ``data_root`` overrides where data is stored
    (default ``$DYNALLOC_DATA_ROOT``, else ``<project>/data``)."""
    if environment != "local":
        raise ValueError(f"unknown environment {environment!r}")
    root = data_root or os.environ.get("DYNALLOC_DATA_ROOT") or str(PROJECT_ROOT / "data")
    return {
        "io_manager": PolarsParquetIOManager(root=root),
        "paths_io_manager": ScenarioPathsIOManager(root=root),
        "market_source": MarketDataSource(),
        "artifacts": ArtifactStore(root=str(Path(root) / "artifacts")),
        "objectives": ObjectivesResource(),
        "agent": OptimisationAgent(),
        "bedrock": BedrockResource(),
    }
