"""Market regimes: the five named scenarios (docs/regimes.md), and user-defined ones.

A regime fixes the physical-measure dynamics of one scenario: a Heston equity
total-return index, a Vasicek short rate mean-reverting to the regime's rate, and a
constant-maturity government-bond index priced off that rate. docs/regimes.md gives
the table and the reasons behind the project's choices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from engine.validation import ConfigError, check_range


@dataclass(frozen=True, slots=True)
class Regime:
    """One market regime. Rates and vols are annualised decimals (0.03 = 3%).

    Parameters
    ----------
    name : identifier, lowercase letters, digits and underscores.
    equity_drift : mu, the expected arithmetic return of the equity index, E[S_T] = S_0 e^{mu T}.
    equity_vol : long-run equity volatility; Heston theta = v0 = equity_vol**2.
    short_rate : the rate r_0 = theta_r the Vasicek short rate starts at and reverts to.
    equity_bond_corr : rho, correlation of equity and bond-index returns; the short-rate
        shock has correlation -rho with the equity shock (bond prices fall when rates rise).
    heston_kappa : mean-reversion speed of the variance, per year.
    vol_of_vol : Heston sigma, the volatility of the variance.
    spot_variance_corr : Heston rho between the equity shock and the variance shock.
    rate_mean_reversion : Vasicek kappa_r, per year.
    rate_vol : Vasicek sigma_r, absolute (0.01 = 100 bp a year).
    rate_risk_premium : lambda, the bond's expected excess return per unit of its
        volatility; a zero-coupon bond of maturity tau earns r + lambda sigma_r B(tau).
    dividend_yield : q, used only for risk-neutral simulation (drift r - q).
    """

    name: str
    equity_drift: float
    equity_vol: float
    short_rate: float
    equity_bond_corr: float
    heston_kappa: float = 2.0
    vol_of_vol: float = 0.3
    spot_variance_corr: float = -0.7
    rate_mean_reversion: float = 0.15
    rate_vol: float = 0.01
    rate_risk_premium: float = 0.25
    dividend_yield: float = 0.02

    def __post_init__(self) -> None:
        owner = f"Regime[{self.name!r}]"
        if not isinstance(self.name, str) or not self.name.replace("_", "").isalnum():
            raise ConfigError(
                f"Regime.name = {self.name!r} must be letters, digits and underscores"
            )
        checks = {
            "equity_drift": (-1.0, 1.0, True),
            "equity_vol": (0.0, 2.0, False),
            "short_rate": (-0.05, 0.25, True),
            "equity_bond_corr": (-0.99, 0.99, True),
            "heston_kappa": (0.0, 50.0, False),
            "vol_of_vol": (0.0, 5.0, False),
            "spot_variance_corr": (-0.99, 0.99, True),
            "rate_mean_reversion": (0.0, 10.0, False),
            "rate_vol": (0.0, 0.2, False),
            "rate_risk_premium": (-2.0, 2.0, True),
            "dividend_yield": (0.0, 0.2, True),
        }
        for field, (low, high, low_inclusive) in checks.items():
            object.__setattr__(
                self,
                field,
                check_range(owner, field, getattr(self, field), low, high,
                            low_inclusive=low_inclusive),
            )
        try:
            np.linalg.cholesky(self.shock_correlation())
        except np.linalg.LinAlgError as err:
            raise ConfigError(
                f"{owner}: equity_bond_corr = {self.equity_bond_corr} and spot_variance_corr"
                f" = {self.spot_variance_corr} give no valid correlation matrix"
            ) from err

    @property
    def variance(self) -> float:
        """Heston long-run and initial variance theta = v0 = equity_vol**2."""
        return self.equity_vol**2

    @property
    def feller_satisfied(self) -> bool:
        """Whether 2 kappa theta > sigma^2 (the variance never reaches zero)."""
        return 2.0 * self.heston_kappa * self.variance > self.vol_of_vol**2

    def shock_correlation(self) -> np.ndarray:
        """Correlation of the (variance, equity, short-rate) Gaussian shocks, shape (3, 3).

        Notes
        -----
        corr(Z_v, Z_S) = rho_sv, corr(Z_S, Z_r) = -rho (the sign convention of docs/regimes.md)
        and
        corr(Z_v, Z_r) = -rho rho_sv: the rate shock meets the variance shock only through
        the equity shock, which keeps the matrix positive definite for every
        |rho|, |rho_sv| < 1.
        """
        rho_sv, rho = self.spot_variance_corr, self.equity_bond_corr
        return np.array(
            [
                [1.0, rho_sv, -rho * rho_sv],
                [rho_sv, 1.0, -rho],
                [-rho * rho_sv, -rho, 1.0],
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """The regime as a plain mapping, the inverse of :func:`regime_from_mapping`."""
        return dataclasses.asdict(self)


_FIELDS = frozenset(f.name for f in dataclasses.fields(Regime))


def regime_from_mapping(values: Mapping[str, Any], *, name: str | None = None) -> Regime:
    """Build a regime from a mapping (a parsed YAML/JSON block); unknown keys are errors."""
    data = dict(values)
    if name is not None:
        data.setdefault("name", name)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ConfigError(
            f"Regime {data.get('name')!r}: unknown field(s) {', '.join(unknown)};"
            f" allowed: {', '.join(sorted(_FIELDS))}"
        )
    missing = sorted(
        f.name
        for f in dataclasses.fields(Regime)
        if f.default is dataclasses.MISSING and f.name not in data
    )
    if missing:
        raise ConfigError(f"Regime {data.get('name')!r}: missing field(s) {', '.join(missing)}")
    return Regime(**data)


def regimes_from_mapping(values: Mapping[str, Mapping[str, Any]]) -> dict[str, Regime]:
    """Build ``{name: Regime}`` from ``{name: {field: value}}``, e.g. a YAML document."""
    return {name: regime_from_mapping(fields, name=name) for name, fields in values.items()}


REGIMES: Mapping[str, Regime] = MappingProxyType(
    {
        "base": Regime("base", equity_drift=0.08, equity_vol=0.18, short_rate=0.03,
                       equity_bond_corr=-0.3),
        "bull": Regime("bull", equity_drift=0.15, equity_vol=0.12, short_rate=0.02,
                       equity_bond_corr=0.0),
        "bear": Regime("bear", equity_drift=-0.05, equity_vol=0.35, short_rate=0.01,
                       equity_bond_corr=-0.6),
        "high_vol": Regime("high_vol", equity_drift=0.05, equity_vol=0.40, short_rate=0.02,
                           equity_bond_corr=-0.5),
        "low_vol": Regime("low_vol", equity_drift=0.07, equity_vol=0.08, short_rate=0.04,
                          equity_bond_corr=0.2),
    }
)
"""The five named regimes (docs/regimes.md); high_vol and low_vol rate/correlation cells are
project choices documented in docs/regimes.md."""
