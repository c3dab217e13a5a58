"""The bedrock proposer: a forced Converse tool call whose schema is the search space."""

from __future__ import annotations

import polars as pl
import pytest
from botocore.stub import Stubber
from conftest import MODEL_ID, converse_response

from dynalloc_dagster.bedrock.client import BedrockClient, BedrockReplyError
from dynalloc_dagster.bedrock.proposer import (
    SYSTEM_PROMPT,
    TOOL_NAME,
    BedrockProposer,
    ProposalError,
)
from dynalloc_dagster.bedrock.resource import BedrockResource
from engine.optimisation.loop import config_rows
from engine.optimisation.sampling import sample_configs
from engine.optimisation.search_space import SearchSpace
from engine.strategy.config import StrategyConfig
from engine.validation import ConfigError

VALID = [
    {"weight_fn": "linear", "target_vol": 0.11234, "vol_window_months": 14,
     "risk_aversion": 2.5},
    {"weight_fn": "inverse_vol", "target_vol": 0.09, "vol_window_months": 10,
     "risk_aversion": None},
]


@pytest.fixture
def proposer(client: BedrockClient) -> BedrockProposer:
    return BedrockProposer(client, SearchSpace(), tc_bps=10.0)


def tool_reply(configs: object) -> dict:
    block = {"toolUse": {"toolUseId": "tooluse_1", "name": TOOL_NAME,
                         "input": {"configs": configs}}}
    return converse_response([block], stop_reason="tool_use", input_tokens=900,
                             output_tokens=120, latency_ms=700)


def test_valid_proposals_become_configs(
    proposer: BedrockProposer, stubber: Stubber, tables
) -> None:
    history = tables.optimisation_history
    expected = {
        "modelId": MODEL_ID,
        "system": [{"text": SYSTEM_PROMPT}],
        "messages": [{"role": "user", "content": [
            {"text": proposer.prompt(history, 2, round_index=2)}]}],
        "inferenceConfig": {"maxTokens": 2048, "temperature": 0.0},
        "toolConfig": proposer.tool_config(2),
    }
    stubber.add_response("converse", tool_reply(VALID), expected)

    configs = proposer.propose(history, 2, round_index=2, seed=0)

    assert configs == [
        StrategyConfig(target_vol=0.1123, weight_fn="linear", vol_window_months=14,
                       risk_aversion=2.5, tc_bps=10.0),
        StrategyConfig(target_vol=0.09, weight_fn="inverse_vol", vol_window_months=10,
                       risk_aversion=None, tc_bps=10.0),
    ]
    assert [r.input_tokens for r in proposer.replies] == [900]
    assert proposer.replies[0].cost_usd == pytest.approx(900 * 0.003e-3 + 120 * 0.015e-3)


def test_tool_schema_is_the_search_space_and_the_tool_is_forced(
    proposer: BedrockProposer,
) -> None:
    config = proposer.tool_config(8)
    schema = config["tools"][0]["toolSpec"]["inputSchema"]["json"]
    assert schema["properties"]["configs"] == {
        "type": "array", "items": SearchSpace().json_schema(), "minItems": 8, "maxItems": 8,
    }
    assert schema["required"] == ["configs"]
    assert config["toolChoice"] == {"tool": {"name": TOOL_NAME}}


def test_prompt_carries_the_history_and_the_space(proposer: BedrockProposer, tables) -> None:
    prompt = proposer.prompt(tables.optimisation_history, 8, round_index=3)
    assert "Optimisation round 3" in prompt
    assert ("| evaluation_index | round | proposer | weight_fn | target_vol |"
            " vol_window_months | risk_aversion | objective |") in prompt
    assert "| 4 | 1 | tpe | linear | 0.1046 | 12 | 2.3470 | 0.8521 |" in prompt
    assert '"maximum": 0.2' in prompt
    assert "exactly 8 new configs" in prompt


def test_prompt_carries_the_shape_of_the_search(proposer: BedrockProposer, tables) -> None:
    prompt = proposer.prompt(tables.optimisation_history, 8, round_index=3)
    # incumbents, best first: linear 0.8521 (config 4), inverse_vol 0.8121, ...
    incumbents = prompt.split("The incumbent (best config)", 1)[1].split("\n\n", 2)[0]
    rows = [line for line in incumbents.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == [
        "linear", "inverse_vol", "sigmoid", "inverse_vol_squared"]
    assert "| linear | " in rows[0] and "| 0.8521 | 1 |" in rows[0]
    assert "How much the mean objective moves" in prompt
    assert "| weight_fn | " in prompt and "| target_vol | " in prompt
    # 4 weight functions x 4 x 4 cells, 4 of them explored
    assert "Unexplored cells (no config evaluated; 60 in all, the first 24 shown)" in prompt


def test_a_long_history_shows_its_best_configs_and_its_latest_round(
    proposer: BedrockProposer,
) -> None:
    configs = sample_configs(90, 0, tc_bps=10.0)
    history = (config_rows(configs, round_index=0, proposer="lhs")
               .with_row_index("evaluation_index", offset=1)
               .with_columns(pl.int_range(pl.len()).cast(pl.Float64).alias("objective"),
                             pl.when(pl.int_range(pl.len()) < 85).then(0).otherwise(1)
                             .alias("round")))
    prompt = proposer.prompt(history, 4, round_index=2)
    table = prompt.split("in evaluation order, objective to maximise:", 1)[1]
    shown = [line for line in table.splitlines() if line.startswith("| ")][1:]
    # the best 40 are the last 40 (objective = index), the latest round within them
    assert len(shown) == 40
    assert "The best 40 and the latest round's configs, 40 of the 90 evaluated" in prompt
    assert shown[0].startswith("| 51 | 0 | lhs |")


@pytest.mark.parametrize(
    ("configs", "error", "message"),
    [
        ([{**VALID[0], "target_vol": 0.35}, VALID[1]], ProposalError,
         r"proposal 1 of 2: SearchSpace.target_vol = 0.35 is outside the allowed range"
         r" \[0.05, 0.2\]"),
        ([VALID[0], {**VALID[1], "vol_window_months": 40}], ProposalError,
         r"proposal 2 of 2: SearchSpace.vol_window_months = 40"),
        ([VALID[0], {**VALID[1], "weight_fn": "momentum"}], ProposalError,
         "weight_fn = 'momentum' is not one of"),
        ([VALID[0], {**VALID[1], "tc_bps": 0.1}], ProposalError, "unknown field"),
        ([VALID[0]], ProposalError, "asked for 2 configs, got 1"),
        ("two configs", ProposalError, "asked for 2 configs, got no list of"),
        ([VALID[0], "linear"], ProposalError, "proposal 2 of 2 is str, not an object"),
        ([VALID[0], VALID[0]], ProposalError, "proposal 2 of 2 repeats config"),
    ],
)
def test_invalid_proposals_raise(
    proposer: BedrockProposer, stubber: Stubber, tables, configs: object,
    error: type[Exception], message: str,
) -> None:
    stubber.add_response("converse", tool_reply(configs))
    with pytest.raises(error, match=message):
        proposer.propose(tables.optimisation_history, 2, round_index=2, seed=0)


def test_a_config_already_in_the_history_raises(
    proposer: BedrockProposer, stubber: Stubber, tables
) -> None:
    known = proposer.space.make_config(VALID[0], 10.0)
    history = tables.optimisation_history.with_columns(
        pl.when(pl.col("evaluation_index") == 1).then(pl.lit(known.config_id))
        .otherwise(pl.col("config_id")).alias("config_id"))
    stubber.add_response("converse", tool_reply(VALID))
    with pytest.raises(ProposalError, match=f"proposal 1 of 2 repeats config {known.config_id}"):
        proposer.propose(history, 2, round_index=2, seed=0)


def test_a_reply_without_the_tool_call_raises(
    proposer: BedrockProposer, stubber: Stubber, tables
) -> None:
    stubber.add_response("converse", converse_response([{"text": "Try linear rules."}]))
    with pytest.raises(BedrockReplyError, match=f"did not call the tool {TOOL_NAME}"):
        proposer.propose(tables.optimisation_history, 2, round_index=2, seed=0)


def test_the_offline_resource_has_no_proposer() -> None:
    with pytest.raises(ConfigError, match="needs mode 'bedrock'"):
        BedrockResource().proposer(SearchSpace(), 10.0)
