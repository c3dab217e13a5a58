"""dynalloc_dagster.assets.reports: the models as assets, the tests as asset checks.

Materializes small graphs in-process with the Parquet IO manager under tmp_path; the
upstream assets are stand-ins with the real keys (strategy_evaluations, strategy_configs,
optimisation_history) returning the conftest tables.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dbt_like_reports.loader import MODELS_DIR, UnknownRefError, discover_models
from dbt_like_reports.schema_tests import SCHEMA_PATH, SchemaError, load_schema
from dynalloc_dagster.assets.reports import _check_result, build_report_assets, check_groups
from dynalloc_dagster.partitions import SCENARIOS, batch_partitions, evaluation_partitions
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager
from dynalloc_dagster.storage.local import LocalStorage


def _stand_ins(evaluations: pl.DataFrame, configs: pl.DataFrame,
               history: pl.DataFrame) -> list[dg.AssetsDefinition]:
    """The three sources the models read, as assets with the real keys."""

    @dg.asset(name="strategy_evaluations")
    def strategy_evaluations() -> pl.DataFrame:
        return evaluations

    @dg.asset(name="strategy_configs")
    def strategy_configs() -> pl.DataFrame:
        return configs

    @dg.asset(name="optimisation_history")
    def optimisation_history() -> pl.DataFrame:
        return history

    return [strategy_evaluations, strategy_configs, optimisation_history]


def _resources(root: Path) -> dict[str, object]:
    return {"io_manager": PolarsParquetIOManager(root=str(root))}


def _subset(assets, checks, names: set[str]):
    keep = [a for a in assets if a.key.path[-1] in names]
    keep_checks = [c for c in checks if {k.asset_key.path[-1] for k in c.check_keys} <= names]
    return keep, keep_checks


@pytest.fixture(scope="module")
def report_defs():
    return build_report_assets()


# --- definitions --------------------------------------------------------------------------


def test_one_asset_per_model_with_its_refs_as_inputs(report_defs):
    assets, _ = report_defs
    models = discover_models(MODELS_DIR)
    schema = load_schema(SCHEMA_PATH)
    assert sorted(a.key.path[-1] for a in assets) == sorted(models)
    for asset in assets:
        name = asset.key.path[-1]
        spec = next(iter(asset.specs))
        assert spec.group_name == "reports"
        assert spec.kinds == {"sql", "polars"}
        assert list(spec.owners) == ["team:quant-research"]
        assert spec.code_version == models[name].code_version
        assert spec.description == schema.models[name].description
        assert {dep.asset_key.path[-1] for dep in spec.deps} == set(models[name].refs)


def test_column_tests_checked_by_kind_and_severity_model_tests_alone(report_defs):
    _, checks = report_defs
    schema = load_schema(SCHEMA_PATH)
    specs = {spec.key: spec for check in checks for spec in check.check_specs}
    grouped = {dg.AssetCheckKey(dg.AssetKey(model.name), name): tests
               for model in schema.models.values()
               for name, tests in check_groups(model).items()}
    assert set(specs) == set(grouped)
    every = [(m.name, t.name) for m in schema.models.values() for t in m.all_tests]
    assert sorted((t.model, t.name) for tests in grouped.values() for t in tests) == sorted(every)
    assert len(specs) < len(every)  # fewer checks, every rule in one of them

    stg = dg.AssetKey("stg_strategy_evaluations")
    not_null = grouped[dg.AssetCheckKey(stg, "not_null")]
    assert {t.test for t in not_null} == {"not_null"} and len(not_null) > 1
    assert {t.name for t in grouped[dg.AssetCheckKey(stg, "accepted_values__warn")]} == {
        "accepted_values__scenario", "accepted_values__weight_fn"}
    assert [t.name for t in grouped[dg.AssetCheckKey(stg, "risk_aversion_only_where_used")]] \
        == ["risk_aversion_only_where_used"]
    assert specs[dg.AssetCheckKey(stg, "not_null")].blocking
    assert not specs[dg.AssetCheckKey(stg, "accepted_values__warn")].blocking
    assert "not_null on stg_strategy_evaluations.config_id" in specs[
        dg.AssetCheckKey(stg, "not_null")].description
    history = dg.AssetKey("stg_optimisation_history")
    assert specs[dg.AssetCheckKey(history, "accepted_values")].blocking  # error and warn apart
    assert not specs[dg.AssetCheckKey(history, "accepted_values__warn")].blocking
    assert {k.asset_key for k in specs[dg.AssetCheckKey(stg, "relationships")].additional_deps
            } == {dg.AssetKey("stg_strategy_configs")}


def test_a_rule_that_cannot_run_fails_its_check_as_an_error_naming_it(sources):
    tests = check_groups(load_schema(SCHEMA_PATH).models["stg_strategy_configs"])[
        "accepted_values__warn"]
    staged = sources["strategy_configs"].drop(tests[0].column)
    result = _check_result("accepted_values__warn", tests, staged, {})
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR  # not the tests' warn
    assert f"the table has no column {tests[0].column!r}" in result.metadata["error"].value
    assert result.metadata["failing_rules"].value == tests[0].name


def test_a_model_test_named_like_a_group_of_column_tests_is_an_error(tmp_path):
    schema_path = tmp_path / "schema.yml"
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    schema_path.write_text(text.replace("name: risk_aversion_only_where_used",
                                        "name: not_null", 1), encoding="utf-8")
    with pytest.raises(SchemaError, match="check name 'not_null' is taken by the not_null"
                       " column tests of stg_strategy_evaluations"):
        build_report_assets(MODELS_DIR, schema_path)


def test_the_definitions_validate_with_stand_in_sources(report_defs, sources):
    assets, checks = report_defs
    defs = dg.Definitions(
        assets=[*_stand_ins(sources["strategy_evaluations"], sources["strategy_configs"],
                    sources["optimisation_history"]),
                *assets],
        asset_checks=checks,
        resources=_resources(Path("unused")),
    )
    defs.resolve_asset_graph()


# --- materialization ----------------------------------------------------------------------


def test_materialize_every_model_and_every_check_passes(tmp_path, report_defs, sources):
    assets, checks = report_defs
    result = dg.materialize(
        [*_stand_ins(sources["strategy_evaluations"], sources["strategy_configs"],
                    sources["optimisation_history"]),
         *assets, *checks],
        resources=_resources(tmp_path),
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == sum(len(c.check_keys) for c in checks)
    assert [e.check_name for e in evaluations if not e.passed] == []
    assert all(e.metadata["failing_rows"].value == 0 for e in evaluations)
    assert all(e.metadata["failing_rules"].value == "none" for e in evaluations)

    board = pl.read_parquet(tmp_path / "robustness_leaderboard.parquet")
    assert board.height == sources["strategy_configs"].height
    materialization = result.asset_materializations_for_node("robustness_leaderboard")[0]
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == board.height
    assert metadata["sql"].value.startswith("```sql\n")
    assert "{{" not in metadata["sql"].value
    assert "from stg_optimisation_history" in metadata["sql"].value
    assert metadata["preview"].value.startswith("| rank | config_id |")
    columns = metadata["dagster/column_schema"].value.columns
    assert columns[0].name == "rank" and columns[0].description


def test_a_failing_error_check_reports_rows_and_blocks_downstream(tmp_path, report_defs,
                                                                   sources):
    assets, checks = report_defs
    configs = sources["strategy_configs"]
    duplicated = pl.concat([configs, configs.head(1)])
    result = dg.materialize(
        [*_stand_ins(sources["strategy_evaluations"], duplicated,
                    sources["optimisation_history"]), *assets, *checks],
        resources=_resources(tmp_path),
        raise_on_error=False,
    )
    assert not result.success
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {"unique"}
    evaluation = failed["unique"]
    assert evaluation.asset_key == dg.AssetKey("stg_strategy_configs")
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failing_rows"].value == 2
    assert evaluation.metadata["failing_rules"].value == "unique__config_id"
    assert "| unique__config_id | unique on stg_strategy_configs.config_id | 2 |" in \
        evaluation.metadata["rules"].value
    sample = evaluation.metadata["failing_sample"].value
    assert sample.startswith("**unique__config_id** (2 rows)")
    assert configs["config_id"][0] in sample
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert "stg_strategy_configs" in materialized
    assert "robustness_leaderboard" not in materialized


def test_a_failing_warn_check_does_not_fail_the_run(tmp_path, report_defs, sources):
    assets, checks = report_defs
    def rename(column: str) -> pl.Expr:
        return (pl.when(pl.col(column) == "bull").then(pl.lit("crash"))
                .otherwise(pl.col(column)).alias(column))

    evaluations = sources["strategy_evaluations"].with_columns(rename("scenario"))
    history = sources["optimisation_history"].with_columns(rename("worst_scenario"))
    staging = {"stg_strategy_evaluations", "stg_strategy_configs", "stg_optimisation_history"}
    keep, keep_checks = _subset(assets, checks, staging)
    result = dg.materialize(
        [*_stand_ins(evaluations, sources["strategy_configs"], history),
         *keep, *keep_checks],
        resources=_resources(tmp_path),
    )
    assert result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [(e.check_name, e.severity) for e in failed] == [
        ("accepted_values__warn", dg.AssetCheckSeverity.WARN)
    ]
    assert failed[0].metadata["failing_rows"].value == 12  # the 12 configs of "crash"
    assert failed[0].metadata["failing_rules"].value == "accepted_values__scenario"
    assert "| accepted_values__weight_fn |" in failed[0].metadata["rules"].value  # passed


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def test_partitioned_strategy_evaluations_load_as_one_table(tmp_path, report_defs, sources):
    """The real upstream layout: one Parquet file per (scenario, batch) partition key,
    here two batches of configs, every scenario of the partitions (the fixture's rows
    stand in for any it lacks)."""
    assets, checks = report_defs
    given = sources["strategy_evaluations"]
    stand_in = given.filter(pl.col("scenario") == given["scenario"][0])
    evaluations = pl.concat([given, *(
        stand_in.with_columns(pl.lit(s).alias("scenario"))
        for s in SCENARIOS if s not in set(given["scenario"]))])
    io_manager = PolarsParquetIOManager(root=str(tmp_path))
    ids = sorted(evaluations["config_id"].unique())
    batch_of = {cid: ("r000-aaaaaaaa" if i % 2 else "r001-bbbbbbbb") for i, cid in enumerate(ids)}
    batched = evaluations.with_columns(pl.col("config_id").replace_strict(batch_of).alias("b"))
    storage = LocalStorage(root=str(tmp_path))
    for (scenario, batch), rows in batched.group_by("scenario", "b"):
        storage.put(f"strategy_evaluations/batch={batch}/scenario={scenario}.parquet",
                    _parquet(rows.drop("b")))
    for name in ("strategy_configs", "optimisation_history"):
        storage.put(f"{name}.parquet", _parquet(sources[name]))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(batch_partitions.name, ["r000-aaaaaaaa", "r001-bbbbbbbb"])
    upstream = [
        dg.AssetSpec("strategy_evaluations", partitions_def=evaluation_partitions),
        dg.AssetSpec("strategy_configs"),
        dg.AssetSpec("optimisation_history"),
    ]
    keep, keep_checks = _subset(assets, checks, {"stg_strategy_evaluations",
                                                 "stg_strategy_configs",
                                                 "stg_optimisation_history",
                                                 "int_config_parameter_bands",
                                                 "robustness_leaderboard"})
    result = dg.materialize([*upstream, *keep, *keep_checks],
                            resources={"io_manager": io_manager}, instance=instance)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    staged = pl.read_parquet(tmp_path / "stg_strategy_evaluations.parquet")
    assert staged.sort("scenario", "config_id").equals(
        evaluations.sort("scenario", "config_id"))


# --- adding a model ---------------------------------------------------------------------


NEW_MODEL_SQL = """\
-- config_count: how many configs were sampled per weight function.

with configs as (

    select * from {{ ref('stg_strategy_configs') }}

),

final as (

    select
        weight_fn,
        count(*) as n_configs
    from configs
    group by weight_fn
    order by weight_fn

)

select * from final
"""

NEW_MODEL_SCHEMA = """
  - name: config_count
    description: "Configs sampled per weight function."
    columns:
      - name: weight_fn
        description: "weight function"
        tests:
          - not_null
          - unique
      - name: n_configs
        description: "configs using it"
        tests:
          - accepted_range: {min_value: 1}
"""


def test_adding_a_sql_file_adds_an_asset_that_materializes(tmp_path, sources):
    """A new model is one .sql file plus its schema entry."""
    models_dir = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models_dir)
    (models_dir / "marts" / "config_count.sql").write_text(NEW_MODEL_SQL, encoding="utf-8")
    schema_path = tmp_path / "schema.yml"
    schema_path.write_text(SCHEMA_PATH.read_text(encoding="utf-8") + NEW_MODEL_SCHEMA,
                           encoding="utf-8")

    before, _ = build_report_assets()
    assets, checks = build_report_assets(models_dir, schema_path)
    names = {a.key.path[-1] for a in assets}
    assert names - {a.key.path[-1] for a in before} == {"config_count"}
    new = next(a for a in assets if a.key == dg.AssetKey("config_count"))
    spec = next(iter(new.specs))
    assert {dep.asset_key for dep in spec.deps} == {dg.AssetKey("stg_strategy_configs")}
    assert spec.description == "Configs sampled per weight function."
    new_checks = {key.name for c in checks for key in c.check_keys
                  if key.asset_key == dg.AssetKey("config_count")}
    assert new_checks == {"not_null", "unique", "accepted_range"}

    keep, keep_checks = _subset(assets, checks, {"stg_strategy_configs", "config_count"})
    result = dg.materialize(
        [*_stand_ins(sources["strategy_evaluations"], sources["strategy_configs"],
                    sources["optimisation_history"]),
         *keep, *keep_checks],
        resources=_resources(tmp_path / "data"),
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    table = pl.read_parquet(tmp_path / "data" / "config_count.parquet")
    assert table["n_configs"].sum() == sources["strategy_configs"].height


def test_a_model_without_a_schema_entry_is_an_error(tmp_path):
    models_dir = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models_dir)
    (models_dir / "marts" / "config_count.sql").write_text(NEW_MODEL_SQL, encoding="utf-8")
    with pytest.raises(SchemaError, match=r"models without a schema entry \['config_count'\]"):
        build_report_assets(models_dir, SCHEMA_PATH)


def test_a_model_with_an_unknown_ref_is_an_error(tmp_path):
    models_dir = tmp_path / "models"
    shutil.copytree(MODELS_DIR, models_dir)
    (models_dir / "marts" / "config_count.sql").write_text(
        NEW_MODEL_SQL.replace("stg_strategy_configs", "stg_configs"), encoding="utf-8")
    schema_path = tmp_path / "schema.yml"
    schema_path.write_text(SCHEMA_PATH.read_text(encoding="utf-8") + NEW_MODEL_SCHEMA,
                           encoding="utf-8")
    with pytest.raises(UnknownRefError, match=r"model 'config_count'.*'stg_configs'"):
        build_report_assets(models_dir, schema_path)


def test_a_relationships_test_to_an_unknown_table_is_an_error(tmp_path):
    schema_path = tmp_path / "schema.yml"
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    schema_path.write_text(text.replace("to: ref('stg_strategy_configs')",
                                        "to: ref('configs_table')", 1), encoding="utf-8")
    with pytest.raises(SchemaError, match="refs unknown table 'configs_table'"):
        build_report_assets(MODELS_DIR, schema_path)

