"""dbt_like_reports.schema_tests: each test on hand-made frames, and schema.yml parsing."""

from __future__ import annotations

import math
import textwrap

import polars as pl
import pytest

from dbt_like_reports.loader import MODELS_DIR, discover_models
from dbt_like_reports.schema_tests import (
    SCHEMA_PATH,
    TESTS,
    SchemaError,
    Severity,
    accepted_range,
    accepted_values,
    expression_is_true,
    load_schema,
    not_null,
    relationships,
    run_test,
    unique,
    unique_combination_of_columns,
)

# --- the test functions -----------------------------------------------------------------


def test_not_null_counts_null_rows_only():
    frame = pl.DataFrame({"x": [1.0, None, math.nan, None]})
    result = not_null(frame, "x")
    assert result.failing_rows == 2
    assert not result.passed
    assert result.sample.columns == ["x"]
    assert not_null(pl.DataFrame({"x": [1, 2]}), "x").passed


def test_unique_counts_every_row_of_a_repeated_value_and_ignores_nulls():
    frame = pl.DataFrame({"x": ["a", "b", "a", None, None, "a"]})
    result = unique(frame, "x")
    assert result.failing_rows == 3  # the three "a" rows; two nulls are not duplicates
    assert result.sample["x"].to_list() == ["a", "a", "a"]
    assert unique(pl.DataFrame({"x": ["a", "b", None, None]}), "x").passed


def test_accepted_values_counts_other_values_and_lets_nulls_pass():
    frame = pl.DataFrame({"x": ["base", "bull", "crash", None, "crash"]})
    result = accepted_values(frame, "x", values=["base", "bull"])
    assert result.failing_rows == 2
    assert accepted_values(frame.head(2), "x", values=["base", "bull"]).passed


def test_accepted_values_on_integers_and_booleans():
    assert accepted_values(pl.DataFrame({"n": [1, 2, 3]}), "n", values=[1, 2]).failing_rows == 1
    flags = pl.DataFrame({"f": [True, False]})
    assert accepted_values(flags, "f", values=[True]).failing_rows == 1


def test_accepted_range_is_inclusive_by_default():
    frame = pl.DataFrame({"x": [0.0, 0.5, 1.0, None]})
    assert accepted_range(frame, "x", min_value=0, max_value=1).passed
    result = accepted_range(frame, "x", min_value=0, max_value=1, inclusive=False)
    assert result.failing_rows == 2
    assert sorted(result.sample["x"].to_list()) == [0.0, 1.0]


def test_accepted_range_with_one_bound_and_nan():
    frame = pl.DataFrame({"x": [-1.0, 0.0, 5.0, math.nan]})
    assert accepted_range(frame, "x", min_value=0).failing_rows == 2  # -1 and NaN
    assert accepted_range(frame, "x", max_value=1).failing_rows == 2  # 5 and NaN
    assert accepted_range(pl.DataFrame({"n": [1, 6, 7]}), "n", max_value=6).failing_rows == 1
    with pytest.raises(SchemaError, match="min_value, max_value or both"):
        accepted_range(frame, "x")


def test_relationships_counts_orphans_and_lets_nulls_pass():
    children = pl.DataFrame({"config_id": ["a", "b", "z", None, "z"]})
    parents = pl.DataFrame({"config_id": ["a", "b", "c"]})
    result = relationships(children, "config_id", to=parents, field="config_id")
    assert result.failing_rows == 2
    assert result.sample["config_id"].to_list() == ["z", "z"]
    assert relationships(children.head(2), "config_id", to=parents, field="config_id").passed


def test_unique_combination_of_columns():
    frame = pl.DataFrame({"s": ["a", "a", "b", "a"], "c": [1, 2, 1, 1]})
    result = unique_combination_of_columns(frame, combination_of_columns=["s", "c"])
    assert result.failing_rows == 2
    assert result.sample.columns == ["s", "c"]
    assert unique_combination_of_columns(frame.head(3), combination_of_columns=["s", "c"]).passed


def test_expression_is_true_counts_false_rows_and_lets_null_pass():
    frame = pl.DataFrame({"lo": [0.0, 2.0, None], "hi": [1.0, 1.0, 3.0]})
    result = expression_is_true(frame, expression="lo <= hi")
    assert result.failing_rows == 1
    assert result.sample.row(0) == (2.0, 1.0)


def test_the_sample_holds_at_most_five_rows():
    frame = pl.DataFrame({"x": [None] * 20}, schema={"x": pl.Float64})
    result = not_null(frame, "x")
    assert result.failing_rows == 20
    assert result.sample.height == 5


# --- schema.yml -------------------------------------------------------------------------


def _schema(tmp_path, text: str):
    path = tmp_path / "schema.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_schema(path)


GOOD = """
    version: 2
    sources:
      - name: src
        description: the upstream table
    models:
      - name: m
        description: a model
        tests:
          - unique_combination_of_columns:
              combination_of_columns: [a, b]
          - expression_is_true:
              name: a_small
              expression: "a < 10"
              severity: warn
        columns:
          - name: a
            description: column a
            tests:
              - not_null
              - unique
              - accepted_range: {min_value: 0, max_value: 5}
              - accepted_values:
                  values: [1, 2]
                  config:
                    severity: warn
          - name: b
            description: column b
            tests:
              - relationships:
                  to: ref('src')
                  field: b
"""


def test_load_schema_parses_models_columns_tests_and_sources(tmp_path):
    schema = _schema(tmp_path, GOOD)
    assert schema.sources == {"src": "the upstream table"}
    model = schema.models["m"]
    assert model.description == "a model"
    assert list(model.columns) == ["a", "b"]
    names = [t.name for t in model.all_tests]
    assert names == [
        "not_null__a",
        "unique__a",
        "accepted_range__a",
        "accepted_values__a",
        "relationships__b",
        "unique_combination_of_columns__a__b",
        "a_small",
    ]
    by_name = {t.name: t for t in model.all_tests}
    assert by_name["accepted_values__a"].severity is Severity.WARN
    assert by_name["a_small"].severity is Severity.WARN
    assert by_name["not_null__a"].severity is Severity.ERROR
    assert by_name["relationships__b"].refs == ("src",)
    assert by_name["relationships__b"].arguments == {"to": "src", "field": "b"}


def test_run_test_resolves_relationships_targets(tmp_path):
    schema = _schema(tmp_path, GOOD)
    test = next(t for t in schema.models["m"].all_tests if t.test == "relationships")
    table = pl.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert run_test(test, table, {"src": pl.DataFrame({"b": ["x"]})}).failing_rows == 1
    with pytest.raises(SchemaError, match="no table 'src'"):
        run_test(test, table, {})
    with pytest.raises(SchemaError, match="src has no column 'b'"):
        run_test(test, table, {"src": pl.DataFrame({"c": ["x"]})})


def test_run_test_names_a_missing_column(tmp_path):
    schema = _schema(tmp_path, GOOD)
    test = schema.models["m"].all_tests[0]
    with pytest.raises(SchemaError, match="no column 'a'"):
        run_test(test, pl.DataFrame({"z": [1]}))


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ("- not_null", "- is_positive", "unknown test 'is_positive'; known tests:"),
        ("description: column a", "description: ''", "column 'a': description is required"),
        ("description: a model", "description:", "model 'm': description is required"),
        ("min_value: 0, max_value: 5", "low: 0", "unknown arguments \\['low'\\]"),
        ("values: [1, 2]", "vals: [1, 2]", "missing arguments \\['values'\\]"),
        ("to: ref('src')", "to: src_table", "to must read ref\\('model'\\)"),
        ("- unique\n", "- unique:\n                  severity: warn\n",
         "integrity test is always severity error"),
        ("severity: warn\n    columns", "severity: loud\n    columns",
         "severity 'loud' is not error or warn"),
        ("          name: a_small\n", "", "give the check a name"),
        ("- not_null", "- unique_combination_of_columns: {combination_of_columns: [a]}",
         "model-level test, declared at column level"),
    ],
)
def test_load_schema_rejects_mistakes_naming_where(tmp_path, replace, by, message):
    text = textwrap.dedent(GOOD)
    assert replace in text
    with pytest.raises(SchemaError, match=message):
        _schema(tmp_path, text.replace(replace, by, 1))


def test_load_schema_rejects_duplicate_check_names(tmp_path):
    text = textwrap.dedent(GOOD).replace("- unique\n", "- not_null\n", 1)
    with pytest.raises(SchemaError, match="two tests are named 'not_null__a'"):
        _schema(tmp_path, text)


def test_load_schema_rejects_unknown_keys(tmp_path):
    text = textwrap.dedent(GOOD).replace("version: 2", "version: 2\nseeds: []")
    with pytest.raises(SchemaError, match="unknown keys \\['seeds'\\]"):
        _schema(tmp_path, text)


def test_every_known_test_is_documented_in_the_module():
    assert set(TESTS) == {
        "not_null",
        "unique",
        "accepted_values",
        "accepted_range",
        "relationships",
        "unique_combination_of_columns",
        "expression_is_true",
    }


# --- the project's schema.yml ---------------------------------------------------------


def test_the_project_schema_describes_exactly_the_models():
    schema = load_schema(SCHEMA_PATH)
    assert set(schema.models) == set(discover_models(MODELS_DIR))
    assert set(schema.sources) == {"strategy_evaluations", "strategy_configs",
                                   "optimisation_history"}
    for model in schema.models.values():
        assert model.description
        assert model.columns, model.name
        assert model.all_tests, model.name


def test_every_model_output_column_is_described_in_order(model_tables):
    schema = load_schema(SCHEMA_PATH)
    for name, table in model_tables.items():
        assert list(schema.models[name].columns) == table.columns, name


def test_every_schema_test_passes_on_engine_data(sources, model_tables):
    schema = load_schema(SCHEMA_PATH)
    tables = {**sources, **model_tables}
    failures = {
        test.name: run_test(test, model_tables[name], tables)
        for name, model in schema.models.items()
        for test in model.all_tests
    }
    assert {n: r.failing_rows for n, r in failures.items() if not r.passed} == {}
    assert len(failures) > 100  # the suite is not vacuous
