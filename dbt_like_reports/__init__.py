"""dbt-like SQL reports: polars SQL models with ``{{ ref('...') }}`` dependencies and
YAML schema tests. Pure Python (no Dagster); ``dynalloc_dagster.assets.reports`` turns
each model into an asset and each test into an asset check. See docs/reports.md."""

from dbt_like_reports.loader import (
    MODELS_DIR,
    CycleError,
    Model,
    ModelError,
    UnknownRefError,
    discover_models,
    parse_refs,
    render,
    run_model,
    run_models,
    topological_order,
)
from dbt_like_reports.schema_tests import (
    SCHEMA_PATH,
    ProjectSchema,
    SchemaError,
    TestResult,
    TestSpec,
    load_schema,
    run_test,
)

__all__ = [
    "MODELS_DIR",
    "SCHEMA_PATH",
    "CycleError",
    "Model",
    "ModelError",
    "ProjectSchema",
    "SchemaError",
    "TestResult",
    "TestSpec",
    "UnknownRefError",
    "discover_models",
    "load_schema",
    "parse_refs",
    "render",
    "run_model",
    "run_models",
    "run_test",
    "topological_order",
]
