"""The whole pipeline with Bedrock on, in a subprocess, against the fake Converse endpoint.

`python -m dynalloc_dagster` runs with the bedrock proposer for the agent's later
rounds and the Bedrock narrative for the report; boto3 reaches the fake server on
127.0.0.1 through AWS_ENDPOINT_URL_BEDROCK_RUNTIME, so the real client code runs over a
socket. The first proposal is out of the search space (the round falls back to TPE and
the history says so); the narrative carries a number found in no table (the grounding
check warns and lists it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from fake_converse import FakeConverse, tool_response

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "dagster"))
from dagster_test_support import small_run_config  # noqa: E402

MADE_UP = "9.87"
NARRATIVE = (
    "## Executive summary\n\nThe committee is asked to adopt the top-ranked rule; its"
    f" worst-regime Sharpe of {MADE_UP} is the headline.\n\n## Risks and limits\n\n"
    "Simulated regimes are not forecasts. Trading costs fell from $5.2m (down 10% on the"
    " year) to $4.1m.\n"  # two dollar amounts around a % broke matplotlib's mathtext
)
OUT_OF_SPACE = tool_response("propose_configs", {"configs": [
    {"weight_fn": "inverse_vol", "target_vol": 5.0, "vol_window_months": 12}] * 4})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("bedrock_pipeline")
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    config = small_run_config(proposer="bedrock")
    config["resources"]["bedrock"] = {"config": {"mode": "bedrock"}}
    config_file = tmp / "run.yaml"
    config_file.write_text(yaml.safe_dump(config))
    with FakeConverse([OUT_OF_SPACE], text=NARRATIVE) as fake:
        env = fake.env() | {"DAGSTER_HOME": str(home), "DYNALLOC_DATA_ROOT": str(tmp / "data")}
        done = subprocess.run(
            [sys.executable, "-m", "dynalloc_dagster", "--config", str(config_file)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
        requests = list(fake.requests)
    return done, requests, home, tmp / "data"


@pytest.mark.slow
def test_the_pipeline_succeeds_with_bedrock_over_a_socket(pipeline) -> None:
    done, requests, _, _ = pipeline
    assert done.returncode == 0, done.stdout + done.stderr
    tools = [r for r in requests if "toolConfig" in r.body]
    texts = [r for r in requests if "toolConfig" not in r.body]
    assert len(tools) == 2  # rounds 1 and 2
    assert len(texts) == 1  # the narrative
    prompt = json.dumps(texts[0].body)
    assert "robustness_leaderboard" in prompt or "Leaderboard" in prompt


@pytest.mark.slow
def test_an_out_of_space_proposal_falls_back_to_tpe_and_is_recorded(pipeline) -> None:
    _, _, _, data = pipeline
    history = pl.read_parquet(data / "optimisation_history.parquet")
    proposers = dict(history.group_by("round").agg(pl.col("proposer").unique(
        maintain_order=True)).iter_rows())
    # each later round: the global proposer's half, then the trust region's
    assert proposers == {0: ["lhs"], 1: ["tpe", "trust_region"],
                         2: ["bedrock", "trust_region"]}


@pytest.mark.slow
def test_the_narrative_is_bedrock_s_and_its_made_up_number_is_flagged(
    pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, home, data = pipeline
    report = (data / "artifacts" / "report.md").read_text()
    assert "Written by bedrock:" in report
    assert MADE_UP in report
    assert "from $5.2m (down 10% on the year) to $4.1m" in report
    assert (data / "artifacts" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (data / "artifacts" / "todays_allocation.csv").exists()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("bedrock_report"))
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("bedrock_report"), "narrative_grounding")])
    assert metadata["input_tokens"] == 1200
    assert metadata["output_tokens"] == 400
    assert metadata["estimated_cost_usd"] > 0
    (execution,) = check.values()
    evaluation = execution.event.dagster_event.event_specific_data
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert MADE_UP in evaluation.metadata["unmatched_numbers"].value
