"""Bad run config: the error names the field and nothing is stored.

A pipeline-wide run config has two sections: ``ops`` (the assets' Config classes) and
``resources`` (the objectives, the optimisation agent's settings, Bedrock). Everything the
project launches (``make run`` / ``run_pipeline``, the schedules, the chaining sensor:
``validate_run_config``) checks the whole config first, so a bad value, an unknown field
or an unreadable file fails before any run, naming the section, the asset or resource,
the field and its range.

For runs launched by hand Dagster's own checks still apply: the shape (unknown fields,
wrong types, enum values) before a run exists (``DagsterInvalidConfigError``: no run, no
files); value ranges when the owning step starts (asset config) or when the run
initialises its resources (objectives, agent), before anything is computed or written:
the run fails with the field named, and the stored files are as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster_test_support import (
    AS_OF,
    Upstream,
    failure_text,
    run_job,
    small_run_config,
    snapshot,
)

from dynalloc_dagster.assets import scenarios
from dynalloc_dagster.assets.strategies import strategy_configs
from dynalloc_dagster.environment import resources_for
from dynalloc_dagster.memory import MemoryLimit
from dynalloc_dagster.orchestration.cli import main
from dynalloc_dagster.orchestration.pipeline import job_run_config_from_names, run_pipeline
from dynalloc_dagster.orchestration.run_config import validate_run_config
from dynalloc_dagster.orchestration.stages import evaluation_range_tags, stage_request
from dynalloc_dagster.partitions import batch_partitions
from dynalloc_dagster.tags import (
    EVALUATIONS_JOB,
    INGEST_JOB,
    REPORTS_JOB,
    ROUND_JOB,
    SCENARIOS_JOB,
)
from engine.portfolio.examples import GLOBAL_SIX
from engine.validation import ConfigError


def _ops(asset: str, **config: object) -> dict:
    return {"ops": {asset: {"config": config}}}


def _resources(resource: str, **config: object) -> dict:
    return {"resources": {resource: {"config": config}}}


def _run_failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every error of a run, step failures and resource initialisation failures alike."""
    errors = [getattr(event.event_specific_data, "error", None) for event in result.all_events]
    return "\n".join(error.to_string() for error in errors if error is not None)


# --- Dagster's own checks at launch: shape, types, enum values --------------------------


@pytest.mark.parametrize(
    ("job_name", "run_config", "field"),
    [
        (SCENARIOS_JOB, _ops("scenario_paths", n_path=100), "n_path"),
        (SCENARIOS_JOB, _ops("scenario_paths", n_paths="many"), "n_paths"),
        (ROUND_JOB, _ops("strategy_configs", count=8), "count"),
        (ROUND_JOB, _ops("strategy_configs", round="first"), "round"),
        (ROUND_JOB, _resources("agent", max_config=3), "max_config"),
        (ROUND_JOB, _resources("agent", proposer="gpt"), "proposer"),
        (EVALUATIONS_JOB, _resources("objectives", target_volatility=0.1),
         "target_volatility"),
        (EVALUATIONS_JOB, _resources("objectives", max_drawdown="big"), "max_drawdown"),
        (REPORTS_JOB, _resources("bedrock", mode="cloud"), "mode"),
        (INGEST_JOB, _ops("market_data", as_of=20261120), "as_of"),
    ],
)
def test_malformed_config_is_rejected_before_the_run(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance, job_name: str,
    run_config: dict, field: str,
) -> None:
    job = defs.resolve_job_def(job_name)
    with pytest.raises(dg.DagsterInvalidConfigError, match=field):
        job.execute_in_process(instance=instance, run_config=run_config)
    assert instance.get_runs() == []
    assert not data_root.exists()


# --- ranges when the step (asset config) or the run's resources start --------------------


def test_strategy_configs_round_out_of_range_names_the_field(
    data_root: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [strategy_configs], instance=instance,
        resources=resources_for("local", data_root=str(data_root)),
        run_config=_ops("strategy_configs", round=-1), raise_on_error=False,
    )
    assert not result.success
    text = failure_text(result)
    assert "StrategyConfigsConfig" in text
    assert "round" in text
    assert "greater than or equal to 0" in text
    assert not data_root.exists()
    assert instance.get_dynamic_partitions(batch_partitions.name) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_configs", 0, "AgentSettings.max_configs = 0 is outside the allowed range"
         " [1, 100000]"),
        ("batch_size", 0, "AgentSettings.batch_size = 0 is outside the allowed range"),
        ("tolerance", -1.0, "AgentSettings.tolerance = -1.0 is outside the allowed range"
         " [0, 1]"),
    ],
)
def test_agent_out_of_range_fails_the_round_and_registers_nothing(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance, field: str,
    value: float, message: str,
) -> None:
    """The agent resource is initialised when the round's run starts: the run fails
    before strategy_configs proposes, stores or registers anything."""
    run_config = small_run_config()
    run_config["resources"]["agent"]["config"][field] = value
    result = run_job(defs, ROUND_JOB, instance, run_config=run_config)

    assert not result.success
    text = _run_failure_text(result)
    assert "OptimisationAgent" in text
    assert message in text
    assert result.get_asset_materialization_events() == []
    assert not data_root.exists()
    assert instance.get_dynamic_partitions(batch_partitions.name) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_paths", 0, "greater than or equal to 2"),
        ("horizon_years", 0, "greater than or equal to 1"),
        ("warmup_months", 121, "less than or equal to 120"),
        ("seed", -1, "greater than or equal to 0"),
    ],
)
def test_scenario_paths_out_of_range_names_the_field(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance, field: str,
    value: int, message: str,
) -> None:
    """In its own stage job the step fails at start; the paths stored by earlier runs
    are untouched."""
    before = snapshot(upstream.root)
    tags = stage_request(SCENARIOS_JOB, instance, pipeline="manual").tags
    result = run_job(defs, SCENARIOS_JOB, instance, tags=tags,
                     run_config=_ops("scenario_paths", **{field: value}))

    assert not result.success
    text = failure_text(result)
    assert "ScenarioPathsConfig" in text
    assert field in text
    assert message in text
    assert result.get_asset_materialization_events() == []
    assert snapshot(upstream.root) == before


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [("target_vol", 2.0, "[0, 1]"), ("target_vol", -0.1, "[0, 1]"),
     ("max_drawdown", 1.5, "(0, 1]"), ("assumed_tc_bps", 600.0, "[0, 500]")],
)
def test_objectives_out_of_range_fail_the_evaluations_run(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance, field: str,
    value: float, allowed: str,
) -> None:
    """The objectives resource is initialised when the evaluations' run starts: nothing
    is evaluated or stored."""
    before = snapshot(upstream.root)
    tags = evaluation_range_tags(upstream.batch)
    result = run_job(defs, EVALUATIONS_JOB, instance, tags=tags,
                     run_config=_resources("objectives", **{field: value}))

    assert not result.success
    text = _run_failure_text(result)
    assert "ObjectivesResource" in text
    assert f"InvestmentObjectives.{field} = {value} is outside the allowed range {allowed}" in text
    assert result.get_asset_materialization_events() == []
    assert snapshot(upstream.root) == before
    assert not (upstream.root / "strategy_evaluations").exists()


def test_unparseable_as_of_fails_before_anything_is_written(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance
) -> None:
    result = run_job(defs, INGEST_JOB, instance,
                     run_config=_ops("market_data", as_of="2026-13-01"))
    assert not result.success
    text = failure_text(result)
    assert "MarketDataConfig" in text
    assert "as_of must be an ISO date" in text
    assert "2026-13-01" in text
    assert not data_root.exists()


def test_good_config_of_the_same_shape_runs(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance
) -> None:
    """The control for the tests above: the same jobs with valid values succeed."""
    result = run_job(defs, INGEST_JOB, instance, run_config=_ops("market_data", as_of=AS_OF))
    assert result.success, failure_text(result)
    assert (data_root / "market_regimes.parquet").exists()

    result = run_job(defs, ROUND_JOB, instance, run_config=small_run_config())
    assert result.success, _run_failure_text(result)
    assert (data_root / "strategy_configs.parquet").exists()
    assert len(instance.get_dynamic_partitions(batch_partitions.name)) > 0


# --- checked up front, before any run: make run, the schedules, the chaining sensor ------


BAD_PIPELINE_CONFIGS = [
    (_resources("agent", max_configs=0),
     r"resources\.agent\.config: AgentSettings\.max_configs = 0 is outside the allowed"
     r" range \[1, 100000\]"),
    (_resources("agent", proposer="gpt"),
     r"resources\.agent\.config: proposer: Input should be 'tpe', 'lhs' or 'bedrock'"),
    (_resources("agent", max_config=3),
     r"resources\.agent\.config: unknown field\(s\) max_config; allowed: .*max_configs"),
    (_resources("objectives", max_drawdown=2),
     r"resources\.objectives\.config: InvestmentObjectives\.max_drawdown = 2\.0 is outside"
     r" the allowed range \(0, 1\]"),
    (_resources("objectives", target_vol=2.0),
     r"resources\.objectives\.config: InvestmentObjectives\.target_vol = 2\.0 is outside"
     r" the allowed range \[0, 1\]"),
    (_resources("bedrock", mode="cloud"),
     r"resources\.bedrock\.config: mode: Input should be 'offline' or 'bedrock'"),
    (_resources("io_manager", root="/elsewhere"),
     r"resources\.io_manager: not configurable; configurable: objectives, agent, bedrock"),
    (_ops("scenario_paths", n_path=100),
     r"ops\.scenario_paths\.config: unknown field\(s\) n_path; allowed: .*n_paths"),
    (_ops("scenario_paths", n_paths=0),
     r"ops\.scenario_paths\.config: n_paths: Input should be greater than or equal to 2"),
    (_ops("strategy_configs", count=8),
     r"ops\.strategy_configs\.config: unknown field\(s\) count; allowed: round"),
    (_ops("market_regimes", overrides={"crash": {"equity_vol": 0.5}}),
     r"ops\.market_regimes\.config: overrides: .*unknown scenario\(s\) crash; allowed: base"),
    (_ops("market_regimes", overrides={"bear": {"equity_vol": -0.1}}),
     r"equity_vol = -0\.1 is outside the allowed range"),
    (_ops("charts", directory="x"), r"ops\.charts: not configurable"),
    ({"jobs": {}}, r"unknown section\(s\) jobs; allowed: ops, resources"),
    # numbers written as strings: Dagster refuses them at launch, so the up-front check must
    # too (pydantic's lax mode turned "200" into 200 and the scenario stage failed after
    # the ingest stage had written)
    (_ops("scenario_paths", n_paths="200"),
     r"ops\.scenario_paths\.config: .*root:n_paths\. Value \"200\" .* expected type \"Int\""),
    (_resources("objectives", target_vol="0.1"),
     r"resources\.objectives\.config: .*target_vol\. Value \"0\.1\" .* \"Float\""),
    ({"loggers": {"console": {"config": {"log_level": "LOUD"}}}},
     r"loggers\.console\.config: log_level: 'LOUD' is not a log level; allowed: DEBUG"),
    ({"loggers": {"file": {"config": {}}}},
     r"loggers\.file: unknown logger; configurable: console"),
    ({"loggers": {"console": {"config": {"level": "INFO"}}}},
     r"loggers\.console\.config: .*level"),
]


@pytest.mark.parametrize(("run_config", "message"), BAD_PIPELINE_CONFIGS)
def test_pipeline_rejects_bad_values_before_any_run(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance, run_config: dict,
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_pipeline(defs, instance, run_config=run_config)
    assert instance.get_runs() == []
    assert not data_root.exists()


@pytest.mark.parametrize(("run_config", "message"), BAD_PIPELINE_CONFIGS[:4])
def test_stage_requests_refuse_bad_values(
    instance: dg.DagsterInstance, run_config: dict, message: str
) -> None:
    """What the schedules and the chaining sensor build runs with refuses them too."""
    with pytest.raises(ConfigError, match=message):
        stage_request(INGEST_JOB, instance, pipeline="weekly", run_config=run_config)


def _run_cli(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """``python -m dynalloc_dagster --config <config>``, a process of its own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = os.environ | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "dynalloc_dagster", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    """``python -m dynalloc_dagster --config <config>`` in this process: ``cli.main``, what
    ``__main__`` exits with (the alias-bomb test runs the real process, with a timeout);
    its exit code and output as a finished process's. The environment it sets is undone."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DYNALLOC_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", ""))  # main adds

    def run(config: Path) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        code = main(["--config", str(config)])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["python", "-m", "dynalloc_dagster"], code, out, err)

    return run


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resources:\n  agent:\n    config:\n      max_configs: 0\n",
         "error: run config resources.agent.config: AgentSettings.max_configs = 0 is outside"
         " the allowed range [1, 100000]"),
        ("resources:\n  objectives:\n    config:\n      max_drawdown: 2\n",
         "error: run config resources.objectives.config: InvestmentObjectives.max_drawdown ="
         " 2.0 is outside the allowed range (0, 1]"),
        ("ops:\n  scenario_paths:\n    config:\n      n_path: 100\n",
         "error: run config ops.scenario_paths.config: unknown field(s) n_path"),
        ("ops:\n  scenario_paths: {config: {n_paths: 10}\n", "error: {path}: not valid YAML"),
        ("- ops\n- resources\n",
         "error: {path}: the run config must be a mapping, got list"),
    ],
    ids=["agent_range", "objectives_range", "unknown_field", "malformed_yaml", "not_a_mapping"],
)
def test_pipeline_cli_rejects_a_bad_config_file(
    tmp_path: Path, cli: Callable[[Path], subprocess.CompletedProcess[str]], text: str,
    message: str,
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(text, encoding="utf-8")
    done = cli(config)

    assert done.returncode == 2, done.stderr[-3000:]
    assert message.format(path=config) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()
    assert not any((tmp_path / "home").iterdir())  # no run was stored


def _alias_bomb(levels: int = 9) -> str:
    """A run config whose ``loggers.console.config.name`` is ``levels`` nested lists, each
    ten aliases of the one before: 10**levels strings once expanded, a few lines as YAML."""
    lines = ["loggers:", "  console:", "    config:", "      log_level: INFO", "      name:",
             "        - &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"        - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_pipeline_cli_refuses_a_yaml_alias_bomb_quickly(tmp_path: Path) -> None:
    """10^9 strings once expanded (the run tag's JSON would be gigabytes): refused by the
    size budget while counting, well within the subprocess timeout."""
    config = tmp_path / "run.yaml"
    config.write_text(_alias_bomb(), encoding="utf-8")
    done = _run_cli(tmp_path, config)

    assert done.returncode == 2, done.stderr[-3000:]
    assert ("error: run config: more than 10000 values once YAML aliases are expanded"
            in done.stderr)
    assert not (tmp_path / "data").exists()
    assert not any((tmp_path / "home").iterdir())


def test_pipeline_cli_refuses_a_duplicate_key_naming_it_and_its_line(
    tmp_path: Path, cli: Callable[[Path], subprocess.CompletedProcess[str]]
) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("ops:\n  scenario_paths:\n    config:\n      n_paths: 200\n"
                      "      seed: 3\n      n_paths: 20\n", encoding="utf-8")
    done = cli(config)

    assert done.returncode == 2, done.stderr[-3000:]
    assert f"error: {config}: not valid YAML" in done.stderr
    assert "duplicate key 'n_paths' on line 6 (first on line 4)" in done.stderr
    assert not (tmp_path / "data").exists()


def test_the_loggers_section_sets_the_stage_runs_log_level() -> None:
    """A valid loggers section is used by every stage run, not replaced by the default."""
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    assert job_run_config_from_names(set(), set(), quiet)["loggers"] == quiet["loggers"]
    assert job_run_config_from_names(set(), set(), {})["loggers"] == {
        "console": {"config": {"log_level": "INFO"}}}


def test_paths_that_cannot_fit_in_memory_are_refused_with_the_estimate(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path
) -> None:
    """In range field by field (200,000 paths, 30 years), but 6 scenarios of such daily
    paths are hundreds of GiB: refused before any run, with the estimate, instead of a
    MemoryError minutes into the scenario stage."""
    run_config = {"ops": {"scenario_paths": {"config": {"n_paths": 200_000,
                                                        "horizon_years": 30}}}}
    with pytest.raises(ConfigError, match=r"n_paths = 200000 over horizon_years = 30 .*"
                       r"needs about \d+\.\d GiB .* use fewer paths or a shorter horizon"):
        run_pipeline(defs, instance, run_config=run_config)
    assert instance.get_runs() == []
    assert not data_root.exists()


def test_a_six_asset_portfolio_is_sized_by_its_own_arrays_not_the_two_asset_ones(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """global_six stores 11 daily arrays per path (6 levels, 3 variances, rate, cash),
    the two-asset study 5: under a limit between the two estimates, 1000 paths pass for
    two assets and are refused for six before any run, naming the field and the bytes."""
    two = scenarios.evaluation_memory_bytes(1000, 5, 24)
    six = scenarios.evaluation_memory_bytes(1000, 5, 24, GLOBAL_SIX)
    days = (24 + 60) * 21 + 1
    assert six - two == 6 * (11 - 5) * 1000 * days * 8
    limit = MemoryLimit(int((two + six) / 2 / scenarios.MEMORY_SHARE), "a test limit")
    monkeypatch.setattr(scenarios, "memory_limit", lambda: limit)
    paths = {"scenario_paths": {"config": {"n_paths": 1000}}}
    validate_run_config({"ops": paths})

    run_config = {"ops": {**paths, "market_data": {"config": {
        "portfolio": {"name": "global_six"}}}}}
    with pytest.raises(ConfigError) as refused:
        run_pipeline(defs, instance, run_config=run_config)
    message = str(refused.value)
    assert message.startswith("run config ops.scenario_paths.config: n_paths = 1000 ")
    assert f"({six:,} bytes: 6 scenarios of 11 daily arrays per path of the 6-asset" in message
    assert "portfolio from ops.market_data.config.portfolio" in message
    assert instance.get_runs() == []
    assert not data_root.exists()
