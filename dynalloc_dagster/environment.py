"""Environments in one place: which one is active, and its resources.

``DYNALLOC_ENV`` selects the environment (default ``local``: files under the project,
SQLite, no AWS; ``aws``: the same graph with its data in S3, encrypted with SSE-KMS).
Settings and secrets an environment needs come through ``dg.EnvVar``, resolved when a run
starts, never at import:

- ``DYNALLOC_S3_BUCKET`` (aws, required): the bucket of the data and artifacts;
- ``DYNALLOC_S3_PREFIX`` (aws, optional): a key prefix inside it (default: none);
- ``DYNALLOC_KMS_KEY_ID`` (aws, required): the KMS key id, ARN or alias of every object;
- ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_REGION``: boto3's own settings.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import dagster as dg

from dynalloc_dagster import PROJECT_ROOT
from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.resources import (
    ArtifactStore,
    MarketDataSource,
    ObjectivesResource,
    OptimisationAgent,
)
from dynalloc_dagster.storage import LocalStorage, ObjectStorage
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager, ScenarioPathsIOManager

Environment = Literal["local", "aws"]
ENVIRONMENTS: tuple[str, ...] = ("local", "aws")

S3_BUCKET_ENV = "DYNALLOC_S3_BUCKET"
S3_PREFIX_ENV = "DYNALLOC_S3_PREFIX"
KMS_KEY_ENV = "DYNALLOC_KMS_KEY_ID"


def current_environment() -> Environment:
    """The environment named by ``$DYNALLOC_ENV`` (default ``local``)."""
    name = os.environ.get("DYNALLOC_ENV", "local")
    if name not in ENVIRONMENTS:
        raise ValueError(f"DYNALLOC_ENV = {name!r} is not one of {', '.join(ENVIRONMENTS)}")
    return name  # type: ignore[return-value]


def _storage(environment: Environment, data_root: str | None) -> ObjectStorage:
    """The data storage of an environment (shared by the IO managers and artifacts)."""
    if environment == "local":
        root = data_root or os.environ.get("DYNALLOC_DATA_ROOT") or str(PROJECT_ROOT / "data")
        return LocalStorage(root=root)
    if environment == "aws":
        from dynalloc_dagster.storage.s3 import S3Storage

        # the prefix is optional: EnvVar only when it is set, else the bucket's top level
        prefix: Any = dg.EnvVar(S3_PREFIX_ENV) if os.environ.get(S3_PREFIX_ENV) else ""
        return S3Storage(bucket=dg.EnvVar(S3_BUCKET_ENV), prefix=prefix,
                         kms_key_id=dg.EnvVar(KMS_KEY_ENV))
    raise ValueError(f"unknown environment {environment!r}")


def resources_for(environment: Environment, *, data_root: str | None = None) -> dict[str, Any]:
    """The resources of an environment. Locally ``data_root`` overrides where data is
    stored (default ``$DYNALLOC_DATA_ROOT``, else ``<project>/data``); on aws the data is
    in ``s3://$DYNALLOC_S3_BUCKET/$DYNALLOC_S3_PREFIX`` and ``data_root`` is not used."""
    storage = _storage(environment, data_root)
    # locally the IO managers name their folder (``root``); on aws they take the S3 storage
    placement: dict[str, Any] = (
        {"root": storage.location} if isinstance(storage, LocalStorage) else {"storage": storage})
    return {
        "io_manager": PolarsParquetIOManager(**placement),
        "paths_io_manager": ScenarioPathsIOManager(**placement),
        "market_source": MarketDataSource(),
        "artifacts": ArtifactStore(storage=storage),
        "objectives": ObjectivesResource(),
        "agent": OptimisationAgent(),
        "bedrock": BedrockResource(),
    }
