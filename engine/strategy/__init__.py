"""The vol-targeting strategy: its config and weight functions, the portfolio simulation,
metrics, evaluation over scenario paths, and the historical backtest."""

from engine.strategy.config import WEIGHT_FNS, StrategyConfig, WeightFn, target_weights
from engine.strategy.evaluation import (
    CONFIG_COLUMNS,
    config_from_row,
    evaluate,
    market_from_paths,
    metrics_table,
)

__all__ = [
    "CONFIG_COLUMNS",
    "WEIGHT_FNS",
    "StrategyConfig",
    "WeightFn",
    "config_from_row",
    "evaluate",
    "market_from_paths",
    "metrics_table",
    "target_weights",
]
