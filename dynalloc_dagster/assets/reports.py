"""The dbt-like SQL reports as Dagster assets: one asset per model, its tests as checks.

Every ``dbt_like_reports/models/**/*.sql`` file becomes an asset keyed by its file stem,
in group ``reports``, reading the tables it ``{{ ref() }}``s through the default IO
manager (``io_manager``, the Parquet one) and returning its polars table. Every test in
``schema.yml`` is checked: the column tests of one kind and severity on a model form one
asset check named after the kind (``not_null``, ``accepted_range`` ..., ``__warn``
appended for a warning), whose metadata lists every column's rule and its failing rows;
each model-level test (``unique_combination_of_columns``, ``expression_is_true``) is a
check of its own, named as in schema.yml. A check per column would add three event-log
entries per column to every run for no rule more. The checks of a
model run together in one op that reads the stored table (and, for ``relationships``,
the referenced table) through the same IO manager. Adding a model is adding a .sql file
and its entry in schema.yml: no Python change.

The SQL and the tests live in :mod:`dbt_like_reports` (pure Python); this module only
wires them into Dagster. No ``from __future__ import annotations``: Dagster reads the
``context`` annotations at runtime.
"""

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from dbt_like_reports.loader import MODELS_DIR, Model, discover_models, run_model, topological_order
from dbt_like_reports.schema_tests import (
    SCHEMA_PATH,
    ModelSchema,
    SchemaError,
    Severity,
    TestSpec,
    load_schema,
    run_test,
)
from dynalloc_dagster.storage.metadata import table_metadata

__all__ = ["GROUP_NAME", "OWNERS", "build_report_assets"]

GROUP_NAME = "reports"
OWNERS = ["team:quant-research"]
KINDS = {"sql", "polars"}
PREVIEW_ROWS = 10

_SEVERITY = {Severity.ERROR: dg.AssetCheckSeverity.ERROR, Severity.WARN: dg.AssetCheckSeverity.WARN}


def build_report_assets(
    models_dir: Path | str = MODELS_DIR, schema_path: Path | str = SCHEMA_PATH
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """One asset per SQL model and one multi-asset check per model with tests.

    Parameters
    ----------
    models_dir : folder searched for ``**/*.sql`` models.
    schema_path : the schema.yml describing the models, their columns, tests and sources.

    Returns
    -------
    (assets, checks) : assets in dependency order; checks for the models that declare
        tests, each holding one AssetCheckSpec per group of tests (:func:`check_groups`).

    Raises
    ------
    dbt_like_reports.loader.ModelError : an unknown ref or a cycle among the models.
    dbt_like_reports.schema_tests.SchemaError : schema.yml is malformed, a model has no
        entry in it or an entry has no model, or a relationships test refs an unknown table.
    """
    models = discover_models(models_dir)
    schema = load_schema(schema_path)
    order = topological_order(models, schema.sources)
    undocumented = sorted(set(models) - set(schema.models))
    orphaned = sorted(set(schema.models) - set(models))
    if undocumented or orphaned:
        raise SchemaError(
            f"{schema_path}: models without a schema entry {undocumented}; schema entries "
            f"without a model in {models_dir} {orphaned}"
        )
    tables = set(models) | set(schema.sources)
    for model_schema in schema.models.values():
        for test in model_schema.all_tests:
            unknown = [ref for ref in test.refs if ref not in tables]
            if unknown:
                raise SchemaError(f"{test.description}: refs unknown table {unknown[0]!r}")
        check_groups(model_schema)
    assets = [_model_asset(models[name], schema.models[name]) for name in order]
    checks = [
        _model_checks(schema.models[name])
        for name in order
        if schema.models[name].all_tests
    ]
    return assets, checks


def _model_asset(model: Model, model_schema: ModelSchema) -> dg.AssetsDefinition:
    described = {name: column.description for name, column in model_schema.columns.items()}

    @dg.asset(
        name=model.name,
        ins={ref: dg.AssetIn(key=ref) for ref in model.refs},
        group_name=GROUP_NAME,
        description=model_schema.description,
        kinds=KINDS,
        owners=OWNERS,
        code_version=model.code_version,
        tags={"dbt_like/layer": model.layer} if model.layer else None,
        metadata={
            "dbt_like/path": f"{model.layer}/{model.path.name}" if model.layer else model.path.name,
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name=name, type="unknown", description=text)
                    for name, text in described.items()
                ]
            ),
        },
    )
    def _compute(
        context: dg.AssetExecutionContext, **inputs: pl.DataFrame
    ) -> dg.MaterializeResult:
        table = run_model(model, inputs)
        missing = [name for name in described if name not in table.columns]
        extra = [name for name in table.columns if name not in described]
        if missing or extra:
            context.log.warning(
                f"{model.name}: columns not in schema.yml {extra}; described but not produced"
                f" {missing}"
            )
        return dg.MaterializeResult(value=table, metadata=_table_metadata(model, table, described))

    return _compute


def _table_metadata(
    model: Model, table: pl.DataFrame, described: Mapping[str, str]
) -> dict[str, Any]:
    """Row count, a preview of the first rows, the column schema with schema.yml's
    descriptions, and the SQL as run."""
    return {
        **table_metadata(table, preview_rows=PREVIEW_ROWS),
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name=name, type=str(dtype), description=described.get(name))
                for name, dtype in table.schema.items()
            ]
        ),
        "sql": dg.MetadataValue.md(f"```sql\n{model.rendered_sql.strip()}\n```"),
    }


def check_groups(model_schema: ModelSchema) -> dict[str, tuple[TestSpec, ...]]:
    """The model's tests by asset check: the column tests of one kind and severity
    together under the kind's name (``<kind>__warn`` for warnings), then each model-level
    test alone under its own name, in schema.yml's order.

    Raises SchemaError when a model-level test takes a group's name."""
    groups: dict[str, list[TestSpec]] = {}
    for test in model_schema.all_tests:
        if test.column is None:
            name = test.name
            if name in groups:
                raise SchemaError(f"{test.description}: the check name {name!r} is taken by"
                                  f" the {name} column tests of {model_schema.name}")
        else:
            name = test.test + ("__warn" if test.severity is Severity.WARN else "")
        groups.setdefault(name, []).append(test)
    return {name: tuple(tests) for name, tests in groups.items()}


def _model_checks(model_schema: ModelSchema) -> dg.AssetChecksDefinition:
    name = model_schema.name
    groups = check_groups(model_schema)
    others = sorted({ref for test in model_schema.all_tests for ref in test.refs} - {name})
    specs = [
        dg.AssetCheckSpec(
            name=check,
            asset=name,
            description="; ".join(test.description for test in tests),
            blocking=tests[0].severity is Severity.ERROR,
            additional_deps=sorted({ref for test in tests for ref in test.refs} - {name}),
            metadata={"test": tests[0].test, "severity": tests[0].severity.value,
                      "rules": len(tests)},
        )
        for check, tests in groups.items()
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"{name}__schema_tests",
        description=f"schema.yml tests of {name}",
        can_subset=True,
        ins={table: dg.AssetIn(key=table) for table in (name, *others)},
    )
    def _check(
        context: dg.AssetCheckExecutionContext, **tables: pl.DataFrame
    ) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        for check, tests in groups.items():
            if dg.AssetCheckKey(dg.AssetKey(name), check) in selected:
                yield _check_result(check, tests, tables[name], tables)

    return _check


def _check_result(
    check: str, tests: tuple[TestSpec, ...], table: pl.DataFrame,
    tables: Mapping[str, pl.DataFrame],
) -> dg.AssetCheckResult:
    """One check's result over its tests: failed when any test fails or cannot run (e.g.
    the tested column is gone from the model: then an error whatever the severity); the
    metadata has every rule with its failing rows, and each failing rule's sample."""
    outcomes: list[tuple[TestSpec, str]] = []
    samples, errors, failing = [], [], 0
    for test in tests:
        try:
            result = run_test(test, table, tables)
        except SchemaError as error:
            errors.append(str(error))
            outcomes.append((test, "error"))
            continue
        failing += result.failing_rows
        outcomes.append((test, str(result.failing_rows)))
        if not result.passed:
            samples.append(f"**{test.name}** ({result.failing_rows} rows)\n\n"
                           + table_metadata(result.sample)["preview"].value)
    failed = [test.name for test, outcome in outcomes if outcome != "0"]
    metadata = {
        "failing_rows": dg.MetadataValue.int(failing),
        "failing_rules": ", ".join(failed) or "none",
        "rules": dg.MetadataValue.md("| rule | test | failing rows |\n|---|---|---|\n" + "\n".join(
            f"| {test.name} | {test.description} | {outcome} |" for test, outcome in outcomes)),
        "failing_sample": dg.MetadataValue.md("\n\n".join(samples) or "none"),
        "rows_tested": dg.MetadataValue.int(table.height),
    }
    if errors:
        metadata["error"] = dg.MetadataValue.text("\n".join(errors))
    return dg.AssetCheckResult(
        asset_key=tests[0].model,
        check_name=check,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR if errors else _SEVERITY[tests[0].severity],
        description="; ".join(errors or [test.description for test in tests]),
        metadata=metadata,
    )
