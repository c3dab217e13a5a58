"""The Bedrock resource: writes the committee narrative and builds the ``bedrock`` proposer.

No `from __future__ import annotations`: Dagster reads Config annotations at runtime."""

from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field, model_validator

from dynalloc_dagster.bedrock.client import BedrockClient, RetryMode, TokenPrice
from dynalloc_dagster.bedrock.narrative import Narrative, ReportTables, write_narrative
from dynalloc_dagster.bedrock.proposer import BedrockProposer
from engine.validation import ConfigError, check_int_range, check_range

if TYPE_CHECKING:
    from engine.optimisation.search_space import SearchSpace

DEFAULT_MODEL_ID = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


class ModelPrice(dg.Config):
    """On-demand list price of a model, USD per 1,000 tokens."""

    usd_per_1k_input_tokens: float
    usd_per_1k_output_tokens: float


def default_prices() -> dict[str, ModelPrice]:
    """Anthropic list prices on Bedrock (on-demand, US profiles) when this was written;
    check the Amazon Bedrock pricing page and override in config."""
    sonnet = ModelPrice(usd_per_1k_input_tokens=0.003, usd_per_1k_output_tokens=0.015)
    return {
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0": sonnet,
        "us.anthropic.claude-sonnet-4-20250514-v1:0": sonnet,
        "us.anthropic.claude-haiku-4-5-20251001-v1:0": ModelPrice(
            usd_per_1k_input_tokens=0.001, usd_per_1k_output_tokens=0.005
        ),
    }


class BedrockResource(dg.ConfigurableResource):
    """Amazon Bedrock (Claude through the Converse API) for the report narrative and the
    ``bedrock`` proposer.

    ``mode`` ``offline`` (the default) needs no AWS: the narrative is written
    deterministically from the tables and labelled as written without Bedrock. ``bedrock``
    calls ``model_id`` in ``region`` with the default AWS credential chain; boto3 takes
    another endpoint from ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.
    """

    mode: Literal["offline", "bedrock"] = "offline"
    model_id: str = Field(default=DEFAULT_MODEL_ID,
                          description="Bedrock model or inference-profile id")
    region: str = "us-east-1"
    retry_mode: RetryMode = Field(default="adaptive",
                                  description="botocore retry mode (throttling backoff)")
    max_attempts: int = Field(
        default=5, description="calls in all per request, first included, in [1, 20]"
    )
    max_tokens: int = Field(default=4096, description="reply length cap, in [256, 64000]")
    temperature: float = Field(default=0.0, description="sampling temperature, in [0, 1]")
    connect_timeout_s: float = Field(default=10.0, description="seconds, in [1, 120]")
    read_timeout_s: float = Field(default=120.0,
                                  description="seconds per attempt, in [1, 3600]")
    prices: dict[str, ModelPrice] = Field(
        default_factory=default_prices,
        description="USD per 1,000 input/output tokens by model id (cost metadata)",
    )

    @model_validator(mode="after")
    def _in_range(self) -> "BedrockResource":
        owner = "BedrockResource"
        check_int_range(owner, "max_attempts", self.max_attempts, 1, 20)
        check_int_range(owner, "max_tokens", self.max_tokens, 256, 64_000)
        check_range(owner, "temperature", self.temperature, 0.0, 1.0)
        check_range(owner, "connect_timeout_s", self.connect_timeout_s, 1.0, 120.0)
        check_range(owner, "read_timeout_s", self.read_timeout_s, 1.0, 3600.0)
        if not self.model_id.strip():
            raise ConfigError(f"{owner}.model_id must name a Bedrock model")
        for model, price in self.prices.items():
            check_range(owner, f"prices[{model}].usd_per_1k_input_tokens",
                        price.usd_per_1k_input_tokens, 0.0, 1.0)
            check_range(owner, f"prices[{model}].usd_per_1k_output_tokens",
                        price.usd_per_1k_output_tokens, 0.0, 1.0)
        if self.mode == "bedrock" and self.model_id not in self.prices:
            raise ConfigError(
                f"{owner}.prices has no entry for model_id {self.model_id!r}; add"
                f" prices: {{{self.model_id!r}: {{usd_per_1k_input_tokens: ...,"
                " usd_per_1k_output_tokens: ...}}"
            )
        return self

    def client(self) -> BedrockClient:
        """A Converse client for ``model_id`` with this config's retries and price."""
        price = self.prices[self.model_id]
        return BedrockClient(
            self.model_id,
            region=self.region,
            price=TokenPrice(price.usd_per_1k_input_tokens, price.usd_per_1k_output_tokens),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            retry_mode=self.retry_mode,
            max_attempts=self.max_attempts,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
        )

    def write_narrative(self, tables: ReportTables) -> Narrative:
        """The committee narrative: by Bedrock in mode ``bedrock``, else offline."""
        return write_narrative(tables, self.client() if self.mode == "bedrock" else None)

    def proposer(self, space: "SearchSpace", tc_bps: float) -> BedrockProposer:
        """The ``bedrock`` proposer; needs mode ``bedrock``."""
        if self.mode != "bedrock":
            raise ConfigError(
                "BedrockResource.mode = 'offline': the bedrock proposer needs mode 'bedrock'"
            )
        return BedrockProposer(self.client(), space, tc_bps)
