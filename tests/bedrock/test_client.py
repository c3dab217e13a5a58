"""BedrockClient and the narrative through botocore's Stubber: usage, costs and the
errors that name what is missing."""

from __future__ import annotations

import os

import pytest
from botocore.stub import ANY, Stubber
from conftest import MODEL_ID, converse_response

from dynalloc_dagster.bedrock.client import (
    BedrockClient,
    BedrockCredentialsError,
    BedrockError,
    BedrockModelAccessError,
    BedrockReplyError,
    BedrockThrottledError,
    TokenPrice,
)
from dynalloc_dagster.bedrock.narrative import SYSTEM_PROMPT, ReportTables, write_narrative


def test_narrative_reply_gives_tokens_latency_and_cost(
    client: BedrockClient, stubber: Stubber, tables: ReportTables
) -> None:
    expected = {
        "modelId": MODEL_ID,
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": ANY,
        "inferenceConfig": {"maxTokens": 2048, "temperature": 0.0},
    }
    stubber.add_response("converse", converse_response([{"text": "## Executive summary\n"}]),
                         expected)

    narrative = write_narrative(tables, client)

    assert narrative.text == "## Executive summary"
    assert narrative.written_by == f"bedrock:{MODEL_ID}"
    assert narrative.model_id == MODEL_ID
    assert (narrative.input_tokens, narrative.output_tokens) == (1500, 600)
    assert narrative.latency_ms == 2345
    # 1500 tokens at $0.003 / 1k plus 600 at $0.015 / 1k = 0.0045 + 0.009
    assert narrative.cost_usd == pytest.approx(0.0135, rel=1e-12)


def test_the_prompt_carries_every_table(
    client: BedrockClient, stubber: Stubber, tables: ReportTables
) -> None:
    stubber.add_response("converse", converse_response([{"text": "ok"}]))
    sent: list[dict] = []
    client.runtime.meta.events.register(
        "provide-client-params.bedrock-runtime.Converse", lambda params, **_: sent.append(params)
    )
    write_narrative(tables, client)
    prompt = sent[0]["messages"][0]["content"][0]["text"]
    for heading in ("Leaderboard", "Scenario comparison", "Parameter sensitivity",
                    "Optimisation history", "Objectives compliance", "Investment objectives"):
        assert f"### {heading}" in prompt
    assert "| 1 | a3f9c01b2e | linear | 0.1046 | 12 | 2.3470 |" in prompt
    assert "stop reason: max_configs" in prompt


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([], "returned an empty message"),
        ([{"text": "  \n"}], "returned only blank text"),
        ([{"toolUse": {"toolUseId": "t1", "name": "other", "input": {}}}],
         "returned no text block, only: toolUse"),
    ],
)
def test_empty_or_malformed_content_is_named(
    client: BedrockClient, stubber: Stubber, content: list[dict], message: str
) -> None:
    stubber.add_response("converse", converse_response(content))
    with pytest.raises(BedrockReplyError, match=message):
        client.converse("hello", system="be brief").text()


def test_truncated_reply_names_max_tokens(client: BedrockClient, stubber: Stubber) -> None:
    stubber.add_response("converse", converse_response([{"text": "The committee"}],
                                                       stop_reason="max_tokens"))
    with pytest.raises(BedrockReplyError, match="stopped at max_tokens"):
        client.converse("hello", system="be brief").text()


def test_missing_output_message_is_named(client: BedrockClient) -> None:
    with pytest.raises(BedrockReplyError, match="returned no output message"):
        client._reply({"output": {}, "stopReason": "end_turn"})


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("AccessDeniedException", 403,
         "You don't have access to the model with the specified model ID."),
        ("ValidationException", 400,
         "Invocation of model ID anthropic.claude-sonnet-4-5-20250929-v1:0 with on-demand"
         " throughput isn't supported."),
        ("ResourceNotFoundException", 404, "Model not found."),
    ],
)
def test_no_model_access_names_model_and_region(
    client: BedrockClient, stubber: Stubber, code: str, status: int, message: str
) -> None:
    stubber.add_client_error("converse", service_error_code=code, service_message=message,
                             http_status_code=status)
    with pytest.raises(BedrockModelAccessError) as raised:
        client.converse("hello", system="be brief")
    text = str(raised.value)
    assert f"model {MODEL_ID} in us-east-1" in text
    assert code in text
    assert "Model access" in text


def test_other_validation_errors_are_not_blamed_on_access(
    client: BedrockClient, stubber: Stubber
) -> None:
    stubber.add_client_error("converse", service_error_code="ValidationException",
                             service_message="messages: must not be empty",
                             http_status_code=400)
    with pytest.raises(BedrockError, match="ValidationException: messages") as raised:
        client.converse("hello", system="be brief")
    assert not isinstance(raised.value, BedrockModelAccessError)


def test_throttling_left_after_botocore_retries_is_named(
    client: BedrockClient, stubber: Stubber
) -> None:
    """The Stubber answers before botocore's retry loop, so this is the error a caller sees
    once every attempt was throttled (the retry itself: test_fake_converse)."""
    stubber.add_client_error("converse", service_error_code="ThrottlingException",
                             service_message="Too many requests", http_status_code=429)
    with pytest.raises(BedrockThrottledError, match="after 5 attempts with backoff"):
        client.converse("hello", system="be brief")


def test_rejected_credentials_are_a_credentials_error(
    client: BedrockClient, stubber: Stubber
) -> None:
    stubber.add_client_error("converse", service_error_code="UnrecognizedClientException",
                             service_message="The security token included in the request"
                             " is invalid.", http_status_code=403)
    with pytest.raises(BedrockCredentialsError, match="AWS_ACCESS_KEY_ID"):
        client.converse("hello", system="be brief")


def test_no_credentials_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9")
    client = BedrockClient(MODEL_ID, region="eu-west-1", price=TokenPrice(0.003, 0.015),
                           max_tokens=256, temperature=0.0, max_attempts=1)
    with pytest.raises(BedrockCredentialsError) as raised:
        client.converse("hello", system="be brief")
    text = str(raised.value)
    assert "no usable AWS credentials for Bedrock Runtime in eu-west-1" in text
    for missing in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "instance or task role", "offline"):
        assert missing in text
