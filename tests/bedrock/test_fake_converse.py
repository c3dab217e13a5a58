"""The real boto3 path over a socket: BedrockResource against the fake Converse endpoint
selected with AWS_ENDPOINT_URL_BEDROCK_RUNTIME (botocore signs, retries and parses)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import dagster as dg
import pytest
from conftest import MODEL_ID
from fake_converse import (
    DROP,
    THROTTLING,
    FakeConverse,
    FakeResponse,
    error_response,
    stalled,
    text_response,
)

from dynalloc_dagster.bedrock.client import (
    BedrockConnectionError,
    BedrockModelAccessError,
    BedrockReplyError,
    BedrockThrottledError,
)
from dynalloc_dagster.bedrock.grounding import check_grounding
from dynalloc_dagster.bedrock.narrative import ReportTables
from dynalloc_dagster.bedrock.resource import BedrockResource
from engine.optimisation.search_space import SearchSpace

REPO = Path(__file__).resolve().parents[2]
NARRATIVE = "## Executive summary\n\nThe recommended rule targets 10.5% vol; robustness 0.87.\n"


def bedrock(**overrides: object) -> BedrockResource:
    settings: dict[str, object] = {"mode": "bedrock", "retry_mode": "standard",
                                   "max_attempts": 3}
    return BedrockResource(**(settings | overrides))


def test_narrative_over_the_socket(fake_env: FakeConverse, tables: ReportTables) -> None:
    fake_env.script = [text_response(NARRATIVE, input_tokens=2000, output_tokens=500,
                                      latency_ms=4321)]

    narrative = bedrock().write_narrative(tables)

    assert narrative.text == NARRATIVE.strip()
    assert (narrative.input_tokens, narrative.output_tokens, narrative.latency_ms) == (
        2000, 500, 4321)
    assert narrative.cost_usd == pytest.approx(2000 * 0.003e-3 + 500 * 0.015e-3)
    assert check_grounding(narrative.text, tables).grounded
    (request,) = fake_env.requests
    assert request.model_id == MODEL_ID
    assert "### Leaderboard" in request.body["messages"][0]["content"][0]["text"]
    assert request.body["inferenceConfig"] == {"maxTokens": 4096, "temperature": 0.0}


def test_throttling_is_retried_then_succeeds(
    fake_env: FakeConverse, tables: ReportTables
) -> None:
    fake_env.script = [THROTTLING, text_response(NARRATIVE)]
    narrative = bedrock().write_narrative(tables)
    assert narrative.text == NARRATIVE.strip()
    assert len(fake_env.requests) == 2


def test_throttling_beyond_max_attempts_is_named(
    fake_env: FakeConverse, tables: ReportTables
) -> None:
    fake_env.script = [THROTTLING] * 2
    with pytest.raises(BedrockThrottledError, match="after 2 attempts"):
        bedrock(max_attempts=2).write_narrative(tables)
    assert len(fake_env.requests) == 2


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (error_response("AccessDeniedException", 403, "You don't have access to the model"),
         BedrockModelAccessError, f"no access to model {MODEL_ID} in us-east-1"),
        (FakeResponse(200, {"output": {"message": {"role": "assistant", "content": []}},
                            "stopReason": "end_turn",
                            "usage": {"inputTokens": 5, "outputTokens": 0, "totalTokens": 5},
                            "metrics": {"latencyMs": 10}}),
         BedrockReplyError, "returned an empty message"),
        (FakeResponse(200, {"output": {}, "stopReason": "end_turn"}),
         BedrockReplyError, "malformed response: .*ConverseOutput"),
        (FakeResponse(200, {"stopReason": "end_turn"}),
         BedrockReplyError, "returned no output message"),
    ],
)
def test_errors_over_the_socket(
    fake_env: FakeConverse, tables: ReportTables, response: FakeResponse,
    error: type[Exception], message: str,
) -> None:
    fake_env.script = [response]
    with pytest.raises(error, match=message):
        bedrock().write_narrative(tables)


def test_proposer_over_the_socket(fake_env: FakeConverse, tables: ReportTables) -> None:
    proposer = bedrock().proposer(SearchSpace(), 10.0)
    configs = proposer.propose(tables.optimisation_history, 8, round_index=2, seed=0)
    assert len({c.config_id for c in configs}) == 8
    assert all(c.tc_bps == 10.0 for c in configs)
    tool_config = fake_env.requests[0].body["toolConfig"]
    assert tool_config["toolChoice"] == {"tool": {"name": "propose_configs"}}


def test_the_resource_in_a_materialization(
    fake_env: FakeConverse, tables: ReportTables
) -> None:
    @dg.asset
    def narrative(bedrock: BedrockResource) -> dg.MaterializeResult:
        written = bedrock.write_narrative(tables)
        return dg.MaterializeResult(metadata={"written_by": written.written_by,
                                              "input_tokens": written.input_tokens})

    result = dg.materialize([narrative], resources={"bedrock": bedrock()})
    metadata = result.asset_materializations_for_node("narrative")[0].metadata
    assert metadata["written_by"].value == f"bedrock:{MODEL_ID}"
    assert metadata["input_tokens"].value == 1200


def test_command_line_server_for_subprocesses() -> None:
    """``python -m tests.bedrock.fake_converse`` prints its endpoint and serves."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.bedrock.fake_converse", "--throttle-first", "1"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        endpoint = server.stdout.readline().strip()
        runtime = boto3.client("bedrock-runtime", region_name="us-east-1",
                               endpoint_url=endpoint, aws_access_key_id="testing",
                               aws_secret_access_key="testing",
                               config=boto3.session.Config(
                                   retries={"mode": "standard", "max_attempts": 2}))
        reply = runtime.converse(modelId=MODEL_ID, messages=[
            {"role": "user", "content": [{"text": "hello"}]}])
        assert reply["output"]["message"]["content"][0]["text"].startswith("## Executive")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # seen once in a loaded suite: SIGTERM not acted on
            server.kill()
            server.wait(timeout=10)


def test_a_closed_connection_is_retried_then_named(
    fake_env: FakeConverse, tables: ReportTables
) -> None:
    fake_env.script = [DROP, DROP]
    with pytest.raises(BedrockConnectionError) as raised:
        bedrock(max_attempts=2).write_narrative(tables)
    message = str(raised.value)
    assert (f"Converse with model {MODEL_ID} at {fake_env.endpoint} failed: the connection"
            " was closed before a reply, on each of 2 attempts") in message
    assert len(fake_env.requests) == 2


def test_a_stalled_reply_times_out_per_attempt(
    fake_env: FakeConverse, tables: ReportTables
) -> None:
    """Two attempts of a 1 s read timeout against a 10 s stall: the error comes after two
    seconds and botocore's backoff (at most 1 s), not after the stall, and names the
    timeout and the endpoint."""
    fake_env.script = [stalled(10), stalled(10)]
    start = time.monotonic()
    with pytest.raises(BedrockConnectionError,
                       match=f"at {fake_env.endpoint} failed: no reply within read_timeout_s"
                       " = 1 s, on each of 2 attempts"):
        bedrock(max_attempts=2, read_timeout_s=1.0).write_narrative(tables)
    assert time.monotonic() - start < 8
    assert len(fake_env.requests) == 2


def test_an_endpoint_nobody_listens_on_is_named(tables: ReportTables,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeConverse() as fake:
        env = fake.env({})
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():  # the fake has stopped: nothing listens on its port
        monkeypatch.setenv(key, value)
    with pytest.raises(BedrockConnectionError, match=f"at {fake.endpoint} failed: could not"
                       " connect within connect_timeout_s = 10 s, on each of 1 attempts"):
        bedrock(max_attempts=1).write_narrative(tables)


def test_the_default_timeouts_bound_a_stall() -> None:
    """At most 5 x (10 s + 120 s) plus backoff, not 5 x 300 s = 25 minutes."""
    client = BedrockResource(mode="bedrock").client()
    config = client.runtime.meta.config
    assert (config.connect_timeout, config.read_timeout) == (10.0, 120.0)
    assert config.retries["total_max_attempts"] == 5


def test_a_hostile_narrative_is_stored_without_scripts_images_or_script_links(
    fake_env: FakeConverse, tables: ReportTables
) -> None:
    fake_env.script = [text_response(
        "## Executive summary\n\nAdopt it.<script>alert(document.cookie)</script>"
        " ![x](https://tracker.example/p.png) [details](javascript:alert(1))\n")]
    text = bedrock().write_narrative(tables).text
    assert text == "## Executive summary\n\nAdopt it. x details)"
