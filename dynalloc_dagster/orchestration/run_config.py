"""Validation of a pipeline-wide run config before any run starts.

A pipeline-wide run config has two sections, both optional::

    ops:        {asset: {config: {...}}}       the assets' Config classes
    resources:  {resource: {config: {...}}}    objectives, agent, bedrock, ...

Dagster itself checks only the shape and the types when a run is launched; ranges are
checked when the owning step starts. Everything the project launches (``make run``, the
schedules, the chaining sensor) validates the whole config first, so a bad value fails
before any work, naming the section, the asset or resource, and the field.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pydantic

from dynalloc_dagster.assets.ingestion import MarketDataConfig
from dynalloc_dagster.assets.scenarios import MarketRegimesConfig, ScenarioPathsConfig
from dynalloc_dagster.assets.strategies import StrategyConfigsConfig
from dynalloc_dagster.bedrock.resource import BedrockResource
from dynalloc_dagster.resources import MarketDataSource, ObjectivesResource, OptimisationAgent
from engine.validation import ConfigError

CONFIG_CLASSES: dict[str, type[dg.Config]] = {
    "market_data": MarketDataConfig,
    "market_regimes": MarketRegimesConfig,
    "scenario_paths": ScenarioPathsConfig,
    "strategy_configs": StrategyConfigsConfig,
}
RESOURCE_CLASSES: dict[str, type[dg.ConfigurableResource]] = {
    "objectives": ObjectivesResource,
    "agent": OptimisationAgent,
    "bedrock": BedrockResource,
    "market_source": MarketDataSource,
}
SECTIONS = {"ops": CONFIG_CLASSES, "resources": RESOURCE_CLASSES}


def validate_run_config(run_config: Any) -> None:
    """Raise ConfigError naming the first problem of a pipeline-wide run config."""
    if not isinstance(run_config, dict):
        raise ConfigError(f"run config must be a mapping, got {type(run_config).__name__}")
    unknown_top = sorted(set(run_config) - {*SECTIONS, "loggers"})
    if unknown_top:
        raise ConfigError(
            f"run config: unknown section(s) {', '.join(unknown_top)}; allowed: ops, resources"
        )
    for section, classes in SECTIONS.items():
        blocks = run_config.get(section) or {}
        if not isinstance(blocks, dict):
            raise ConfigError(f"run config {section}: must be a mapping of names to blocks")
        for name, block in blocks.items():
            config_class = classes.get(name)
            if config_class is None:
                raise ConfigError(
                    f"run config {section}.{name}: not configurable; configurable:"
                    f" {', '.join(classes)}"
                )
            _validate_block(f"{section}.{name}", config_class, block)


def _validate_block(where: str, config_class: type, block: Any) -> None:
    if not isinstance(block, dict) or set(block) - {"config"}:
        raise ConfigError(f"run config {where}: expected {{config: {{...}}}}, got {block!r}")
    values = block.get("config") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"run config {where}.config: must be a mapping, got {values!r}")
    known = set(config_class.model_fields)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"run config {where}.config: unknown field(s) {', '.join(unknown)}; allowed:"
            f" {', '.join(sorted(known))}"
        )
    try:
        config_class(**values)
    except pydantic.ValidationError as error:
        details = "; ".join(_describe(e) for e in error.errors())
        raise ConfigError(f"run config {where}.config: {details}") from None
    except ConfigError as error:
        raise ConfigError(f"run config {where}.config: {error}") from None


def _describe(error: Any) -> str:
    """One pydantic error as '<field>: <message> (got <value>)', or the message alone
    for a check of the whole config (whose message names its field)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message} (got {error.get('input')!r})"
