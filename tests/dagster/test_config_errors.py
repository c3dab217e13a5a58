"""Bad run config: the error names the field and nothing is stored.

Dagster checks a run config's shape (unknown fields, wrong types) before a run exists:
``DagsterInvalidConfigError``, no run, no files. Value ranges (pydantic ``ge``/``le`` on
the Config classes) are checked up front by everything the project launches (``make
run``, the schedules, the chaining sensor: ``validate_run_config``), and again, for runs
launched by hand, when the step that owns the config starts, before it computes or
writes anything: the run fails with the field named, and the stored files are as they
were.
"""

from __future__ import annotations

import os
import subprocess
import sys
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

from dynalloc_dagster.assets.strategies import strategy_configs
from dynalloc_dagster.environment import resources_for
from dynalloc_dagster.partitions import config_partitions
from dynalloc_dagster.pipeline import (
    EVALUATIONS_JOB,
    QUARTERLY_INGEST_JOB,
    SCENARIOS_JOB,
    WEEKLY_INGEST_JOB,
    run_pipeline,
    stage_request,
)
from engine.validation import ConfigError


def _ops(asset: str, **config: object) -> dict:
    return {"ops": {asset: {"config": config}}}


@pytest.mark.parametrize(
    ("job_name", "run_config", "field"),
    [
        (SCENARIOS_JOB, _ops("scenario_paths", n_path=100), "n_path"),
        (SCENARIOS_JOB, _ops("scenario_paths", n_paths="many"), "n_paths"),
        (QUARTERLY_INGEST_JOB, _ops("strategy_configs", count="eight"), "count"),
        (EVALUATIONS_JOB, _ops("strategy_evaluations", target_volatility=0.1),
         "target_volatility"),
        (WEEKLY_INGEST_JOB, _ops("market_data", as_of=20261120), "as_of"),
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


def test_strategy_configs_count_zero_names_the_field(
    data_root: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [strategy_configs], instance=instance,
        resources=resources_for("local", data_root=str(data_root)),
        run_config=_ops("strategy_configs", count=0), raise_on_error=False,
    )
    assert not result.success
    text = failure_text(result)
    assert "StrategyConfigsConfig" in text
    assert "count" in text
    assert "greater than or equal to 1" in text
    assert not data_root.exists()
    assert instance.get_dynamic_partitions(config_partitions.name) == []


def test_strategy_configs_count_zero_in_the_quarterly_job_registers_nothing(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance
) -> None:
    """In a multi-asset job only the step owning the bad value stops; the steps before
    it (market data here) run, as Dagster checks value ranges at step start."""
    run_config = small_run_config()
    run_config["ops"]["strategy_configs"]["config"]["count"] = 0
    result = run_job(defs, QUARTERLY_INGEST_JOB, instance, run_config=run_config)

    assert not result.success
    assert "count" in failure_text(result)
    assert not (data_root / "strategy_configs.parquet").exists()
    assert instance.get_dynamic_partitions(config_partitions.name) == []


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
    ("field", "value"),
    [("target_vol", 2.0), ("target_vol", -0.1), ("max_drawdown", 1.5), ("min_sharpe", 11.0)],
)
def test_evaluation_objectives_out_of_range_name_the_field(
    defs: dg.Definitions, upstream: Upstream, instance: dg.DagsterInstance, field: str,
    value: float,
) -> None:
    before = snapshot(upstream.root)
    tags = stage_request(EVALUATIONS_JOB, instance, pipeline="manual").tags
    result = run_job(defs, EVALUATIONS_JOB, instance, tags=tags,
                     run_config=_ops("strategy_evaluations", **{field: value}))

    assert not result.success
    text = failure_text(result)
    assert "EvaluationConfig" in text
    assert field in text
    assert snapshot(upstream.root) == before
    assert not (upstream.root / "strategy_evaluations").exists()


def test_unparseable_as_of_fails_before_anything_is_written(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance
) -> None:
    result = run_job(defs, WEEKLY_INGEST_JOB, instance,
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
    """The control for the tests above: the same job with valid values succeeds."""
    result = run_job(defs, WEEKLY_INGEST_JOB, instance,
                     run_config=_ops("market_data", as_of=AS_OF))
    assert result.success, failure_text(result)
    assert (data_root / "market_regimes.parquet").exists()


# --- checked up front, before any run: make run, the schedules, the chaining sensor ------


@pytest.mark.parametrize(
    ("run_config", "message"),
    [
        (_ops("market_regimes", overrides={"crash": {"equity_vol": 0.5}}),
         r"ops\.market_regimes\.config: overrides: .*unknown scenario\(s\) crash; allowed: base"),
        (_ops("market_regimes", overrides={"bear": {"equity_vol": -0.1}}),
         r"equity_vol = -0\.1 is outside the allowed range"),
        (_ops("strategy_configs", count=0),
         r"ops\.strategy_configs\.config: count: Input should be greater than or equal to 1"),
        (_ops("strategy_evaluations", target_vol=2.0),
         r"ops\.strategy_evaluations\.config: InvestmentObjectives\.target_vol = 2\.0 is"
         r" outside the allowed range \[0, 1\]"),
        (_ops("scenario_paths", n_paths=0), r"ops\.scenario_paths\.config: n_paths"),
        (_ops("charts", directory="x"), r"ops\.charts: not a configurable asset"),
    ],
)
def test_pipeline_rejects_bad_values_before_any_run(
    defs: dg.Definitions, data_root: Path, instance: dg.DagsterInstance, run_config: dict,
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_pipeline(defs, instance, quarterly=True, run_config=run_config)
    assert instance.get_runs() == []
    assert not data_root.exists()


def test_pipeline_cli_rejects_a_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("ops:\n  strategy_configs:\n    config:\n      count: 0\n")
    env = os.environ | {"DAGSTER_HOME": str(tmp_path / "home"),
                        "DYNALLOC_DATA_ROOT": str(tmp_path / "data")}
    (tmp_path / "home").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "dynalloc_dagster.pipeline", "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2
    assert "ops.strategy_configs.config: count" in done.stderr
    assert not (tmp_path / "data").exists()
