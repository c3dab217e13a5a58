"""The hyperparameter space the agent searches, and the one way a proposal becomes a config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.strategy.config import (
    BASE_MIXES,
    DEFAULT_MIX,
    MIX_FIELDS,
    RISK_AVERSION_FNS,
    WEIGHT_FNS,
    StrategyConfig,
)
from engine.validation import ConfigError, check_choice, check_int_range, check_range

PARAMETERS: tuple[str, ...] = ("weight_fn", "target_vol", "vol_window_months", "risk_aversion")
"""The searched parameters, the keys of a proposal. Transaction costs are not among them:
every config is ranked at the objectives' assumed_tc_bps."""

TARGET_VOL_DECIMALS = 4
RISK_AVERSION_DECIMALS = 3


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """Ranges of the searched hyperparameters (the defaults of docs/optimisation.md).

    Parameters
    ----------
    target_vol : (low, high) of the annualised target vol, within [0.01, 1].
    vol_window_months : (low, high) of the integer trailing window in months, within [1, 60].
    risk_aversion : (low, high) of the linear and sigmoid rules' risk aversion, within
        (0, 50]; a conditional parameter, searched only for those two rules.
    weight_fns : the weight functions searched, a non-empty subset of WEIGHT_FNS.
    risky_mixes, defensive_mixes : the base mixes searched for the equity and the
        defensive sleeve, non-empty subsets of BASE_MIXES; ("fixed",) (the default, and
        all a two-asset portfolio needs: a sleeve of one asset holds it whatever the mix)
        leaves the parameter out of the search. See :attr:`parameters`.
    min_allocation, max_allocation, no_trade_band : fixed, copied into every config.

    Continuous values are rounded (target_vol to 4 decimals, risk_aversion to 3) so
    configs read well and their ids are short hashes of what is shown.
    """

    target_vol: tuple[float, float] = (0.05, 0.20)
    vol_window_months: tuple[int, int] = (6, 24)
    risk_aversion: tuple[float, float] = (0.5, 5.0)
    weight_fns: tuple[str, ...] = WEIGHT_FNS
    risky_mixes: tuple[str, ...] = (DEFAULT_MIX,)
    defensive_mixes: tuple[str, ...] = (DEFAULT_MIX,)
    min_allocation: float = 0.0
    max_allocation: float = 1.0
    no_trade_band: float = 0.0

    def __post_init__(self) -> None:
        owner = "SearchSpace"
        limits = {"target_vol": (0.01, 1.0), "risk_aversion": (1e-6, 50.0)}
        for field, (low, high) in limits.items():
            lo, hi = getattr(self, field)
            check_range(owner, f"{field}[0]", lo, low, high)
            check_range(owner, f"{field}[1]", hi, lo, high)
        lo, hi = self.vol_window_months
        check_int_range(owner, "vol_window_months[0]", lo, 1, 60)
        check_int_range(owner, "vol_window_months[1]", hi, lo, 60)
        if not self.weight_fns or set(self.weight_fns) - set(WEIGHT_FNS):
            raise ConfigError(
                f"SearchSpace.weight_fns = {self.weight_fns!r} must be a non-empty subset of"
                f" {', '.join(WEIGHT_FNS)}"
            )
        for field, choices in zip(("risky_mixes", "defensive_mixes"), self.mix_choices(),
                                  strict=True):
            if not choices or set(choices) - set(BASE_MIXES) or len(set(choices)) < len(
                choices
            ):
                raise ConfigError(
                    f"SearchSpace.{field} = {choices!r} must be a non-empty subset of"
                    f" {', '.join(BASE_MIXES)} without repeats"
                )
        check_range(owner, "min_allocation", self.min_allocation, 0.0, 3.0)
        check_range(owner, "max_allocation", self.max_allocation, self.min_allocation, 3.0)
        check_range(owner, "no_trade_band", self.no_trade_band, 0.0, 1.0)

    def mix_choices(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The choices of each field of MIX_FIELDS, in that order."""
        return self.risky_mixes, self.defensive_mixes

    @property
    def searched_mixes(self) -> tuple[str, ...]:
        """The fields of MIX_FIELDS with more than one choice: searched parameters."""
        return tuple(name for name, choices in zip(MIX_FIELDS, self.mix_choices(), strict=True)
                     if len(choices) > 1)

    @property
    def parameters(self) -> tuple[str, ...]:
        """The keys of a proposal: PARAMETERS, then the searched mixes."""
        return PARAMETERS + self.searched_mixes

    def make_config(self, values: Mapping[str, Any], tc_bps: float) -> StrategyConfig:
        """The config of one proposal, rounded and checked against the space.

        Parameters
        ----------
        values : a proposal: weight_fn, target_vol, vol_window_months and, for linear and
            sigmoid, risk_aversion (a risk_aversion given for an inverse rule is ignored:
            the rule does not use it); risky_mix and defensive_mix, which may be left out
            when the space has one choice for them. Python or numpy scalars.
        tc_bps : the transaction-cost assumption, basis points per unit traded.

        Raises
        ------
        ConfigError naming the field and its allowed range (``SearchSpace.target_vol =
        0.3 is outside the allowed range [0.05, 0.2]``), a missing field, or unknown keys.
        """
        owner = "SearchSpace"
        unknown = sorted(set(values) - set(PARAMETERS) - set(MIX_FIELDS))
        if unknown:
            raise ConfigError(f"{owner}: unknown field(s) {', '.join(unknown)}; the fields are"
                              f" {', '.join(self.parameters)}")
        mixes = {
            name: check_choice(owner, name, values.get(name, choices[0] if len(choices) == 1
                                                       else None), choices)
            for name, choices in zip(MIX_FIELDS, self.mix_choices(), strict=True)
        }
        weight_fn = check_choice(owner, "weight_fn", values.get("weight_fn"), self.weight_fns)
        risk_aversion = None
        if weight_fn in RISK_AVERSION_FNS:
            risk_aversion = _rounded("risk_aversion", values.get("risk_aversion"),
                                     self.risk_aversion, RISK_AVERSION_DECIMALS)
        return StrategyConfig(
            target_vol=_rounded("target_vol", values.get("target_vol"), self.target_vol,
                                TARGET_VOL_DECIMALS),
            weight_fn=weight_fn,  # type: ignore[arg-type]
            vol_window_months=check_int_range(owner, "vol_window_months",
                                              values.get("vol_window_months"),
                                              *self.vol_window_months),
            risk_aversion=risk_aversion,
            tc_bps=tc_bps,
            min_allocation=self.min_allocation,
            max_allocation=self.max_allocation,
            no_trade_band=self.no_trade_band,
            **mixes,  # type: ignore[arg-type]
        )

    def validate(self, config: StrategyConfig) -> None:
        """Raise ConfigError unless ``config`` is a point of the space: its parameters in
        range and rounded as :meth:`make_config` rounds them, its fixed fields the space's."""
        values = {name: getattr(config, name) for name in PARAMETERS + MIX_FIELDS}
        if self.make_config(values, config.tc_bps) != config:
            raise ConfigError(
                f"SearchSpace: config {config.config_id} is not a point of the space"
                f" (allocation range {self.min_allocation:g}-{self.max_allocation:g},"
                f" no-trade band {self.no_trade_band:g}, target_vol to"
                f" {TARGET_VOL_DECIMALS} decimals, risk_aversion to {RISK_AVERSION_DECIMALS},"
                f" base mixes {'/'.join(self.risky_mixes)} and {'/'.join(self.defensive_mixes)})"
            )

    def json_schema(self) -> dict[str, Any]:
        """JSON schema (draft 2020-12 subset) of one proposal, for an LLM's tool call."""
        tv_lo, tv_hi = self.target_vol
        ra_lo, ra_hi = self.risk_aversion
        win_lo, win_hi = self.vol_window_months
        properties: dict[str, Any] = {
            "weight_fn": {
                "type": "string",
                "enum": list(self.weight_fns),
                "description": "How trailing realized vol rv maps to the equity weight:"
                " inverse_vol tv/rv, inverse_vol_squared (tv/rv)^2,"
                " linear max(0, 1 - k (rv - tv)), sigmoid 1/(1 + exp(k (rv - tv))),"
                " with k = risk_aversion / tv.",
            },
            "target_vol": {
                "type": "number",
                "minimum": tv_lo,
                "maximum": tv_hi,
                "description": "tv, the annualised volatility the rule aims for, as a"
                f" decimal (0.10 = 10%); rounded to {TARGET_VOL_DECIMALS} decimals.",
            },
            "vol_window_months": {
                "type": "integer",
                "minimum": win_lo,
                "maximum": win_hi,
                "description": "Trailing window of daily returns for rv, in months.",
            },
            "risk_aversion": {
                "type": ["number", "null"],
                "minimum": ra_lo,
                "maximum": ra_hi,
                "description": "Steepness of linear and sigmoid (k = risk_aversion / tv);"
                " required for them; null for inverse_vol and inverse_vol_squared,"
                f" which ignore it. Rounded to {RISK_AVERSION_DECIMALS} decimals.",
            },
        }
        sleeves = {"risky_mix": "the equity sleeve", "defensive_mix": "the bond/cash sleeve"}
        for name, choices in zip(MIX_FIELDS, self.mix_choices(), strict=True):
            if name in self.searched_mixes:
                properties[name] = {
                    "type": "string",
                    "enum": list(choices),
                    "description": f"How {sleeves[name]} splits among its assets: fixed"
                    " (the portfolio's weights), inverse_vol (1/vol), risk_parity (equal"
                    " risk contribution), from the trailing covariance.",
                }
        return {
            "type": "object",
            "description": "One volatility-targeting rule to evaluate in every scenario.",
            "properties": properties,
            "required": list(self.parameters),
            "additionalProperties": False,
        }


def _rounded(field: str, value: object, bounds: tuple[float, float], decimals: int) -> float:
    """``value`` checked against ``bounds``, rounded, and checked again."""
    lo, hi = bounds
    number = round(check_range("SearchSpace", field, value, lo, hi), decimals)
    return check_range("SearchSpace", field, number, lo, hi)
