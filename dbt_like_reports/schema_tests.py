"""schema.yml: model and column descriptions, and the data tests run on each model's table.

The file follows dbt's layout::

    sources:                      # upstream tables the models ref but do not build
      - name: strategy_evaluations
        description: ...
    models:
      - name: stg_strategy_configs
        description: ...
        tests:                    # model-level tests (several columns or a whole row)
          - unique_combination_of_columns:
              combination_of_columns: [scenario, config_id]
        columns:
          - name: config_id
            description: ...
            tests:
              - not_null
              - unique
              - accepted_values: {values: [a, b]}
              - accepted_range: {min_value: 0, max_value: 1}      # inclusive bounds
              - relationships: {to: "ref('stg_strategy_configs')", field: config_id}

Each test is a pure function of polars DataFrames that returns a :class:`TestResult`: the
number of failing rows and a few of them. Nulls pass every test but ``not_null`` (as in
dbt). A test fails the build at severity ``error`` (the default); ``accepted_values``,
``accepted_range`` and ``expression_is_true`` may be lowered to ``severity: warn``. The
integrity tests (not_null, unique, relationships, unique_combination_of_columns) are
always errors.

Pure Python: no Dagster import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl
import yaml

__all__ = [
    "SCHEMA_PATH",
    "TESTS",
    "ColumnSchema",
    "ModelSchema",
    "ProjectSchema",
    "SchemaError",
    "Severity",
    "TestResult",
    "TestSpec",
    "accepted_range",
    "accepted_values",
    "expression_is_true",
    "load_schema",
    "not_null",
    "relationships",
    "run_test",
    "unique",
    "unique_combination_of_columns",
]

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.yml"
"""The project's schema file."""

SAMPLE_ROWS = 5
"""Failing rows kept in a TestResult's sample."""

_REF = re.compile(r"""^\s*ref\(\s*(['"])(?P<name>[a-z_][a-z0-9_]*)\1\s*\)\s*$""")
_CHECK_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class SchemaError(ValueError):
    """schema.yml is malformed or names an unknown test; the message says where."""


class Severity(StrEnum):
    """How a failing test is reported: ``error`` fails the check, ``warn`` flags it."""

    ERROR = "error"
    WARN = "warn"


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one test: how many rows fail it and a few of them."""

    __test__ = False  # not a pytest class

    failing_rows: int
    sample: pl.DataFrame

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0


# ---------------------------------------------------------------------------------------
# The tests: pure functions of DataFrames.


def _result(table: pl.DataFrame, failing: pl.Expr, columns: Sequence[str]) -> TestResult:
    failed = table.filter(failing.fill_null(False))
    return TestResult(failed.height, failed.select(columns).head(SAMPLE_ROWS))


def not_null(table: pl.DataFrame, column: str) -> TestResult:
    """Rows where ``column`` is null."""
    return _result(table, pl.col(column).is_null(), [column])


def unique(table: pl.DataFrame, column: str) -> TestResult:
    """Rows whose non-null ``column`` value appears more than once (all of them count)."""
    repeated = pl.col(column).is_not_null() & pl.col(column).is_duplicated()
    return _result(table, repeated, [column])


def accepted_values(table: pl.DataFrame, column: str, *, values: Sequence[Any]) -> TestResult:
    """Rows whose non-null ``column`` value is not one of ``values``."""
    allowed = pl.Series("values", list(values), dtype=table.schema[column], strict=False)
    return _result(table, ~pl.col(column).is_in(allowed.implode()), [column])


def accepted_range(
    table: pl.DataFrame,
    column: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    inclusive: bool = True,
) -> TestResult:
    """Rows whose non-null ``column`` lies outside [min_value, max_value].

    Either bound may be omitted; ``inclusive: false`` makes both bounds strict. NaN
    fails whenever a bound is given (it is neither >= nor <= a number in SQL's sense).
    """
    if min_value is None and max_value is None:
        raise SchemaError("accepted_range needs min_value, max_value or both")
    value = pl.col(column)
    inside = pl.lit(True)
    if min_value is not None:
        inside = inside & (value >= min_value if inclusive else value > min_value)
    if max_value is not None:
        inside = inside & (value <= max_value if inclusive else value < max_value)
    if table.schema[column].is_float():
        inside = inside & ~value.is_nan()
    return _result(table, value.is_not_null() & ~inside, [column])


def relationships(
    table: pl.DataFrame, column: str, *, to: pl.DataFrame, field: str
) -> TestResult:
    """Rows whose non-null ``column`` value is missing from ``to[field]`` (a foreign key)."""
    keys = to.get_column(field).drop_nulls().unique()
    orphan = pl.col(column).is_not_null() & ~pl.col(column).is_in(keys.implode())
    return _result(table, orphan, [column])


def unique_combination_of_columns(
    table: pl.DataFrame, *, combination_of_columns: Sequence[str]
) -> TestResult:
    """Rows whose combination of ``combination_of_columns`` appears more than once."""
    columns = list(combination_of_columns)
    if not columns:
        raise SchemaError("unique_combination_of_columns needs combination_of_columns")
    return _result(table, pl.struct(columns).is_duplicated(), columns)


def expression_is_true(table: pl.DataFrame, *, expression: str) -> TestResult:
    """Rows where the polars SQL boolean ``expression`` is false (null passes)."""
    return _result(table, ~pl.sql_expr(expression), table.columns)


@dataclass(frozen=True, slots=True)
class _TestKind:
    function: Callable[..., TestResult]
    scope: str  # "column" or "model"
    arguments: frozenset[str]
    required: frozenset[str]
    may_warn: bool


TESTS: Mapping[str, _TestKind] = {
    "not_null": _TestKind(not_null, "column", frozenset(), frozenset(), False),
    "unique": _TestKind(unique, "column", frozenset(), frozenset(), False),
    "accepted_values": _TestKind(
        accepted_values, "column", frozenset({"values"}), frozenset({"values"}), True
    ),
    "accepted_range": _TestKind(
        accepted_range, "column", frozenset({"min_value", "max_value", "inclusive"}),
        frozenset(), True,
    ),
    "relationships": _TestKind(
        relationships, "column", frozenset({"to", "field"}), frozenset({"to", "field"}), False
    ),
    "unique_combination_of_columns": _TestKind(
        unique_combination_of_columns, "model", frozenset({"combination_of_columns"}),
        frozenset({"combination_of_columns"}), False,
    ),
    "expression_is_true": _TestKind(
        expression_is_true, "model", frozenset({"expression"}), frozenset({"expression"}), True
    ),
}
"""Test name -> its function, whether it applies to a column or a model, its arguments."""


# ---------------------------------------------------------------------------------------
# schema.yml


@dataclass(frozen=True, slots=True)
class TestSpec:
    """One test as declared in schema.yml.

    ``name`` is the rule's name, ``<test>__<column>`` for a column test and
    ``<test>__<col1>__<col2>...`` for unique_combination_of_columns; expression_is_true
    takes it from the YAML ``name:``. ``refs`` are the other tables the test reads
    (relationships' ``to``).
    """

    __test__ = False  # not a pytest class

    test: str
    name: str
    model: str
    column: str | None
    arguments: Mapping[str, Any]
    severity: Severity

    @property
    def refs(self) -> tuple[str, ...]:
        return (self.arguments["to"],) if self.test == "relationships" else ()

    @property
    def description(self) -> str:
        where = f"{self.model}.{self.column}" if self.column else self.model
        shown = {k: v for k, v in self.arguments.items() if k != "to"}
        if self.test == "relationships":
            shown = {"to": f"{self.arguments['to']}.{self.arguments['field']}"}
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{self.test}({args}) on {where}" if args else f"{self.test} on {where}"


@dataclass(frozen=True, slots=True)
class ColumnSchema:
    name: str
    description: str
    tests: tuple[TestSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSchema:
    name: str
    description: str
    columns: Mapping[str, ColumnSchema] = field(default_factory=dict)
    tests: tuple[TestSpec, ...] = ()

    @property
    def all_tests(self) -> tuple[TestSpec, ...]:
        """Column tests in column order, then the model-level tests."""
        return (*(t for c in self.columns.values() for t in c.tests), *self.tests)


@dataclass(frozen=True, slots=True)
class ProjectSchema:
    """The parsed schema.yml: model schemas and source descriptions, by name."""

    models: Mapping[str, ModelSchema]
    sources: Mapping[str, str]


def load_schema(path: Path | str = SCHEMA_PATH) -> ProjectSchema:
    """Parse and validate schema.yml.

    Raises SchemaError naming the model, column and test for: a missing description, an
    unknown test name, missing or unknown test arguments, a malformed ``to: ref(...)``,
    a ``severity: warn`` on an integrity test, a duplicate model, column or check name.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SchemaError(f"{path}: not valid YAML: {error}") from error
    _only_keys(document, {"version", "models", "sources"}, f"{path}")
    sources: dict[str, str] = {}
    for entry in document.get("sources") or []:
        _only_keys(entry, {"name", "description"}, f"{path}: source")
        name = _required(entry, "name", f"{path}: a source")
        if name in sources:
            raise SchemaError(f"{path}: source {name!r} is declared twice")
        sources[name] = _required(entry, "description", f"{path}: source {name!r}")
    models: dict[str, ModelSchema] = {}
    for entry in document.get("models") or []:
        model = _parse_model(entry, f"{path}")
        if model.name in models:
            raise SchemaError(f"{path}: model {model.name!r} is declared twice")
        models[model.name] = model
    return ProjectSchema(models=models, sources=sources)


def _parse_model(entry: Any, where: str) -> ModelSchema:
    _only_keys(entry, {"name", "description", "columns", "tests"}, f"{where}: model")
    name = _required(entry, "name", f"{where}: a model")
    where = f"{where}: model {name!r}"
    description = _required(entry, "description", where)
    columns: dict[str, ColumnSchema] = {}
    for column_entry in entry.get("columns") or []:
        _only_keys(column_entry, {"name", "description", "tests"}, f"{where}: column")
        column = _required(column_entry, "name", f"{where}: a column")
        if column in columns:
            raise SchemaError(f"{where}: column {column!r} is declared twice")
        column_where = f"{where} column {column!r}"
        tests = tuple(
            _parse_test(raw, name, column, column_where) for raw in column_entry.get("tests") or []
        )
        columns[column] = ColumnSchema(
            column, _required(column_entry, "description", column_where), tests
        )
    model_tests = tuple(_parse_test(raw, name, None, where) for raw in entry.get("tests") or [])
    schema = ModelSchema(name, description, columns, model_tests)
    seen: set[str] = set()
    for test in schema.all_tests:
        if test.name in seen:
            raise SchemaError(f"{where}: two tests are named {test.name!r}; give one a name:")
        seen.add(test.name)
    return schema


def _parse_test(raw: Any, model: str, column: str | None, where: str) -> TestSpec:
    if isinstance(raw, str):
        test, arguments = raw, {}
    elif isinstance(raw, Mapping) and len(raw) == 1:
        test, arguments = next(iter(raw.items()))
        arguments = dict(arguments or {})
    else:
        raise SchemaError(f"{where}: a test must be a name or a one-key mapping, got {raw!r}")
    kind = TESTS.get(test)
    if kind is None:
        raise SchemaError(
            f"{where}: unknown test {test!r}; known tests: {', '.join(sorted(TESTS))}"
        )
    where = f"{where} test {test!r}"
    expected_scope = "column" if column else "model"
    if kind.scope != expected_scope:
        raise SchemaError(f"{where}: a {kind.scope}-level test, declared at {expected_scope} level")
    config = dict(arguments.pop("config", None) or {})
    severity_text = str(arguments.pop("severity", config.pop("severity", "error"))).lower()
    name = arguments.pop("name", None)
    if config:
        raise SchemaError(f"{where}: unknown config {sorted(config)}; only severity is read")
    unknown = sorted(set(arguments) - kind.arguments)
    missing = sorted(kind.required - set(arguments))
    if unknown or missing:
        raise SchemaError(
            f"{where}: unknown arguments {unknown}, missing arguments {missing}; it takes "
            f"{sorted(kind.arguments)}"
        )
    try:
        severity = Severity(severity_text)
    except ValueError:
        raise SchemaError(f"{where}: severity {severity_text!r} is not error or warn") from None
    if severity is Severity.WARN and not kind.may_warn:
        raise SchemaError(f"{where}: an integrity test is always severity error")
    if test == "relationships":
        match = _REF.match(str(arguments["to"]))
        if not match:
            raise SchemaError(f"{where}: to must read ref('model'), got {arguments['to']!r}")
        arguments["to"] = match.group("name")
    if test == "accepted_range" and {"min_value", "max_value"}.isdisjoint(arguments):
        raise SchemaError(f"{where}: give min_value, max_value or both")
    if name is None:
        if test == "expression_is_true":
            raise SchemaError(f"{where}: give the check a name: (letters, digits, _)")
        parts = [column] if column else list(arguments.get("combination_of_columns", []))
        name = "__".join([test, *parts])
    if not _CHECK_NAME.fullmatch(str(name)):
        raise SchemaError(f"{where}: name {name!r} must be letters, digits and _ only")
    return TestSpec(test, str(name), model, column, arguments, severity)


def _only_keys(entry: Any, allowed: set[str], where: str) -> None:
    if not isinstance(entry, Mapping):
        raise SchemaError(f"{where}: expected a mapping, got {entry!r}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SchemaError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _required(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(f"{where}: {key} is required (a non-empty string)")
    return value.strip()


# ---------------------------------------------------------------------------------------
# Running


def run_test(
    spec: TestSpec, table: pl.DataFrame, tables: Mapping[str, pl.DataFrame] | None = None
) -> TestResult:
    """Run one declared test on ``table``; ``tables`` provides relationships' targets.

    Raises SchemaError when the tested column or a referenced table is missing.
    """
    kind = TESTS[spec.test]
    arguments = dict(spec.arguments)
    if spec.test == "relationships":
        target = (tables or {}).get(arguments["to"])
        if target is None:
            raise SchemaError(f"{spec.description}: no table {arguments['to']!r} given")
        if arguments["field"] not in target.columns:
            raise SchemaError(f"{spec.description}: {arguments['to']} has no column "
                              f"{arguments['field']!r}")
        arguments["to"] = target
    if spec.column is not None:
        if spec.column not in table.columns:
            raise SchemaError(f"{spec.description}: the table has no column {spec.column!r}")
        return kind.function(table, spec.column, **arguments)
    return kind.function(table, **arguments)
