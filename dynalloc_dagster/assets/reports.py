"""The dbt-like SQL reports as Dagster assets: one asset per model, its tests as checks,
all computed in one step.

Every ``dbt_like_reports/models/**/*.sql`` file becomes an asset keyed by its file stem,
in group ``reports``, of one multi-asset (op :data:`OP_NAME`); its refs are its upstream
assets, the sources it reads are the op's inputs (loaded by the default IO manager,
``io_manager``, the Parquet one) and its polars table is stored by the same IO manager.
Every test in ``schema.yml`` is checked: the column tests of one kind and severity on a
model form one asset check named after the kind (``not_null``, ``accepted_range`` ...,
``__warn`` appended for a warning), whose metadata lists every column's rule and its
failing rows; each model-level test (``unique_combination_of_columns``,
``expression_is_true``) is a check of its own, named as in schema.yml. A check per column
would add three event-log entries per column to every run for no rule more. One step per
model and per model's checks would add about 0.1 s of Dagster's work per step and write
and read back every table between them; in one step the models and checks run in the
order Dagster gives separate steps (:func:`_run_order`), a failing blocking check stopping
what reads its model. Adding a model is adding a .sql file and its entry in schema.yml: no
Python change.

The SQL and the tests live in :mod:`dbt_like_reports` (pure Python); this module only
wires them into Dagster. No ``from __future__ import annotations``: Dagster reads the
``context`` annotations at runtime.
"""

import graphlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from dbt_like_reports.loader import MODELS_DIR, Model, discover_models, run_model, topological_order
from dbt_like_reports.schema_tests import (
    SCHEMA_PATH,
    ModelSchema,
    ProjectSchema,
    SchemaError,
    Severity,
    TestSpec,
    load_schema,
    run_test,
)
from dynalloc_dagster.storage.metadata import table_metadata

__all__ = ["GROUP_NAME", "OWNERS", "build_report_assets"]

GROUP_NAME = "reports"
OP_NAME = "sql_report_models"
OWNERS = ["team:quant-research"]
KINDS = {"sql", "polars"}
PREVIEW_ROWS = 10

_SEVERITY = {Severity.ERROR: dg.AssetCheckSeverity.ERROR, Severity.WARN: dg.AssetCheckSeverity.WARN}


def build_report_assets(
    models_dir: Path | str = MODELS_DIR, schema_path: Path | str = SCHEMA_PATH
) -> dg.AssetsDefinition:
    """One asset per SQL model, its tests as asset checks, all computed in one step.

    Parameters
    ----------
    models_dir : folder searched for ``**/*.sql`` models.
    schema_path : the schema.yml describing the models, their columns, tests and sources.

    Returns
    -------
    A multi-asset (op :data:`OP_NAME`) with a spec per model, in dependency order, and an
    AssetCheckSpec per group of each model's tests (:func:`check_groups`); see
    :func:`_models_asset` for how a run computes them.

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
    return _models_asset(models, schema, order)


def _model_spec(model: Model, model_schema: ModelSchema) -> dg.AssetSpec:
    described = {name: column.description for name, column in model_schema.columns.items()}
    return dg.AssetSpec(
        model.name,
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


def _models_asset(models: Mapping[str, Model], schema: ProjectSchema,
                  order: list[str]) -> dg.AssetsDefinition:
    read = {ref for name in order for ref in models[name].refs} | {
        ref for name in order for test in schema.models[name].all_tests for ref in test.refs}
    sources = sorted(read - set(models))
    groups = {name: check_groups(schema.models[name]) for name in order}

    @dg.multi_asset(
        name=OP_NAME,
        outs={name: dg.AssetOut.from_spec(_model_spec(models[name], schema.models[name]),
                                          dagster_type=pl.DataFrame, is_required=False)
              for name in order},
        internal_asset_deps={name: {dg.AssetKey(ref) for ref in models[name].refs}
                             for name in order},
        check_specs=[spec for name in order for spec in _check_specs(schema.models[name])],
        ins={source: dg.AssetIn(key=source) for source in sources},
        can_subset=True,
        required_resource_keys={"io_manager"},
    )
    def _compute(context: dg.AssetExecutionContext,
                 **inputs: pl.DataFrame) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        tables: dict[str, pl.DataFrame] = dict(inputs)
        selected = {key.path[-1] for key in context.selected_asset_keys}
        checks = context.selected_asset_check_keys
        stopped: set[str] = set()  # models not run, or whose blocking check did not pass
        for name, check in _run_order(models, groups, order):
            if name not in selected:
                continue
            if check is None:
                model = models[name]
                if stopped & set(model.refs):
                    context.log.warning(f"{name}: not run, {_why(stopped, model.refs)}")
                    stopped.add(name)
                    continue
                table = run_model(model, _tables(context, tables, model.refs))
                tables[name] = table
                described = {n: c.description for n, c in schema.models[name].columns.items()}
                _warn_on_columns(context, model, table, described)
                yield dg.MaterializeResult(asset_key=name, value=table,
                                           metadata=_table_metadata(model, table, described))
            elif name in tables and dg.AssetCheckKey(dg.AssetKey(name), check) in checks:
                tests = groups[name][check]
                refs = {ref for test in tests for ref in test.refs} - {name}
                if stopped & refs:
                    context.log.warning(f"{name} check {check}: not run, {_why(stopped, refs)}")
                    if tests[0].severity is Severity.ERROR:
                        stopped.add(name)
                    continue
                result = _check_result(check, tests, tables[name],
                                       _tables(context, tables, {name, *refs}))
                yield result
                if _blocks(result, tests):
                    stopped.add(name)

    return _compute


def _run_order(models: Mapping[str, Model], groups: Mapping[str, Mapping[str, Any]],
               order: list[str]) -> list[tuple[str, str | None]]:
    """The step's work in order: ``(model, None)`` computes a model, ``(model, check)``
    runs one of its checks. A check comes after its model and every model it refs; a model
    after the models it refs and their blocking checks (Dagster's order for separate steps).
    """
    graph: dict[tuple[str, str | None], set[tuple[str, str | None]]] = {}
    for name in order:
        refs = [ref for ref in models[name].refs if ref in models]
        graph[(name, None)] = {(ref, None) for ref in refs} | {
            (ref, check) for ref in refs for check, tests in groups[ref].items()
            if tests[0].severity is Severity.ERROR}
        for check, tests in groups[name].items():
            graph[(name, check)] = {(name, None)} | {
                (ref, None) for test in tests for ref in test.refs if ref in models}
    return list(graphlib.TopologicalSorter(graph).static_order())


def _why(stopped: set[str], refs: Iterable[str]) -> str:
    return ("a blocking check did not pass on "
            + ", ".join(sorted(stopped & set(refs))) + " (schema.yml)")


def _blocks(result: dg.AssetCheckResult, tests: tuple[TestSpec, ...]) -> bool:
    """Whether the check stops the models downstream: a blocking (error-severity) check
    that failed with an error."""
    return (tests[0].severity is Severity.ERROR and not result.passed
            and result.severity == dg.AssetCheckSeverity.ERROR)


def _tables(context: dg.AssetExecutionContext, tables: dict[str, pl.DataFrame],
            names: Iterable[str]) -> dict[str, pl.DataFrame]:
    """{name: table} of ``names``: computed in this step, an input, or else the stored
    table of a model not selected in this run (read through the IO manager)."""
    for name in names:
        if name not in tables:
            stored = context.resources.io_manager.load_stored(name)
            if stored is None:
                raise FileNotFoundError(f"{name} has not been materialized: materialize it"
                                        " with the models that read it")
            tables[name] = stored
    return {name: tables[name] for name in names}


def _warn_on_columns(context: dg.AssetExecutionContext, model: Model, table: pl.DataFrame,
                     described: Mapping[str, str]) -> None:
    missing = [name for name in described if name not in table.columns]
    extra = [name for name in table.columns if name not in described]
    if missing or extra:
        context.log.warning(
            f"{model.name}: columns not in schema.yml {extra}; described but not produced"
            f" {missing}"
        )


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


def _check_specs(model_schema: ModelSchema) -> list[dg.AssetCheckSpec]:
    name = model_schema.name
    return [
        dg.AssetCheckSpec(
            name=check,
            asset=name,
            description="; ".join(test.description for test in tests),
            blocking=tests[0].severity is Severity.ERROR,
            additional_deps=sorted({ref for test in tests for ref in test.refs} - {name}),
            metadata={"test": tests[0].test, "severity": tests[0].severity.value,
                      "rules": len(tests)},
        )
        for check, tests in check_groups(model_schema).items()
    ]


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
