"""The pipeline end to end, the schedules that start it and the sensor that chains it.

One module-scoped quarterly pipeline (four stage runs, small config) feeds most tests;
what they inspect is recorded right after it ran, so the later tests that run more
stages on the same instance cannot change it.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import json
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_test_support import (
    AS_OF,
    BATCH_SIZE,
    MAX_CONFIGS,
    N_CONFIGS,
    Upstream,
    failure_text,
    run_job,
    small_run_config,
)

from dynalloc_dagster.assets.reporting import CHART_CAPTIONS
from dynalloc_dagster.committee import plots
from dynalloc_dagster.committee.pdf import chart_page, pdf_of_pages
from dynalloc_dagster.definitions import build_definitions
from dynalloc_dagster.orchestration.pipeline import InProcessLauncher, job_run_config, run_pipeline
from dynalloc_dagster.orchestration.schedules import quarterly_reoptimisation, weekly_refresh
from dynalloc_dagster.orchestration.sensors import pipeline_next_stage
from dynalloc_dagster.orchestration.stages import (
    RANGE_END,
    RANGE_START,
    next_stage_request,
    stage_request,
)
from dynalloc_dagster.partitions import SCENARIOS, batch_partitions, next_batch_key
from dynalloc_dagster.tags import (
    EVALUATE_ROUND_JOB,
    EVALUATIONS_JOB,
    FULL_ROUND_JOB,
    HISTORY_JOB,
    INGEST_JOB,
    PIPELINE_TAG,
    REPORTS_JOB,
    ROUND_JOB,
    ROUND_RUN_TAG,
    ROUND_TAG,
    RUN_CONFIG_TAG,
    SPLIT_TAG,
    START_JOB,
)
from engine.validation import ConfigError

ROUNDS = 3  # 8 configs, then 4 and 4: max_configs = 16
# ingest and the scenario paths in one run; round 0 in two (its batch key is known once its
# configs are: the configs, then evaluations and history), each later round in one
STAGES = [START_JOB, ROUND_JOB, EVALUATE_ROUND_JOB, *[FULL_ROUND_JOB] * (ROUNDS - 1),
          REPORTS_JOB]
EVALUATING_JOBS = (EVALUATIONS_JOB, EVALUATE_ROUND_JOB, FULL_ROUND_JOB)
TICK = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)
WARN_ONLY = {"recommended_allocation:recommended_objectives_compliance",
             "bedrock_report:narrative_grounding"}


@dataclass
class PipelineRun:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    data_root: Path
    artifacts: Path
    runs: list[dg.DagsterRun]
    checks: dict[str, dict[str, tuple[bool, dg.AssetCheckSeverity]]]  # job -> check -> result
    config_ids: list[str]
    batches: list[str]  # the registered config batches, one per round
    files: dict[str, bytes]  # artifacts by name
    leaderboard: pl.DataFrame
    recommended: pl.DataFrame
    history: pl.DataFrame


def _check_evaluations(
    instance: dg.DagsterInstance, run_id: str
) -> dict[str, tuple[bool, dg.AssetCheckSeverity]]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000).records
    results = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        results[evaluation.asset_check_key.to_user_string()] = (evaluation.passed,
                                                                evaluation.severity)
    return results


def _step_failures(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    return "\n".join(r.event_log_entry.dagster_event.step_failure_data.error.to_string()
                     for r in records)


def _run_quarter(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path, artifacts: Path,
    seed: int,
) -> PipelineRun:
    runs = run_pipeline(defs, instance, pipeline="quarterly",
                        run_config=small_run_config(seed=seed))
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS, _step_failures(instance, run)
    return PipelineRun(
        defs=defs, instance=instance, data_root=data_root, artifacts=artifacts, runs=runs,
        checks={run.job_name: _check_evaluations(instance, run.run_id) for run in runs},
        config_ids=pl.read_parquet(data_root / "strategy_configs.parquet")["config_id"].to_list(),
        batches=list(instance.get_dynamic_partitions(batch_partitions.name)),
        files={p.name: p.read_bytes() for p in sorted(artifacts.iterdir())},
        leaderboard=pl.read_parquet(data_root / "robustness_leaderboard.parquet"),
        recommended=pl.read_parquet(data_root / "recommended_allocation.parquet"),
        history=pl.read_parquet(data_root / "optimisation_history.parquet"),
    )


class _ReportsReached(Exception):
    """The loop is over: the pipeline asks for its reports stage."""


@dataclass
class LoopRun:
    runs: list[dg.DagsterRun]
    history: pl.DataFrame


def _run_loop(
    defs: dg.Definitions, instance: dg.DagsterInstance, data_root: Path, seed: int,
) -> LoopRun:
    """The quarterly pipeline up to the reports stage, which is asked for but not run
    (for the tests that compare only a loop's history with the first quarter's; the
    reports of a later quarter on the same instance are the next quarter's test): its
    stage runs, all successful, and the optimisation history."""
    runs: list[dg.DagsterRun] = []
    in_process = InProcessLauncher(defs, instance)

    def launch(request: dg.RunRequest) -> dg.DagsterRun:
        if request.job_name == REPORTS_JOB:
            raise _ReportsReached
        runs.append(in_process(request))
        return runs[-1]

    reached = False
    try:
        run_pipeline(defs, instance, pipeline="quarterly",
                     run_config=small_run_config(seed=seed), launcher=launch)
    except _ReportsReached:
        reached = True
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS, _step_failures(instance, run)
    assert reached, [run.job_name for run in runs]
    return LoopRun(runs, pl.read_parquet(data_root / "optimisation_history.parquet"))


@pytest.fixture(scope="module")
def pipeline_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.DagsterInstance]:
    home = tmp_path_factory.mktemp("pipeline_home")
    with dg.instance_for_test(temp_dir=str(home)) as module_instance:
        yield module_instance


@pytest.fixture(scope="module")
def quarter(
    tmp_path_factory: pytest.TempPathFactory, pipeline_instance: dg.DagsterInstance
) -> PipelineRun:
    """The quarterly pipeline once, as ``run_pipeline`` (``make run``) runs it."""
    folder = tmp_path_factory.mktemp("pipeline")
    data_root = folder / "data"
    artifacts = data_root / "artifacts"
    defs = build_definitions(data_root=str(data_root))
    return _run_quarter(defs, pipeline_instance, data_root, artifacts, seed=0)


# --- the pipeline ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_stages_and_rounds_run_in_order_and_succeed(quarter: PipelineRun) -> None:
    assert [run.job_name for run in quarter.runs] == STAGES
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in quarter.runs)
    assert all(run.tags[PIPELINE_TAG] == "quarterly" for run in quarter.runs)
    rounds = [run.tags.get(ROUND_TAG) for run in quarter.runs
              if run.job_name in (ROUND_JOB, FULL_ROUND_JOB)]
    assert rounds == ["0", "1", "2"]
    configs = {json.dumps(json.loads(run.tags[RUN_CONFIG_TAG]), sort_keys=True)
               for run in quarter.runs}
    assert len(configs) == 1


@pytest.mark.slow
def test_the_loop_stops_at_max_configs_and_records_it(quarter: PipelineRun) -> None:
    history = quarter.history
    assert history.height == MAX_CONFIGS == len(quarter.config_ids)
    assert history["evaluation_index"].to_list() == list(range(1, MAX_CONFIGS + 1))
    assert history["round"].to_list() == [0] * N_CONFIGS + [1] * BATCH_SIZE + [2] * BATCH_SIZE
    assert set(history.filter(pl.col("round") == 0)["proposer"]) == {"lhs"}
    assert set(history.filter(pl.col("round") > 0)["proposer"]) == {"tpe", "trust_region"}
    assert set(history["stop_reason"]) == {"max_configs"}
    assert history["config_id"].to_list() == quarter.config_ids
    assert history["best_objective_so_far"].to_list() == list(
        itertools.accumulate(history["objective"].to_list(), max))


@pytest.mark.slow
def test_each_round_is_evaluated_in_one_run(quarter: PipelineRun) -> None:
    (scenarios_run,) = [run for run in quarter.runs if run.job_name == START_JOB]
    assert (scenarios_run.tags[RANGE_START], scenarios_run.tags[RANGE_END]) == (
        SCENARIOS[0], SCENARIOS[-1])
    history = quarter.history
    evaluation_runs = [run for run in quarter.runs if run.job_name in EVALUATING_JOBS]
    assert [run.tags[ROUND_TAG] for run in evaluation_runs] == ["0", "1", "2"]
    assert len(quarter.batches) == ROUNDS
    # every key of the loop ends with the digest of round 0's batch (partitions.next_batch_key)
    assert len({batch.split("-")[1] for batch in quarter.batches}) == 1
    for run, batch in zip(evaluation_runs, quarter.batches, strict=True):
        assert batch.startswith(f"r{int(run.tags[ROUND_TAG]):03d}-")
        assert (run.tags[RANGE_START], run.tags[RANGE_END]) == (
            f"{batch}|{SCENARIOS[0]}", f"{batch}|{SCENARIOS[-1]}")
        materialized = [
            record for record in quarter.instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                limit=10_000).records
            if record.event_log_entry.asset_materialization.asset_key.path == [
                "strategy_evaluations"]]
        assert len(materialized) == len(SCENARIOS)
        for record in materialized:  # each key's metadata is its own, not the run's
            event = record.event_log_entry.asset_materialization
            scenario = event.partition.split("|")[-1]
            rows = pl.read_parquet(quarter.data_root / "strategy_evaluations"
                                   / f"batch={batch}" / f"scenario={scenario}.parquet")
            assert event.metadata["best_sharpe_mean"].value == pytest.approx(
                rows["sharpe_mean"].max(), rel=1e-12)
            assert event.metadata["dagster/row_count"].value == rows.height
            assert len(event.metadata["dagster/column_schema"].value.columns) == rows.width
        for scenario in SCENARIOS:
            rows = pl.read_parquet(quarter.data_root / "strategy_evaluations"
                                   / f"batch={batch}" / f"scenario={scenario}.parquet")
            expected = history.filter(pl.col("round") == int(run.tags[ROUND_TAG]))
            assert rows["config_id"].to_list() == expected["config_id"].to_list()
    stored = list((quarter.data_root / "strategy_evaluations").rglob("*.parquet"))
    assert len(stored) == ROUNDS * len(SCENARIOS)
    assert sorted(p.stem for p in (quarter.data_root / "scenario_paths").iterdir()) == sorted(
        SCENARIOS)


@pytest.mark.slow
def test_every_asset_check_passes_but_the_warning(quarter: PipelineRun) -> None:
    all_checks = {name: result for checks in quarter.checks.values()
                  for name, result in checks.items()}
    assert "market_data:market_data_sanity" in all_checks
    assert "scenario_paths:discounted_martingale" in all_checks
    assert "scenario_paths:realized_vol_matches_regime" in all_checks
    assert "strategy_evaluations:evaluation_completeness" in all_checks
    assert WARN_ONLY <= set(all_checks)
    assert any(name.startswith("robustness_leaderboard:") for name in all_checks)
    failed = {name for name, (passed, _) in all_checks.items() if not passed}
    assert failed <= WARN_ONLY
    assert all(all_checks[name][1] == dg.AssetCheckSeverity.WARN for name in WARN_ONLY)
    assert all_checks["bedrock_report:narrative_grounding"][0]


@pytest.mark.slow
def test_report_and_charts_are_written(quarter: PipelineRun) -> None:
    files = quarter.files
    charts = {f"{name}.png" for name in CHART_CAPTIONS}
    assert {"report.md", "report.pdf", "charts.pdf", *charts} <= set(files)
    for name in charts:
        assert files[name].startswith(b"\x89PNG\r\n\x1a\n"), name
        width = int.from_bytes(files[name][16:20], "big")  # IHDR's first field
        assert width <= plots.WIDTH * plots.PNG_DPI, (name, width)  # the UI dialog's width
    assert files["charts.pdf"] == pdf_of_pages(chart_page(files[f"{name}.png"])
                                               for name in CHART_CAPTIONS)
    assert files["report.pdf"].startswith(b"%PDF")
    report = files["report.md"].decode("utf-8")
    best = quarter.leaderboard.sort("rank")["config_id"][0]
    equity = quarter.recommended["equity_weight_today"][0]
    assert report.startswith("# dynalloc: volatility-targeting review\n\n*As of ")
    decision = report.index("## Decision")
    assert decision < report.index("## Data, run config and code version") < report.index(
        "## Narrative")
    assert f"(config `{best}`)" in report
    assert f"equity {equity:.1%}, government bonds {1 - equity:.1%}" in report
    assert "this is the first recommendation recorded on this Dagster instance" in report
    assert "synthetic market data" in report[:report.index("## Narrative")]
    assert f"{MAX_CONFIGS} configs in {ROUNDS} rounds" in report
    assert "stopped: max_configs" in report
    assert "Written by offline (deterministic, written without Bedrock)" in report
    assert "n_paths: 50" in report  # the run config of the pipeline
    for chart in CHART_CAPTIONS:
        assert f"![{chart}]({chart}.png)" in report


@pytest.mark.slow
def test_recommended_allocation_is_the_top_ranked_config(quarter: PipelineRun) -> None:
    (row,) = quarter.recommended.iter_rows(named=True)
    assert row["config_id"] == quarter.leaderboard.sort("rank")["config_id"][0]
    assert row["config_id"] in quarter.config_ids
    assert 0.0 <= row["equity_weight_today"] <= 1.0
    assert row["equity_weight_today"] + row["defensive_weight_today"] == pytest.approx(
        1.0, abs=1e-12)
    assert row["as_of"] <= dt.date.fromisoformat(AS_OF)


def test_run_pipeline_rejects_a_bad_config_before_any_run(
    data_root: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(data_root=str(data_root))
    bad = small_run_config()
    bad["ops"]["scenario_paths"]["config"]["n_paths"] = 0

    with pytest.raises(ConfigError, match=r"ops\.scenario_paths\.config: n_paths"):
        run_pipeline(defs, instance, run_config=bad)

    assert instance.get_runs() == []
    assert not data_root.exists() or not any(data_root.iterdir())


def test_run_pipeline_stops_at_the_first_failure(
    data_root: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr("dynalloc_dagster.assets.scenarios.simulate_scenario", fail)
    defs = build_definitions(data_root=str(data_root))

    runs = run_pipeline(defs, instance, run_config=small_run_config())

    assert [run.job_name for run in runs] == [START_JOB]
    assert [run.status for run in runs] == [dg.DagsterRunStatus.FAILURE]
    assert not (data_root / "scenario_paths").exists()


def test_evaluation_stage_needs_the_round_configs(instance: dg.DagsterInstance) -> None:
    with pytest.raises(ValueError, match="needs the batch of configs to evaluate"):
        stage_request(EVALUATIONS_JOB, instance, pipeline="weekly", round_index=0)
    with pytest.raises(ValueError, match="needs the batch of configs to evaluate"):
        stage_request(FULL_ROUND_JOB, instance, pipeline="weekly", round_index=1)


def test_round_zero_is_evaluated_and_scored_in_one_run_unless_split(
    defs: dg.Definitions, instance: dg.DagsterInstance, upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = stage_request(ROUND_JOB, instance, pipeline="manual", round_index=0,
                            run_config=small_run_config())
    result = run_job(defs, ROUND_JOB, instance, run_config=request.run_config,
                     tags=request.tags)
    assert result.success, failure_text(result)

    (whole,) = next_stage_request(result.dagster_run, instance)
    assert whole.job_name == EVALUATE_ROUND_JOB
    assert (whole.tags[RANGE_START], whole.tags[RANGE_END], whole.tags[ROUND_TAG]) == (
        f"{upstream.batch}|{SCENARIOS[0]}", f"{upstream.batch}|{SCENARIOS[-1]}", "0")
    monkeypatch.setenv("DYNALLOC_EVALUATIONS_PER_RUN", "4")
    split = next_stage_request(result.dagster_run, instance)
    assert [r.job_name for r in split] == [EVALUATIONS_JOB, EVALUATIONS_JOB]
    assert {r.tags[SPLIT_TAG] for r in split} == {"2"}


def test_a_later_round_is_requested_with_its_batch_registered(
    instance: dg.DagsterInstance,
) -> None:
    batch = next_batch_key("r000-1a2b3c4d")
    assert (batch, next_batch_key(batch)) == ("r001-1a2b3c4d", "r002-1a2b3c4d")

    request = stage_request(FULL_ROUND_JOB, instance, pipeline="weekly", round_index=1,
                            batch=batch, run_config=small_run_config())

    assert instance.get_dynamic_partitions(batch_partitions.name) == [batch]
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
        f"{batch}|{SCENARIOS[0]}", f"{batch}|{SCENARIOS[-1]}")
    assert request.run_config["ops"]["strategy_configs"]["config"] == {"round": 1}


@pytest.mark.parametrize("batch", ["r001", "round1-1a2b3c4d", "r001-1a2b", "rx01-1a2b3c4d"])
def test_next_batch_key_refuses_what_is_not_a_batch_key(batch: str) -> None:
    with pytest.raises(ValueError, match="is not a config batch key"):
        next_batch_key(batch)


# --- schedules ---------------------------------------------------------------------------


def test_cron_schedules() -> None:
    assert weekly_refresh.cron_schedule == "0 6 * * 1"  # Mondays 06:00
    assert quarterly_reoptimisation.cron_schedule == "0 6 1 1,4,7,10 *"  # Jan/Apr/Jul/Oct 1st
    assert weekly_refresh.execution_timezone == "UTC"
    assert quarterly_reoptimisation.execution_timezone == "UTC"
    assert weekly_refresh.job_name == quarterly_reoptimisation.job_name == START_JOB


def test_weekly_refresh_request(instance: dg.DagsterInstance) -> None:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=TICK)
    request = weekly_refresh(context)

    assert isinstance(request, dg.RunRequest)
    assert request.job_name == START_JOB
    assert request.run_key == "weekly-2026-11-23"
    config = {"ops": {"market_data": {"config": {"as_of": "2026-11-23"}}}}
    assert request.run_config == config
    assert request.tags == {PIPELINE_TAG: "weekly",
                            RUN_CONFIG_TAG: json.dumps(config, sort_keys=True),
                            RANGE_START: SCENARIOS[0], RANGE_END: SCENARIOS[-1]}


def test_quarterly_reoptimisation_request(instance: dg.DagsterInstance) -> None:
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=TICK)
    request = quarterly_reoptimisation(context)

    assert isinstance(request, dg.RunRequest)
    assert request.job_name == START_JOB
    assert request.run_key == "quarterly-2026-11-23"
    assert request.tags[PIPELINE_TAG] == "quarterly"
    config = {
        "ops": {"market_data": {"config": {"as_of": "2026-11-23"}}},
        "resources": {"agent": {"config": {"seed": 20261123}}},
    }
    assert request.run_config == config
    assert json.loads(request.tags[RUN_CONFIG_TAG]) == config


@pytest.mark.parametrize("schedule", [weekly_refresh, quarterly_reoptimisation],
                         ids=["weekly", "quarterly"])
def test_scheduled_request_runs(
    schedule: dg.ScheduleDefinition, data_root: Path, instance: dg.DagsterInstance
) -> None:
    """The run a schedule asks for executes as requested (its config is valid for its
    job; the test's scenario paths are small), and the run carries the pipeline tag the
    sensor chains on: it is the pipeline's first run, the scenario paths included."""
    defs = build_definitions(data_root=str(data_root))
    request = schedule(dg.build_schedule_context(instance=instance,
                                                 scheduled_execution_time=TICK))
    run_config = {**request.run_config, "ops": {
        **request.run_config["ops"],
        "scenario_paths": small_run_config()["ops"]["scenario_paths"]}}
    result = defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, run_config=job_run_config(
            defs.resolve_job_def(request.job_name), run_config),
        tags=request.tags, raise_on_error=False,
    )

    assert result.success, failure_text(result)
    assert result.dagster_run.tags[PIPELINE_TAG] == request.tags[PIPELINE_TAG]
    materialized = {e.asset_key.to_user_string(): e.materialization.metadata
                    for e in result.get_asset_materialization_events()}
    assert materialized["market_data"]["as_of"].value == "2026-11-23"
    assert "strategy_configs" not in materialized
    assert sum(e.asset_key.path == ["scenario_paths"]
               for e in result.get_asset_materialization_events()) == len(SCENARIOS)
    (following,) = next_stage_request(result.dagster_run, instance)  # round 0's configs
    assert (following.job_name, following.tags[ROUND_TAG]) == (ROUND_JOB, "0")


# --- the sensor --------------------------------------------------------------------------


def _sensor_context(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.RunStatusSensorContext:
    (record,) = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    return dg.build_run_status_sensor_context(
        sensor_name=pipeline_next_stage.name, dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=run,
    )


@pytest.mark.slow
def test_sensor_requests_the_next_stage(quarter: PipelineRun) -> None:
    for run, next_run in zip(quarter.runs, quarter.runs[1:], strict=False):
        requests = pipeline_next_stage(_sensor_context(quarter.instance, run))
        assert isinstance(requests, list), run.job_name
        (request,) = requests
        assert request.job_name == next_run.job_name
        expected_key = {
            EVALUATIONS_JOB: f"{run.run_id}:{EVALUATIONS_JOB}:0",
            HISTORY_JOB: f"{run.tags.get(ROUND_RUN_TAG)}:{HISTORY_JOB}",
        }.get(next_run.job_name, f"{run.run_id}:{next_run.job_name}")
        assert request.run_key == expected_key
        assert request.tags == dict(next_run.tags)
        if next_run.job_name in (ROUND_JOB, FULL_ROUND_JOB):
            round_config = request.run_config["ops"]["strategy_configs"]["config"]
            assert round_config["round"] == int(next_run.tags[ROUND_TAG])
        assert request.tags[PIPELINE_TAG] == "quarterly"


@pytest.mark.slow
def test_sensor_stops_after_the_reports(quarter: PipelineRun) -> None:
    reports_run = quarter.runs[-1]
    assert reports_run.job_name == REPORTS_JOB
    result = pipeline_next_stage(_sensor_context(quarter.instance, reports_run))
    assert isinstance(result, dg.SkipReason)


def test_sensor_skips_runs_without_the_pipeline_tag(
    data_root: Path, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(data_root=str(data_root))
    result = defs.resolve_job_def(INGEST_JOB).execute_in_process(
        instance=instance, run_config={"ops": {"market_data": {"config": {"as_of": AS_OF}}}},
    )
    assert PIPELINE_TAG not in result.dagster_run.tags

    skip = pipeline_next_stage(_sensor_context(instance, result.dagster_run))

    assert isinstance(skip, dg.SkipReason)
    assert "not a chained pipeline stage" in skip.skip_message


# --- a second quarter --------------------------------------------------------------------


@pytest.mark.slow
def test_next_quarter_with_a_new_seed_starts_a_new_loop(quarter: PipelineRun) -> None:
    """A quarter starts a new loop: round 0 replaces the registered configs, and the
    history, leaderboard and recommendation cover only the new loop's configs; the
    previous quarter's stored evaluations are removed (retention)."""
    next_quarter = _run_quarter(quarter.defs, quarter.instance, quarter.data_root,
                                quarter.artifacts, seed=20270101)

    new_ids = set(next_quarter.config_ids)
    assert len(new_ids) == MAX_CONFIGS
    assert not new_ids & set(quarter.config_ids)
    assert set(next_quarter.history["config_id"]) == new_ids
    assert set(next_quarter.leaderboard["config_id"]) == new_ids
    assert next_quarter.recommended["config_id"][0] in new_ids
    stored = sorted(p.name for p in (quarter.data_root / "strategy_evaluations").iterdir())
    assert stored == sorted(f"batch={b}" for b in next_quarter.batches)
    assert not set(quarter.batches) & set(next_quarter.batches)
    # the recommendation it replaces is the first quarter's, and the report says so
    (row,) = next_quarter.recommended.iter_rows(named=True)
    assert row["previous_config_id"] == quarter.recommended["config_id"][0]
    assert row["previous_equity_weight"] == pytest.approx(
        quarter.recommended["equity_weight_today"][0], abs=1e-6)
    report = next_quarter.files["report.md"].decode("utf-8")
    assert f"previously config `{row['previous_config_id']}`" in report
    completeness = next_quarter.checks[FULL_ROUND_JOB]
    assert completeness["strategy_evaluations:evaluation_completeness"][0]


@pytest.mark.slow
def test_a_rerun_with_the_same_seed_reproduces_the_loop(quarter: PipelineRun) -> None:
    again = _run_loop(quarter.defs, quarter.instance, quarter.data_root, seed=0)
    columns = ["config_id", "round", "proposer", "objective", "best_objective_so_far"]
    assert again.history.select(columns).equals(quarter.history.select(columns))


@pytest.mark.slow
def test_a_round_split_over_runs_gives_the_same_history(
    quarter: PipelineRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$DYNALLOC_EVALUATIONS_PER_RUN=4: each round's evaluations go to two runs (4 and 2
    scenarios), the history follows once both have succeeded, and the loop ends where the
    unsplit one did."""
    monkeypatch.setenv("DYNALLOC_EVALUATIONS_PER_RUN", "4")
    data_root = tmp_path / "data"
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        split = _run_loop(build_definitions(data_root=str(data_root)), instance, data_root,
                          seed=0)
    evaluation_runs = [r for r in split.runs if r.job_name == EVALUATIONS_JOB]
    assert len(evaluation_runs) == 2 * ROUNDS
    assert {r.tags[SPLIT_TAG] for r in evaluation_runs} == {"2"}
    assert [(r.tags[RANGE_START].split("|")[1], r.tags[RANGE_END].split("|")[1])
            for r in evaluation_runs[:2]] == [(SCENARIOS[0], SCENARIOS[3]),
                                              (SCENARIOS[4], SCENARIOS[5])]
    assert [r.job_name for r in split.runs].count(HISTORY_JOB) == ROUNDS
    columns = ["config_id", "round", "proposer", "objective", "best_objective_so_far"]
    assert split.history.select(columns).equals(quarter.history.select(columns))


class _Cycle:
    """An object in a reference cycle with itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_each_stage_starts_with_the_garbage_collected_and_the_survivors_frozen(
        instance: dg.DagsterInstance) -> None:
    """Garbage an earlier stage left is freed before the next stage, not frozen with
    the survivors; a collection during a stage leaves them frozen; the pipeline hands
    them back to the collector when it ends. (Automatic collections are off meanwhile,
    so only the pipeline's own collection can free the garbage.)"""
    left: list[weakref.ref] = []
    seen: list[tuple[bool, int, int]] = []

    def launcher(request: dg.RunRequest) -> dg.DagsterRun:
        garbage_gone, frozen = all(ref() is None for ref in left), gc.get_freeze_count()
        gc.collect()
        seen.append((garbage_gone, frozen, gc.get_freeze_count()))
        garbage = _Cycle()
        left.append(weakref.ref(garbage))
        del garbage
        return dg.DagsterRun(job_name=request.job_name, run_id=f"stage-{len(seen)}",
                             status=dg.DagsterRunStatus.FAILURE)

    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        for _ in range(2):
            assert len(run_pipeline(None, instance, launcher=launcher)) == 1
            assert gc.get_freeze_count() == 0
        assert len(seen) == 2 and seen[1][0]  # the first stage's garbage was collected
        assert all(frozen > 0 and after == frozen for _, frozen, after in seen)
    finally:
        gc.enable()
