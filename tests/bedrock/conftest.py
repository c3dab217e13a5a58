"""Fixtures of the Bedrock tests: small hand-made report tables, a stubbed Converse client,
and the fake Converse endpoint with the environment that points boto3 at it.

No test reaches AWS: the Stubber intercepts calls before they are signed or sent, and the
fake endpoint listens on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import boto3
import polars as pl
import pytest
from botocore.stub import Stubber
from fake_converse import FakeConverse

from dynalloc_dagster.bedrock.client import BedrockClient, TokenPrice
from dynalloc_dagster.bedrock.narrative import ReportTables

MODEL_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PRICE = TokenPrice(usd_per_1k_input_tokens=0.003, usd_per_1k_output_tokens=0.015)
IDS = ["a3f9c01b2e", "0123456789", "7e2d4c9f10", "c4b1e0d3a8"]
SCENARIOS = ["base", "bear", "bull"]


def converse_response(content: list[dict], *, stop_reason: str = "end_turn",
                      input_tokens: int = 1500, output_tokens: int = 600,
                      latency_ms: int = 2345) -> dict:
    """A Converse response as boto3 returns it (and the Stubber checks it)."""
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": latency_ms},
    }


@pytest.fixture
def tables() -> ReportTables:
    """Four configs over two rounds and three scenarios; ``IDS[0]`` is recommended.
    ``IDS[1]`` is all digits, as a config id can be."""
    leaderboard = pl.DataFrame({
        "rank": [1, 2, 3, 4],
        "config_id": IDS,
        "weight_fn": ["linear", "inverse_vol", "sigmoid", "inverse_vol_squared"],
        "target_vol": [0.1046, 0.0875, 0.1532, 0.1213],
        "vol_window_months": [12, 18, 9, 24],
        "risk_aversion": [2.347, None, 1.125, None],
        "robustness": [0.8734, 0.8121, 0.6542, -0.1275],
        "penalty": [0.0213, 0.0, 0.1178, 0.4032],
        "objective": [0.8521, 0.8121, 0.5364, -0.5307],
        "feasible": [False, True, False, False],
        "worst_scenario": ["bear", "bear", "bull", "bear"],
        "robust": [True, True, False, False],
    })
    scenario_comparison = pl.DataFrame({
        "scenario": SCENARIOS,
        "n_configs": [4, 4, 4],
        "best_config_id": [IDS[0], IDS[0], IDS[2]],
        "best_sharpe_mean": [0.6321, 0.2874, 1.1549],
        "median_sharpe_mean": [0.5517, 0.2187, 0.9012],
        "worst_sharpe_mean": [0.3102, -0.0421, 0.7555],
        "n_meeting_objectives": [1, 0, 2],
        "share_meeting_objectives": [0.25, 0.0, 0.5],
        "mean_max_drawdown": [0.1432, 0.2611, 0.0876],
    })
    sensitivity = pl.DataFrame({
        "scenario": [s for s in SCENARIOS for _ in range(2)],
        "parameter": ["vol_window_months", "weight_fn"] * 3,
        "main_effect_share": [0.4123, 0.2871, 0.6177, 0.1012, 0.1333, 0.5259],
        "rank_in_scenario": [1, 2, 1, 2, 2, 1],
        "n_levels": [3, 4, 3, 4, 3, 4],
    })
    history = pl.DataFrame({
        "evaluation_index": [1, 2, 3, 4],
        "round": [0, 0, 0, 1],
        "config_id": [IDS[3], IDS[1], IDS[2], IDS[0]],
        "proposer": ["lhs", "lhs", "lhs", "tpe"],
        "weight_fn": ["inverse_vol_squared", "inverse_vol", "sigmoid", "linear"],
        "target_vol": [0.1213, 0.0875, 0.1532, 0.1046],
        "vol_window_months": [24, 18, 9, 12],
        "risk_aversion": [None, None, 1.125, 2.347],
        "tc_bps": [10.0] * 4,
        "objective": [-0.5307, 0.8121, 0.5364, 0.8521],
        "best_objective_so_far": [-0.5307, 0.8121, 0.8121, 0.8521],
        "stop_reason": ["max_configs"] * 4,
    })
    compliance = pl.DataFrame({
        "config_id": [c for c in IDS[:2] for _ in SCENARIOS],
        "scenario": SCENARIOS * 2,
        "pass_vol": [True, False, True, True, True, True],
        "pass_sharpe": [False] * 6,
        "meets_objectives": [False] * 6,
        "sharpe_median": [0.6012, 0.2511, 1.0876, 0.5433, 0.2209, 0.9871],
        "max_drawdown_median": [0.1211, 0.1987, 0.0712, 0.1105, 0.1823, 0.0654],
    })
    return ReportTables(
        leaderboard=leaderboard,
        scenario_comparison=scenario_comparison,
        parameter_sensitivity=sensitivity,
        optimisation_history=history,
        constraint_compliance=compliance,
        objectives={"target_vol": 0.10, "vol_tolerance": 0.02, "min_sharpe": 1.5,
                    "max_drawdown": 0.15, "max_var95": 0.05, "max_cvar95": 0.08,
                    "max_cost_bps": 20.0, "robustness_threshold": 0.80,
                    "assumed_tc_bps": 10.0, "penalty_weight": 1.0},
        unmet_objectives=["pass_sharpe"],
        recommended={"config_id": IDS[0], "weight_fn": "linear", "target_vol": 0.1046,
                     "vol_window_months": 12, "risk_aversion": 2.347,
                     "equity_weight": 0.6183, "as_of": dt.date(2026, 11, 23)},
    )


@pytest.fixture
def runtime() -> boto3.client:
    """A bedrock-runtime client with dummy credentials, never used unstubbed."""
    return boto3.client("bedrock-runtime", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def stubber(runtime) -> Iterator[Stubber]:
    with Stubber(runtime) as stub:
        yield stub
        stub.assert_no_pending_responses()


@pytest.fixture
def client(runtime, stubber: Stubber) -> BedrockClient:
    """A Converse client whose calls the ``stubber`` answers."""
    return BedrockClient(MODEL_ID, region="us-east-1", price=PRICE, max_tokens=2048,
                         temperature=0.0, runtime=runtime)


@pytest.fixture
def fake_converse() -> Iterator[FakeConverse]:
    """A started fake endpoint; set ``fake_converse.script`` to script its replies."""
    with FakeConverse() as fake:
        yield fake


@pytest.fixture
def fake_env(fake_converse: FakeConverse, monkeypatch: pytest.MonkeyPatch) -> FakeConverse:
    """This process's environment pointed at ``fake_converse`` (AWS settings replaced)."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in fake_converse.env({}).items():
        monkeypatch.setenv(key, value)
    return fake_converse
