"""dbt_like_reports.loader: refs, discovery, ordering, rendering and running models."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

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


def _write(root: Path, relative: str, sql: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sql, encoding="utf-8")
    return path


def _model(name: str, sql: str) -> Model:
    return Model(name=name, path=Path(f"{name}.sql"), sql=sql, refs=parse_refs(sql), layer="")


# --- parse_refs / render ----------------------------------------------------------------


def test_parse_refs_accepts_either_quote_and_any_whitespace_in_order_without_repeats():
    sql = """
        select * from {{ ref('b_model') }}
        join {{ref("a_model")}} using (k)
        join {{   ref(  'c_model'  )   }} using (k)
        join {{ ref('b_model') }} as again using (k)
    """
    assert parse_refs(sql) == ("b_model", "a_model", "c_model")


def test_parse_refs_of_sql_without_refs_is_empty():
    assert parse_refs("select 1 as x") == ()


@pytest.mark.parametrize(
    "sql",
    [
        "select * from {{ source('a', 'b') }}",
        "{% if true %} select 1 {% endif %}",
        "select * from {{ ref('a\") }}",  # mismatched quotes
        "select * from {{ ref(a) }}",  # unquoted
    ],
)
def test_parse_refs_rejects_other_template_expressions(sql):
    with pytest.raises(ModelError, match="unsupported template expression at line 1"):
        parse_refs(sql)


def test_parse_refs_reports_the_line_of_a_bad_template():
    with pytest.raises(ModelError, match="line 3"):
        parse_refs("select *\nfrom {{ ref('a') }}\njoin {{ source('x') }}")


def test_parse_refs_rejects_a_name_that_is_not_a_table_name():
    with pytest.raises(ModelError, match="not a valid table name"):
        parse_refs("select * from {{ ref('Bad-Name') }}")


def test_render_replaces_each_ref_by_the_table_name():
    sql = "select * from {{ ref('a') }} join {{ref(\"b\")}} using (k)"
    assert render(sql) == "select * from a join b using (k)"


# --- discover_models ------------------------------------------------------------------


def test_discover_models_names_by_stem_and_layer_by_folder(tmp_path):
    _write(tmp_path, "staging/stg_x.sql", "select * from {{ ref('src') }}")
    _write(tmp_path, "marts/x_mart.sql", "select * from {{ ref('stg_x') }}")
    _write(tmp_path, "top.sql", "select 1 as one")
    models = discover_models(tmp_path)
    assert list(models) == ["stg_x", "top", "x_mart"]
    assert models["stg_x"].layer == "staging"
    assert models["x_mart"].refs == ("stg_x",)
    assert models["top"].layer == ""


def test_discover_models_rejects_two_files_with_one_stem(tmp_path):
    _write(tmp_path, "staging/dup.sql", "select 1 as a")
    _write(tmp_path, "marts/dup.sql", "select 2 as a")
    with pytest.raises(ModelError, match="'dup' is defined twice"):
        discover_models(tmp_path)


def test_discover_models_rejects_a_stem_that_is_not_an_identifier(tmp_path):
    _write(tmp_path, "marts/Bad-Name.sql", "select 1 as a")
    with pytest.raises(ModelError, match="not a lowercase identifier"):
        discover_models(tmp_path)


def test_discover_models_names_the_model_with_a_bad_template(tmp_path):
    _write(tmp_path, "marts/broken.sql", "select * from {{ source('a') }}")
    with pytest.raises(ModelError, match="model 'broken'"):
        discover_models(tmp_path)


def test_discover_models_needs_an_existing_directory(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        discover_models(tmp_path / "nowhere")


def test_code_version_follows_the_sql_text():
    a = _model("m", "select 1 as x")
    assert a.code_version == _model("m", "select 1 as x").code_version
    assert a.code_version != _model("m", "select 2 as x").code_version
    assert len(a.code_version) == 12


# --- topological_order ----------------------------------------------------------------


def test_topological_order_puts_every_model_after_its_refs():
    models = {
        "d": _model("d", "select * from {{ ref('b') }} join {{ ref('c') }} using (k)"),
        "c": _model("c", "select * from {{ ref('a') }}"),
        "b": _model("b", "select * from {{ ref('a') }}"),
        "a": _model("a", "select * from {{ ref('src') }}"),
    }
    order = topological_order(models, sources=["src"])
    assert order == ["a", "b", "c", "d"]


def test_topological_order_of_the_project_reads_layer_by_layer():
    models = discover_models(MODELS_DIR)
    order = topological_order(
        models, ["strategy_evaluations", "strategy_configs", "optimisation_history"])
    layers = [models[name].layer for name in order]
    assert layers == sorted(layers, key=["staging", "intermediate", "marts"].index)
    for position, name in enumerate(order):
        assert all(ref not in order[position:] for ref in models[name].refs)


def test_unknown_ref_names_the_model_and_the_ref():
    models = {"a": _model("a", "select * from {{ ref('missing_table') }}")}
    with pytest.raises(UnknownRefError, match=r"model 'a' .* refs unknown 'missing_table'"):
        topological_order(models, sources=["src"])


def test_a_cycle_is_an_error_that_lists_it():
    models = {
        "a": _model("a", "select * from {{ ref('c') }}"),
        "b": _model("b", "select * from {{ ref('a') }}"),
        "c": _model("c", "select * from {{ ref('b') }}"),
    }
    with pytest.raises(CycleError, match="a -> c -> b -> a"):
        topological_order(models)


def test_a_self_ref_is_a_cycle_named_at_discovery(tmp_path):
    _write(tmp_path, "marts/loop.sql", "select * from {{ ref('loop') }}")
    with pytest.raises(CycleError, match="model 'loop' refs itself"):
        discover_models(tmp_path)


def test_a_source_may_not_share_a_model_name():
    with pytest.raises(ModelError, match="both a model and a source"):
        topological_order({"a": _model("a", "select 1 as x")}, sources=["a"])


# --- run_model / run_models -------------------------------------------------------------


def test_run_model_executes_polars_sql_over_the_referenced_tables():
    model = _model(
        "m",
        "with t as (select * from {{ ref('src') }}), "
        "final as (select k, sum(v) as total from t group by k order by k) "
        "select * from final",
    )
    src = pl.DataFrame({"k": ["b", "a", "b"], "v": [1, 2, 3]})
    out = run_model(model, {"src": src})
    assert out.to_dict(as_series=False) == {"k": ["a", "b"], "total": [2, 4]}


def test_run_model_registers_only_the_referenced_tables():
    model = _model("m", "select * from other")
    with pytest.raises(ModelError, match=r"model 'm' .* failed in polars SQL"):
        run_model(model, {"other": pl.DataFrame({"x": [1]})})


def test_run_model_names_a_missing_input():
    model = _model("m", "select * from {{ ref('src') }}")
    with pytest.raises(ModelError, match="model 'm': no input table for src"):
        run_model(model, {})


def test_run_models_chains_models_in_order(tmp_path):
    _write(tmp_path, "staging/stg_src.sql", "select cast(v as double) as v from {{ ref('src') }}")
    _write(tmp_path, "marts/doubled.sql", "select v * 2 as v2 from {{ ref('stg_src') }}")
    out = run_models({"src": pl.DataFrame({"v": [1, 2]})}, tmp_path)
    assert list(out) == ["stg_src", "doubled"]
    assert out["doubled"]["v2"].to_list() == [2.0, 4.0]
