"""BedrockResource config: defaults, ranges named in errors, the price table."""

from __future__ import annotations

import pydantic
import pytest
from conftest import MODEL_ID

from dynalloc_dagster.bedrock.narrative import OFFLINE_AUTHOR, ReportTables
from dynalloc_dagster.bedrock.resource import DEFAULT_MODEL_ID, BedrockResource


def test_defaults_are_offline_with_a_priced_claude_model(tables: ReportTables) -> None:
    resource = BedrockResource()
    assert resource.mode == "offline"
    assert DEFAULT_MODEL_ID == MODEL_ID and "anthropic.claude" in DEFAULT_MODEL_ID
    assert DEFAULT_MODEL_ID in resource.prices
    assert (resource.region, resource.retry_mode, resource.max_attempts) == (
        "us-east-1", "adaptive", 5)
    assert resource.write_narrative(tables).written_by == OFFLINE_AUTHOR


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_attempts", 0, r"BedrockResource.max_attempts = 0 is outside the allowed range"
                            r" \[1, 20\]"),
        ("max_tokens", 100_000, r"BedrockResource.max_tokens = 100000 is outside the allowed"
                                r" range \[256, 64000\]"),
        ("temperature", 1.5, r"BedrockResource.temperature = 1.5 is outside the allowed"
                             r" range \[0, 1\]"),
        ("read_timeout_s", 0.0, r"BedrockResource.read_timeout_s = 0.0 is outside"),
        ("prices", {MODEL_ID: {"usd_per_1k_input_tokens": -1.0,
                               "usd_per_1k_output_tokens": 0.015}},
         rf"BedrockResource.prices\[{MODEL_ID}\].usd_per_1k_input_tokens = -1.0 is outside"),
        ("retry_mode", "eager", "retry_mode"),
        ("mode", "aws", "mode"),
    ],
)
def test_config_errors_name_field_and_range(field: str, value: object, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        BedrockResource(**{field: value})


def test_bedrock_mode_needs_a_price_for_the_model() -> None:
    with pytest.raises(pydantic.ValidationError,
                       match=r"prices has no entry for model_id 'anthropic\.claude-new'"):
        BedrockResource(mode="bedrock", model_id="anthropic.claude-new")
    priced = BedrockResource(mode="bedrock", model_id="anthropic.claude-new", prices={
        "anthropic.claude-new": {"usd_per_1k_input_tokens": 0.001,
                                 "usd_per_1k_output_tokens": 0.002}})
    assert priced.client().price.cost(1000, 1000) == pytest.approx(0.003)
