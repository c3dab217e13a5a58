"""Validation of a pipeline-wide run config before any run starts.

A pipeline-wide run config has three sections, all optional::

    ops:        {asset: {config: {...}}}       the assets' Config classes
    resources:  {resource: {config: {...}}}    objectives, agent, bedrock, ...
    loggers:    {console: {config: {log_level: INFO}}}

Dagster itself checks only the shape and the types when a run is launched; ranges are
checked when the owning step starts. Everything the project launches (``make run``, the
schedules, the chaining sensor) validates the whole config first, so a bad value fails
before any work, naming the section, the asset or resource, and the field. Each block is
checked by its Config class (ranges, cross-field rules) and by Dagster's own config
checker on the block's schema, so the up-front check is as strict as the launch
(``n_paths: "200"``, which pydantic's lax mode would take as 200, is refused here, not
after the ingest stage has written).

A config is at most :data:`MAX_CONFIG_NODES` values counted with YAML aliases expanded
(a run's config is stored expanded, as JSON, in a run tag): the count stops at the
budget, so an alias bomb is refused in microseconds instead of expanding to gigabytes.
:class:`RunConfigLoader` reads YAML refusing duplicate keys.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pydantic
import yaml
from dagster._config import validate_config
from dagster._loggers import colored_console_logger

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
LOGGERS = {"console": colored_console_logger}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_CONFIG_NODES = 10_000
"""Values (mappings, lists, scalars) a run config may hold, aliases expanded; a full
config of every section and field is under 100."""


class RunConfigLoader(yaml.SafeLoader):
    """YAML's safe loader refusing a key given twice in one mapping (YAML keeps the last
    silently), naming the key and both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} on line {line} (first on line"
                    f" {seen[key]}): each key may appear once in a mapping",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def check_size(run_config: Any, budget: int = MAX_CONFIG_NODES) -> None:
    """Raise ConfigError when ``run_config`` holds more than ``budget`` values with shared
    (aliased) parts counted at every place they appear; stops counting at the budget."""
    left = budget
    stack = [run_config]
    while stack:
        left -= 1
        if left < 0:
            raise ConfigError(
                f"run config: more than {budget} values once YAML aliases are expanded;"
                " a run config is a few dozen values (is an alias repeated in a loop?)")
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)


def validate_run_config(run_config: Any) -> None:
    """Raise ConfigError naming the first problem of a pipeline-wide run config."""
    if not isinstance(run_config, dict):
        raise ConfigError(f"run config must be a mapping, got {type(run_config).__name__}")
    check_size(run_config)
    unknown_top = sorted(set(run_config) - {*SECTIONS, "loggers"})
    if unknown_top:
        raise ConfigError(
            f"run config: unknown section(s) {', '.join(unknown_top)}; allowed: ops,"
            " resources, loggers"
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
    _validate_paths_memory(run_config.get("ops") or {})
    _validate_loggers(run_config.get("loggers"))


def _validate_paths_memory(ops: dict) -> None:
    """The scenario paths sized for the run config's portfolio (ops.market_data.config.
    portfolio): a multi-asset portfolio stores more arrays per path than the two-asset
    study ScenarioPathsConfig checks on its own."""
    portfolio = ((ops.get("market_data") or {}).get("config") or {}).get("portfolio")
    if not portfolio:
        return
    spec = MarketDataConfig(portfolio=portfolio).portfolio.spec()  # type: ignore[union-attr]
    paths = ScenarioPathsConfig(**((ops.get("scenario_paths") or {}).get("config") or {}))
    refusal = paths.memory_refusal(spec)
    if refusal:
        raise ConfigError(f"run config ops.scenario_paths.config: {refusal} (portfolio from"
                          " ops.market_data.config.portfolio)")


def _validate_loggers(loggers: Any) -> None:
    if not loggers:
        return
    if not isinstance(loggers, dict):
        raise ConfigError("run config loggers: must be a mapping of logger names to blocks")
    for name, block in loggers.items():
        logger = LOGGERS.get(name)
        if logger is None:
            raise ConfigError(f"run config loggers.{name}: unknown logger; configurable:"
                              f" {', '.join(LOGGERS)}")
        if not isinstance(block, dict) or set(block) - {"config"}:
            raise ConfigError(
                f"run config loggers.{name}: expected {{config: {{...}}}}, got {block!r}")
        values = block.get("config") or {}
        _check_types(f"loggers.{name}", logger.config_schema.config_type, values)
        level = values.get("log_level", "INFO")
        if level.upper() not in LOG_LEVELS:
            raise ConfigError(f"run config loggers.{name}.config: log_level: {level!r} is not"
                              f" a log level; allowed: {', '.join(LOG_LEVELS)}")


def _check_types(where: str, config_type: Any, values: Any) -> None:
    """Dagster's own check of ``values`` against a block's config schema (shape, types,
    enum values), as at launch, as a ConfigError naming ``where``."""
    result = validate_config(config_type, values)
    if not result.success:
        details = "; ".join(error.message for error in result.errors or [])
        raise ConfigError(f"run config {where}.config: {details}")


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
    _check_types(where, config_class.to_config_schema().as_field().config_type, values)


def _describe(error: Any) -> str:
    """One pydantic error as '<field>: <message> (got <value>)', or the message alone
    for a check of the whole config (whose message names its field)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message} (got {error.get('input')!r})"
