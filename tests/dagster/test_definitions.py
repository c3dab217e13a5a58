"""The full Definitions: loadable in every environment, described, and driven by the CLI.

Also the environment switches: ``DYNALLOC_ENV``, ``DYNALLOC_DATA_ROOT`` and
``DYNALLOC_EVALUATIONS_PER_RUN``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_test_support import AS_OF, REPO_ROOT

from dynalloc_dagster.assets.strategies import (
    EVALUATIONS_PER_RUN_ENV,
    evaluation_backfill_policy,
)
from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.environment import (
    ENVIRONMENTS,
    PROJECT_ROOT,
    S3_BUCKET_ENV,
    current_environment,
    resources_for,
)
from dynalloc_dagster.orchestration.jobs import STAGE_JOBS
from dynalloc_dagster.resources import ObjectivesResource, OptimisationAgent
from dynalloc_dagster.storage import LocalStorage, S3Storage
from dynalloc_dagster.storage.io_managers import PolarsParquetIOManager, ScenarioPathsIOManager
from dynalloc_dagster.tags import (
    EVALUATE_ROUND_JOB,
    EVALUATIONS_JOB,
    FULL_ROUND_JOB,
    HISTORY_JOB,
    INGEST_JOB,
    REPORTS_JOB,
    ROUND_JOB,
    SCENARIOS_JOB,
    STAGES,
    START_JOB,
)
from engine.objectives import InvestmentObjectives
from engine.optimisation.loop import AgentSettings

GROUPS = {"ingestion", "scenarios", "strategies", "reports", "live"}
MARKET_TABLES = ["market_data", "market_vol_surface", "market_yield_curve", "market_holdings"]
INGEST_ASSETS = [*MARKET_TABLES, "calibration", "market_regimes"]
STRATEGY_ASSETS = {"strategy_configs", "strategy_evaluations", "optimisation_history"}
SQL_MODELS = {"stg_strategy_evaluations", "stg_strategy_configs", "stg_optimisation_history",
              "int_scenario_best", "int_config_parameter_bands", "robustness_leaderboard",
              "parameter_sensitivity", "scenario_comparison", "constraint_compliance",
              "weight_window_interaction"}
REPORT_ASSETS = SQL_MODELS | {"cost_sensitivity", "charts", "bedrock_report", "report",
                              "recommended_allocation", "benchmark_evaluations",
                              "allocation_paths"}
LIVE_ASSETS = {"historical_backtest", "historical_backtest_paths", "todays_allocation",
               "market_regime"}
LINEAGE = [*INGEST_ASSETS, "scenario_paths", "strategy_configs", "strategy_evaluations",
           "optimisation_history", "robustness_leaderboard", "parameter_sensitivity",
           "scenario_comparison", "constraint_compliance", "weight_window_interaction",
           "cost_sensitivity", "charts", "bedrock_report", "report", "recommended_allocation"]
# what each stage job materializes (dynalloc_dagster.orchestration.stages chains them in this order)
STAGE_ASSETS = {
    START_JOB: {*INGEST_ASSETS, "scenario_paths"},
    INGEST_JOB: set(INGEST_ASSETS),
    SCENARIOS_JOB: {"scenario_paths"},
    ROUND_JOB: {"strategy_configs"},
    EVALUATIONS_JOB: {"strategy_evaluations"},
    HISTORY_JOB: {"optimisation_history"},
    EVALUATE_ROUND_JOB: {"strategy_evaluations", "optimisation_history"},
    FULL_ROUND_JOB: {"strategy_configs", "strategy_evaluations", "optimisation_history"},
    REPORTS_JOB: REPORT_ASSETS | LIVE_ASSETS,
}


@pytest.fixture(scope="module")
def full_defs(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    return build_definitions("local", data_root=str(tmp_path_factory.mktemp("defs_data")))


def _specs(defs: dg.Definitions) -> dict[str, dg.AssetSpec]:
    return {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_definitions_load_in_every_environment(
    environment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNALLOC_ENV", environment)
    assert current_environment() == environment
    defs = build_definitions(data_root=str(tmp_path))

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} >= set(LINEAGE)
    assert [job.name for job in STAGE_JOBS] == list(STAGES)
    for name in STAGES:
        assert defs.resolve_job_def(name).name == name
    assert {s.name for s in defs.schedules} == {"weekly_refresh", "quarterly_reoptimisation"}
    reaper = {"ec2_instance_reaper"} if environment == "aws" else set()
    assert {s.name for s in defs.sensors} == {"pipeline_next_stage",
                                              "regime_shift_reoptimisation", *reaper}
    assert set(defs.resources) >= {"io_manager", "paths_io_manager", "market_source",
                                   "artifacts", "objectives", "agent", "bedrock"}
    # the environment chose the storage: a local folder, or S3 named by the environment
    io_manager, paths, artifacts = (defs.resources[k] for k in (
        "io_manager", "paths_io_manager", "artifacts"))
    if environment == "local":
        assert io_manager.root == paths.root == str(tmp_path)
        assert isinstance(artifacts.storage, LocalStorage)
        assert artifacts.storage.root == str(tmp_path)
    else:
        assert isinstance(io_manager.storage, S3Storage)
        assert paths.storage is io_manager.storage is artifacts.storage
        assert io_manager.storage.bucket == dg.EnvVar(S3_BUCKET_ENV)


def test_the_module_level_defs_is_what_dagster_loads() -> None:
    from dynalloc_dagster import definitions

    assert isinstance(definitions.defs, dg.Definitions)
    workspace = (REPO_ROOT / "workspace.yaml").read_text()
    assert "module_name: dynalloc_dagster.definitions" in workspace


def test_asset_groups(full_defs: dg.Definitions) -> None:
    specs = _specs(full_defs)
    assert {spec.group_name for spec in specs.values()} == GROUPS

    def group(name: str) -> set[str]:
        return {asset for asset, spec in specs.items() if spec.group_name == name}

    assert group("ingestion") == {*MARKET_TABLES, "calibration"}
    assert group("scenarios") == {"market_regimes", "scenario_paths"}
    assert group("strategies") == STRATEGY_ASSETS
    assert group("reports") == REPORT_ASSETS
    assert group("live") == LIVE_ASSETS


def test_every_asset_is_described_owned_and_versioned(full_defs: dg.Definitions) -> None:
    for name, spec in _specs(full_defs).items():
        assert spec.description and spec.description.strip(), name
        assert spec.owners, name
        assert spec.code_version, name


def test_every_asset_check_is_described(full_defs: dg.Definitions) -> None:
    graph = full_defs.resolve_asset_graph()
    check_keys = graph.asset_check_keys
    assert len(check_keys) > 10
    for key in check_keys:
        assert graph.get_check_spec(key).description, key.to_user_string()
    names = {key.to_user_string() for key in check_keys}
    assert {"bedrock_report:narrative_grounding", "strategy_evaluations:evaluation_completeness",
            "recommended_allocation:recommended_objectives_compliance",
            "market_data:market_data_sanity"} <= names


def test_lineage(full_defs: dg.Definitions) -> None:
    graph = full_defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    def ancestors(name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for parent in parents(todo.pop()) - seen:
                seen.add(parent)
                todo.append(parent)
        return seen

    assert parents("calibration") == {"market_data", "market_vol_surface", "market_yield_curve"}
    assert parents("market_regimes") == {"calibration"}
    assert parents("scenario_paths") == {"market_regimes"}
    # the agent's round has no graph parent: it reads the previous history from storage
    assert parents("strategy_configs") == set()
    assert parents("strategy_evaluations") == {"scenario_paths", "strategy_configs"}
    assert parents("optimisation_history") == {"strategy_configs", "strategy_evaluations"}
    assert parents("stg_optimisation_history") == {"optimisation_history"}
    assert "optimisation_history" in ancestors("robustness_leaderboard")
    for sql_model in ("parameter_sensitivity", "scenario_comparison", "constraint_compliance",
                      "weight_window_interaction"):
        assert "strategy_evaluations" in ancestors(sql_model), sql_model
    assert parents("cost_sensitivity") >= {"robustness_leaderboard", "scenario_paths"}
    assert parents("recommended_allocation") >= {"robustness_leaderboard", "market_data"}
    assert parents("charts") >= {"robustness_leaderboard", "optimisation_history",
                                 "cost_sensitivity"}
    assert parents("bedrock_report") >= {"robustness_leaderboard", "scenario_comparison",
                                         "parameter_sensitivity", "constraint_compliance",
                                         "optimisation_history", "recommended_allocation"}
    assert parents("report") >= {"charts", "bedrock_report", "recommended_allocation"}
    # the CSV a portfolio system trades from is written only once the report succeeded
    assert parents("todays_allocation") == {"market_data", "market_holdings",
                                            "recommended_allocation", "report"}
    assert parents("historical_backtest") >= {"market_data", "robustness_leaderboard"}
    # the whole chain, end to end (holdings feed today's trades, not the report)
    assert set(LINEAGE) - {"report", "market_holdings"} <= ancestors("report")


def test_stage_jobs_select_their_stage(full_defs: dg.Definitions) -> None:
    for name, assets in STAGE_ASSETS.items():
        selected = full_defs.resolve_job_def(name).asset_layer.selected_asset_keys
        assert {key.to_user_string() for key in selected} == assets, name
        assert full_defs.resolve_job_def(name).description, name


def test_schedules_start_the_chain_at_ingest(full_defs: dg.Definitions) -> None:
    assert {s.name: s.job_name for s in full_defs.schedules} == {
        "weekly_refresh": START_JOB, "quarterly_reoptimisation": START_JOB}
    sensors = {s.name: s.default_status for s in full_defs.sensors}
    assert sensors == {"pipeline_next_stage": dg.DefaultSensorStatus.RUNNING,
                       "regime_shift_reoptimisation": dg.DefaultSensorStatus.STOPPED}


def test_resources_default_to_the_engines_settings(tmp_path: Path) -> None:
    resources = resources_for("local", data_root=str(tmp_path))
    assert isinstance(resources["objectives"], ObjectivesResource)
    assert resources["objectives"].objectives() == InvestmentObjectives()
    assert isinstance(resources["agent"], OptimisationAgent)
    assert resources["agent"].settings() == AgentSettings()
    assert isinstance(resources["bedrock"], BedrockResource)
    assert resources["bedrock"].mode == "offline"  # no AWS unless asked for
    assert resources["artifacts"].root == str(tmp_path / "artifacts")


def test_bogus_environment_is_rejected_naming_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DYNALLOC_ENV", "bogus")
    allowed = ", ".join(ENVIRONMENTS)
    with pytest.raises(ValueError, match=f"DYNALLOC_ENV = 'bogus' is not one of {allowed}"):
        current_environment()
    with pytest.raises(ValueError, match="bogus"):
        build_definitions(data_root=str(tmp_path))


def test_unknown_environment_has_no_resources() -> None:
    with pytest.raises(ValueError, match="unknown environment 'staging'"):
        resources_for("staging")  # type: ignore[arg-type]


def test_local_is_the_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYNALLOC_ENV", raising=False)
    assert current_environment() == "local"


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DYNALLOC_DATA_ROOT", raising=False)
    default = resources_for("local")
    assert isinstance(default["io_manager"], PolarsParquetIOManager)
    assert isinstance(default["paths_io_manager"], ScenarioPathsIOManager)
    assert default["io_manager"].root == str(PROJECT_ROOT / "data")

    monkeypatch.setenv("DYNALLOC_DATA_ROOT", str(tmp_path / "from_env"))
    from_env = resources_for("local")
    assert from_env["io_manager"].root == from_env["paths_io_manager"].root == str(
        tmp_path / "from_env")

    explicit = resources_for("local", data_root=str(tmp_path / "explicit"))
    assert explicit["io_manager"].root == str(tmp_path / "explicit")


def test_evaluations_per_run_unset_is_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVALUATIONS_PER_RUN_ENV, raising=False)
    assert evaluation_backfill_policy() == dg.BackfillPolicy.single_run()


def test_evaluations_per_run_number_is_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVALUATIONS_PER_RUN_ENV, "100")
    policy = evaluation_backfill_policy()
    assert policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=100)
    assert policy.max_partitions_per_run == 100


@pytest.mark.parametrize("value", ["x", "0", "-5", "1.5", " 10"])
def test_evaluations_per_run_must_be_a_positive_integer(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(EVALUATIONS_PER_RUN_ENV, value)
    with pytest.raises(ValueError, match=f"{EVALUATIONS_PER_RUN_ENV} = '{value}' must be a"
                       " positive integer"):
        evaluation_backfill_policy()


def _subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DYNALLOC_ENV", "DYNALLOC_DATA_ROOT", EVALUATIONS_PER_RUN_ENV,
                        "DAGSTER_HOME")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env | extra


@pytest.mark.slow
def test_evaluations_per_run_reaches_the_asset_at_import() -> None:
    probe = (
        "import json; from dynalloc_dagster.definitions import defs; "
        "spec = defs.resolve_assets_def('strategy_evaluations').backfill_policy; "
        "print(json.dumps([spec.policy_type.value, spec.max_partitions_per_run]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
        env=_subprocess_env(**{EVALUATIONS_PER_RUN_ENV: "100"}), cwd=REPO_ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["MULTI_RUN", 100]


@pytest.mark.slow
def test_cli_materializes_the_ingest_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data_root = tmp_path / "data"
    run_config = {"ops": {"market_data": {"config": {"as_of": AS_OF}}}}

    done = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize",
         "-m", "dynalloc_dagster.definitions", "-d", str(REPO_ROOT),
         "--select", ",".join(INGEST_ASSETS), "--config-json", json.dumps(run_config)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
        env=_subprocess_env(DAGSTER_HOME=str(home), DYNALLOC_DATA_ROOT=str(data_root)),
    )

    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert sorted(p.name for p in data_root.iterdir() if not p.name.startswith(".")) == sorted(
        f"{name}.parquet" for name in INGEST_ASSETS)
    assert pl.read_parquet(data_root / "market_data.parquet")["date"].max().isoformat() <= AS_OF
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        for name in INGEST_ASSETS:
            assert instance.get_latest_materialization_event(dg.AssetKey(name)) is not None


def _imported_after(*statements: str) -> list[str]:
    """What a new process prints running ``statements`` (outside the aws environment)
    after importing ``dynalloc_dagster.definitions as d`` and ``sys``."""
    environment = {k: v for k, v in os.environ.items() if k != "DYNALLOC_ENV"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "; ".join(("import sys, dynalloc_dagster.definitions as d", *statements))],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_a_local_process_imports_the_s3_client_and_scipy_stats_only_when_used() -> None:
    """dagster-aws takes over half a second to import in every run worker and code server,
    and only the aws environment's S3 storage needs it; scipy.stats (Latin hypercube
    sampling) adds about 0.4 s, and only the round that samples configs uses it."""
    assert _imported_after(
        "d.build_definitions('local')",
        "print('dagster_aws' in sys.modules, 'scipy.stats' in sys.modules)",
        "from engine.optimisation.sampling import sample_configs",
        "sample_configs(2, 0)",
        "print('scipy.stats' in sys.modules)") == ["False", "False", "True"]


def test_the_aws_definitions_import_the_s3_client() -> None:
    assert _imported_after(
        "d.build_definitions('aws')", "from dynalloc_dagster.storage import S3Storage",
        "print('dagster_aws' in sys.modules)") == ["True"]
