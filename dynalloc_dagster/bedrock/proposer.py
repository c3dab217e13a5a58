"""The ``bedrock`` proposer of the optimisation loop: Claude reads the history and proposes
the next batch through a Converse tool call whose input schema is the search space."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from dynalloc_dagster.bedrock.client import BedrockClient, ConverseReply
from dynalloc_dagster.bedrock.markdown import markdown_table
from engine.optimisation.landscape import search_landscape
from engine.strategy.config import StrategyConfig
from engine.validation import ConfigError

if TYPE_CHECKING:
    from engine.optimisation.search_space import SearchSpace

TOOL_NAME = "propose_configs"
_HISTORY_COLUMNS = (
    "evaluation_index", "round", "proposer", "weight_fn", "target_vol", "vol_window_months",
    "risk_aversion", "robustness", "penalty", "objective", "feasible", "improved",
)
MAX_ROWS = 60
"""A history up to this long is shown whole in the prompt."""
TOP_ROWS = 40
"""Rows of a longer history shown: its best configs (and the latest round's)."""
MAX_UNEXPLORED = 24
"""Unexplored cells listed in the prompt."""
SYSTEM_PROMPT = (
    "You are a quantitative researcher tuning a volatility-targeted equity/bond allocation"
    " rule. Each evaluated config has an objective to maximise: its robustness (worst-regime"
    " mean Sharpe relative to the best config in that regime) minus penalties for violating"
    " the investment objectives; it is relative, so every config is rescored as better"
    " ones appear. The last percent of objective is usually found close to the best"
    " configs: propose configs likely to beat the best so far, mostly small steps around"
    " the incumbents in the parameters that matter, a few in unexplored regions."
    " Answer only by calling the tool."
)


class ProposalError(ValueError):
    """The model's proposals do not fit the request or the search space."""


class BedrockProposer:
    """Proposes configs with a Bedrock model (engine Proposer protocol).

    Parameters
    ----------
    client : the Converse client (model, region, retries, price).
    space : the search space; its ``json_schema()`` is the schema of one proposal and
        ``make_config`` validates each.
    tc_bps : the cost assumption every proposed config carries.

    Attributes
    ----------
    replies : every Converse reply so far (tokens, latency, cost), for run metadata.
    """

    name = "bedrock"

    def __init__(self, client: BedrockClient, space: SearchSpace, tc_bps: float) -> None:
        self.client = client
        self.space = space
        self.tc_bps = tc_bps
        self.replies: list[ConverseReply] = []

    def tool_config(self, n: int) -> dict[str, Any]:
        """Converse ``toolConfig``: one tool taking exactly ``n`` proposals, forced."""
        schema = {
            "type": "object",
            "properties": {
                "configs": {
                    "type": "array",
                    "items": self.space.json_schema(),
                    "minItems": n,
                    "maxItems": n,
                }
            },
            "required": ["configs"],
        }
        return {
            "tools": [{"toolSpec": {
                "name": TOOL_NAME,
                "description": f"Submit exactly {n} new strategy configs to evaluate next.",
                "inputSchema": {"json": schema},
            }}],
            "toolChoice": {"tool": {"name": TOOL_NAME}},
        }

    def prompt(self, history: pl.DataFrame, n: int, *, round_index: int) -> str:
        """The user message: the space, the shape of the search so far (the incumbent of
        each weight function, the parameters that mattered, the unexplored cells), the
        history table (every config up to :data:`MAX_ROWS`, else the best
        :data:`TOP_ROWS` and the latest round) and the request."""
        ordered = history.sort("evaluation_index")
        scored = history.filter(pl.col("objective").is_not_null())
        shown, caption = ordered, f"Configs evaluated so far ({ordered.height})"
        if ordered.height > MAX_ROWS:
            top = set(scored.sort("objective", descending=True)["config_id"].head(TOP_ROWS))
            last = int(ordered["round"].max())
            shown = ordered.filter(pl.col("config_id").is_in(top) | (pl.col("round") == last))
            caption = (f"The best {TOP_ROWS} and the latest round's configs, {shown.height} of"
                       f" the {ordered.height} evaluated")
        shape = search_landscape(history, self.space)
        unexplored = shape.unexplored.head(MAX_UNEXPLORED)
        return (
            f"Optimisation round {round_index}. The search space of one config (JSON"
            f" schema):\n{json.dumps(self.space.json_schema(), indent=1)}\n\n"
            "The incumbent (best config) of each weight function, best first, and how many"
            f" configs of each were evaluated:\n{markdown_table(shape.incumbents)}\n\n"
            "How much the mean objective moves across each parameter's bins (the other"
            " parameters averaged over what was evaluated), most influential first, and its"
            f" best bin:\n{markdown_table(shape.influence)}\n\n"
            f"Unexplored cells (no config evaluated; {shape.unexplored.height} in all, the"
            f" first {unexplored.height} shown):\n{markdown_table(unexplored)}\n\n"
            f"{caption}, in evaluation order, objective to maximise:\n"
            f"{markdown_table(shown, _HISTORY_COLUMNS)}\n\n"
            f"Call {TOOL_NAME} with exactly {n} new configs, none equal to a config"
            " evaluated before or to another in the batch: most of them close to the"
            " incumbents, varying the influential parameters in small steps; a few in"
            " unexplored cells."
        )

    def propose(
        self, history: pl.DataFrame, n: int, *, round_index: int, seed: int
    ) -> list[StrategyConfig]:
        """The next ``n`` configs; raises ProposalError or a BedrockError when the model's
        answer is unusable (the loop then falls back to tpe for the round).

        ``seed`` is part of the protocol but Bedrock cannot be seeded: temperature 0 makes
        the proposals nearly, not exactly, reproducible.
        """
        reply = self.client.converse(
            self.prompt(history, n, round_index=round_index),
            system=SYSTEM_PROMPT,
            tool_config=self.tool_config(n),
        )
        self.replies.append(reply)
        proposals = reply.tool_input(TOOL_NAME).get("configs")
        if not isinstance(proposals, list) or len(proposals) != n:
            count = len(proposals) if isinstance(proposals, list) else "no list of"
            raise ProposalError(f"{TOOL_NAME}: asked for {n} configs, got {count}")
        seen = set(history["config_id"].to_list()) if "config_id" in history.columns else set()
        configs = []
        for index, values in enumerate(proposals, start=1):
            config = self._config(index, n, values)
            if config.config_id in seen:
                raise ProposalError(
                    f"{TOOL_NAME}: proposal {index} of {n} repeats config {config.config_id}"
                )
            seen.add(config.config_id)
            configs.append(config)
        return configs

    def _config(self, index: int, n: int, values: Any) -> StrategyConfig:
        if not isinstance(values, Mapping):
            raise ProposalError(
                f"{TOOL_NAME}: proposal {index} of {n} is {type(values).__name__}, not an object"
            )
        try:
            return self.space.make_config(values, self.tc_bps)
        except (ConfigError, TypeError) as error:
            raise ProposalError(f"{TOOL_NAME}: proposal {index} of {n}: {error}") from error
