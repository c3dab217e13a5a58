"""The strategy's hyperparameters and its four weight functions (docs/engine.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from engine.types import FloatArray
from engine.validation import ConfigError, check_choice, check_int_range, check_range

WeightFn = Literal["inverse_vol", "inverse_vol_squared", "linear", "sigmoid"]
WEIGHT_FNS: tuple[str, ...] = get_args(WeightFn)
RISK_AVERSION_FNS: tuple[str, ...] = ("linear", "sigmoid")
"""The weight functions that use risk_aversion; the inverse rules ignore it."""
DEFAULT_RISK_AVERSION = 1.0
BaseMix = Literal["fixed", "inverse_vol", "risk_parity"]
BASE_MIXES: tuple[str, ...] = get_args(BaseMix)
DEFAULT_MIX = "fixed"
MIX_FIELDS: tuple[str, ...] = ("risky_mix", "defensive_mix")
"""How each sleeve of a multi-asset portfolio splits among its assets (engine.portfolio.mix);
a sleeve of one asset, as in the two-asset study, holds it whatever the mix."""


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """One vol-targeting rule. Vols are annualised decimals.

    Parameters
    ----------
    target_vol : tv, the volatility the rule aims for, in [0.01, 1].
    weight_fn : how the trailing realized vol rv maps to the equity weight.
    vol_window_months : trailing window of 21-day months of daily log returns, in [1, 60].
    risk_aversion : the k of linear and sigmoid as k = risk_aversion / target_vol, in (0, 50];
        None means 1.0 for them. The inverse rules ignore it, so it is normalised to None
        for inverse_vol and inverse_vol_squared whatever is passed: rules that behave the
        same share one config and one config_id.
    tc_bps : cost per unit of weight traded, in basis points, in [0, 500].
    min_allocation, max_allocation : clip range of the equity weight, within [0, 3].
    no_trade_band : skip a rebalance whose equity-weight change is below this, in [0, 1]
        (for several assets: whose one-way turnover sum |w* - w^d| / 2 is below it).
    risky_mix, defensive_mix : base mix of the equity sleeve and of the defensive sleeve
        (bonds, cash): "fixed" (the portfolio spec's weights), "inverse_vol" or
        "risk_parity" (equal risk contribution) from the trailing covariance over
        vol_window_months. Left out of :meth:`to_dict` (so of the config_id) when "fixed",
        so the two-asset study's configs keep their ids.
    """

    target_vol: float
    weight_fn: WeightFn
    vol_window_months: int
    risk_aversion: float | None = None
    tc_bps: float = 5.0
    min_allocation: float = 0.0
    max_allocation: float = 1.0
    no_trade_band: float = 0.0
    risky_mix: BaseMix = "fixed"
    defensive_mix: BaseMix = "fixed"

    def __post_init__(self) -> None:
        owner = "StrategyConfig"
        set_ = object.__setattr__
        set_(self, "target_vol", check_range(owner, "target_vol", self.target_vol, 0.01, 1.0))
        set_(self, "weight_fn", check_choice(owner, "weight_fn", self.weight_fn, WEIGHT_FNS))
        set_(self, "vol_window_months",
             check_int_range(owner, "vol_window_months", self.vol_window_months, 1, 60))
        if self.weight_fn not in RISK_AVERSION_FNS:
            set_(self, "risk_aversion", None)
        else:
            value = DEFAULT_RISK_AVERSION if self.risk_aversion is None else self.risk_aversion
            set_(self, "risk_aversion", check_range(owner, "risk_aversion", value, 0.0, 50.0,
                                                    low_inclusive=False))
        set_(self, "tc_bps", check_range(owner, "tc_bps", self.tc_bps, 0.0, 500.0))
        set_(self, "min_allocation",
             check_range(owner, "min_allocation", self.min_allocation, 0.0, 3.0))
        set_(self, "max_allocation", check_range(owner, "max_allocation", self.max_allocation,
                                                 self.min_allocation, 3.0))
        set_(self, "no_trade_band",
             check_range(owner, "no_trade_band", self.no_trade_band, 0.0, 1.0))
        for name in MIX_FIELDS:
            check_choice(owner, name, getattr(self, name), BASE_MIXES)

    @property
    def config_id(self) -> str:
        """A 10-hex-digit SHA-256 of the values: the same config always has the same id."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]

    @property
    def window_days(self) -> int:
        return self.vol_window_months * 21

    def to_dict(self) -> dict[str, Any]:
        """The fields as a mapping; a base mix at its default "fixed" is left out."""
        values = dataclasses.asdict(self)
        for name in MIX_FIELDS:
            if values[name] == DEFAULT_MIX:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StrategyConfig:
        """Build from a mapping; unknown keys are an error naming them."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"StrategyConfig: unknown field(s) {', '.join(unknown)}")
        return cls(**values)


def target_weights(realized_vol: FloatArray, config: StrategyConfig) -> FloatArray:
    """Equity weight from trailing realized vol rv (annualised), clipped to the allocation range.

    Notes
    -----
    With tv = target_vol and k = risk_aversion / tv:
    inverse_vol w = tv / rv; inverse_vol_squared w = (tv / rv)^2;
    linear w = max(0, 1 - k (rv - tv)); sigmoid w = 1 / (1 + exp(k (rv - tv))).
    rv = 0 gives the maximum allocation for the inverse rules.
    """
    tv, rv = config.target_vol, np.asarray(realized_vol, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        match config.weight_fn:
            case "inverse_vol":
                w = tv / rv
            case "inverse_vol_squared":
                w = (tv / rv) ** 2
            case "linear":
                w = np.maximum(0.0, 1.0 - weight_slope(config) * (rv - tv))
            case "sigmoid":
                w = 1.0 / (1.0 + np.exp(weight_slope(config) * (rv - tv)))
    return np.clip(w, config.min_allocation, config.max_allocation)


def weight_slope(config: StrategyConfig) -> float:
    """k = risk_aversion / target_vol of the linear and sigmoid rules (1 / annual vol)."""
    assert config.risk_aversion is not None  # set for every rule in RISK_AVERSION_FNS
    return config.risk_aversion / config.target_vol
