"""The portfolio spec: which assets the rule allocates between, and where each comes from.

An asset is an equity index, a government-bond bucket of one maturity, or cash. Equities
form the risky sleeve, bonds and cash the defensive sleeve. Each asset maps to a series of
the market data (``series``) or is simulated only (``series=None``). The default spec,
:data:`TWO_ASSET`, is the one equity index against the 7-year constant-maturity
zero-coupon bond index that the scenarios have always simulated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from engine.conventions import DT_DAY, TRADING_DAYS_PER_MONTH
from engine.validation import ConfigError, check_choice, check_range

AssetClass = Literal["equity", "government_bond", "cash"]
ASSET_CLASSES: tuple[str, ...] = get_args(AssetClass)
Roll = Literal["daily", "monthly"]
ROLLS: tuple[str, ...] = get_args(Roll)
DEFAULT_BOND_MATURITY = 7.0
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_HOLDING_YEARS = TRADING_DAYS_PER_MONTH * DT_DAY


@dataclass(frozen=True, slots=True)
class Asset:
    """One asset of the portfolio.

    Parameters
    ----------
    name : identifier used in every table and chart (lower case, digits, ``_``; <= 40).
    asset_class : "equity", "government_bond" or "cash".
    series : the market-data series it is mapped to (a column of the files/S3 source),
        or None for an asset that is only simulated.
    maturity_years : government bonds only: constant maturity T in (1/252, 50] years.
    coupon_rate : government bonds only: annual coupon c in [0, 0.2] paid once a year
        (0 = zero-coupon). A coupon bond's maturity has a fractional part of 0 or at
        least one month, so no coupon falls due while it is held.
    roll : government bonds only: "daily" (sell the (T - 1 day) bond, buy a fresh T-year
        one every day) or "monthly" (hold the T-year bond for 21 days, then roll).
    vol_ratio : equities only: its long-run vol over the regime's equity vol, in
        (0, 5]; its Heston variance theta and vol-of-vol scale by vol_ratio^2 and
        vol_ratio (the Feller ratio 2 kappa theta / sigma^2 of the regime is kept).
    drift_spread : equities only: added to the regime's physical equity drift, in [-0.5, 0.5].
    """

    name: str
    asset_class: AssetClass
    series: str | None = None
    maturity_years: float | None = None
    coupon_rate: float = 0.0
    roll: Roll = "daily"
    vol_ratio: float = 1.0
    drift_spread: float = 0.0

    def __post_init__(self) -> None:
        owner = f"Asset({self.name!r})"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"Asset.name = {self.name!r} must match {_NAME.pattern}")
        check_choice(owner, "asset_class", self.asset_class, ASSET_CLASSES)
        if self.series is not None and (not isinstance(self.series, str) or not self.series):
            raise ConfigError(f"{owner}.series = {self.series!r} must be a non-empty string"
                              " or None")
        set_ = object.__setattr__
        if self.asset_class == "government_bond":
            if self.maturity_years is None:
                raise ConfigError(f"{owner}.maturity_years is required for a government_bond")
            set_(self, "maturity_years", check_range(owner, "maturity_years",
                                                     self.maturity_years, DT_DAY, 50.0,
                                                     low_inclusive=False))
            set_(self, "coupon_rate", check_range(owner, "coupon_rate", self.coupon_rate,
                                                  0.0, 0.2))
            check_choice(owner, "roll", self.roll, ROLLS)
            fraction = self.maturity_years % 1.0
            if self.coupon_rate > 0 and 0.0 < fraction < _HOLDING_YEARS:
                raise ConfigError(
                    f"{owner}.maturity_years = {self.maturity_years:g}: a coupon bond's"
                    f" maturity needs a fractional part of 0 or >= {_HOLDING_YEARS:.4f}"
                    " years so no coupon falls due while it is held"
                )
        else:
            for name, neutral in (("maturity_years", None), ("coupon_rate", 0.0),
                                  ("roll", "daily")):
                if getattr(self, name) != neutral:
                    raise ConfigError(f"{owner}.{name} applies to government_bond assets only")
        if self.asset_class == "equity":
            set_(self, "vol_ratio", check_range(owner, "vol_ratio", self.vol_ratio, 0.0, 5.0,
                                                low_inclusive=False))
            set_(self, "drift_spread", check_range(owner, "drift_spread", self.drift_spread,
                                                   -0.5, 0.5))
        elif (self.vol_ratio, self.drift_spread) != (1.0, 0.0):
            raise ConfigError(f"{owner}.vol_ratio and drift_spread apply to equity assets only")


@dataclass(frozen=True, slots=True)
class PortfolioSpec:
    """The assets, the equities' correlation and the fixed base mixes.

    Parameters
    ----------
    assets : at least one equity and at least one bond or cash asset, names unique,
        at most one cash asset.
    equity_correlation : correlation of the equities' spot shocks, n_eq x n_eq in the
        order the equities appear in ``assets``; symmetric, unit diagonal, positive
        definite (estimate it with :func:`engine.portfolio.shrinkage.ledoit_wolf_correlation`).
        None means the identity, allowed only for a single equity.
    risky_weights, defensive_weights : the "fixed" base mix of each sleeve, non-negative
        and summing to 1 (to 1e-9), in asset order; None means equal weights.
    """

    assets: tuple[Asset, ...]
    equity_correlation: tuple[tuple[float, ...], ...] | None = None
    risky_weights: tuple[float, ...] | None = None
    defensive_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        owner = "PortfolioSpec"
        set_ = object.__setattr__
        set_(self, "assets", tuple(self.assets))
        if not all(isinstance(a, Asset) for a in self.assets):
            raise ConfigError(f"{owner}.assets must hold Asset values")
        names = [a.name for a in self.assets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"{owner}.assets: duplicate name(s) {', '.join(duplicates)}")
        n_eq, n_def = len(self.equities), len(self.defensive)
        if n_eq == 0 or n_def == 0:
            raise ConfigError(f"{owner}.assets needs at least one equity and at least one"
                              f" government_bond or cash asset (has {n_eq} and {n_def})")
        if sum(a.asset_class == "cash" for a in self.assets) > 1:
            raise ConfigError(f"{owner}.assets: at most one cash asset")
        set_(self, "equity_correlation", _correlation(owner, self.equity_correlation, n_eq))
        set_(self, "risky_weights", _mix(owner, "risky_weights", self.risky_weights, n_eq))
        set_(self, "defensive_weights",
             _mix(owner, "defensive_weights", self.defensive_weights, n_def))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.assets)

    @property
    def equities(self) -> tuple[Asset, ...]:
        """The risky sleeve, in asset order."""
        return tuple(a for a in self.assets if a.asset_class == "equity")

    @property
    def defensive(self) -> tuple[Asset, ...]:
        """The defensive sleeve (bond buckets and cash), in asset order."""
        return tuple(a for a in self.assets if a.asset_class != "equity")

    @property
    def ordered(self) -> tuple[Asset, ...]:
        """Equities first, then the defensive sleeve: the asset axis of every array."""
        return self.equities + self.defensive

    @property
    def is_two_asset(self) -> bool:
        """One equity at the regime's dynamics against one daily-rolled zero-coupon bond:
        the two-asset study, simulated and evaluated by its own code path."""
        eq, de = self.equities, self.defensive
        return (len(eq) == 1 and len(de) == 1 and eq[0].vol_ratio == 1.0
                and eq[0].drift_spread == 0.0 and de[0].asset_class == "government_bond"
                and de[0].coupon_rate == 0.0 and de[0].roll == "daily")

    def to_dict(self) -> dict[str, Any]:
        return {
            "assets": [
                {k: getattr(a, k) for k in Asset.__slots__} for a in self.assets  # type: ignore[attr-defined]
            ],
            "equity_correlation": _lists(self.equity_correlation),
            "risky_weights": _lists(self.risky_weights),
            "defensive_weights": _lists(self.defensive_weights),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PortfolioSpec:
        """Build from a mapping (run config, JSON); unknown keys are an error naming them."""
        allowed = {"assets", "equity_correlation", "risky_weights", "defensive_weights"}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise ConfigError(f"PortfolioSpec: unknown field(s) {', '.join(unknown)}")
        assets = []
        for i, item in enumerate(values.get("assets") or ()):
            extra = sorted(set(item) - set(Asset.__slots__))  # type: ignore[attr-defined]
            if extra:
                raise ConfigError(f"PortfolioSpec.assets[{i}]: unknown field(s)"
                                  f" {', '.join(extra)}")
            try:
                assets.append(Asset(**item))
            except TypeError as err:
                raise ConfigError(f"PortfolioSpec.assets[{i}]: {err}") from err
        return cls(
            assets=tuple(assets),
            equity_correlation=_tuples(values.get("equity_correlation")),
            risky_weights=_tuples(values.get("risky_weights")),
            defensive_weights=_tuples(values.get("defensive_weights")),
        )


def _correlation(owner: str, value: Any, n: int) -> tuple[tuple[float, ...], ...] | None:
    if value is None:
        if n > 1:
            raise ConfigError(f"{owner}.equity_correlation is required for {n} equities"
                              f" ({n} x {n}, positive definite)")
        return None
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape != (n, n) or not np.isfinite(matrix).all():
        raise ConfigError(f"{owner}.equity_correlation must be a finite {n} x {n} matrix"
                          f" (got shape {matrix.shape})")
    if not np.allclose(matrix, matrix.T, rtol=0, atol=1e-12) or not np.allclose(
        np.diag(matrix), 1.0, rtol=0, atol=1e-12
    ):
        raise ConfigError(f"{owner}.equity_correlation must be symmetric with a unit diagonal")
    if np.abs(matrix).max() > 1.0 or np.linalg.eigvalsh(matrix).min() <= 1e-10:
        raise ConfigError(f"{owner}.equity_correlation is not positive definite (smallest"
                          f" eigenvalue {np.linalg.eigvalsh(matrix).min():.3g}); estimate it"
                          " with shrinkage")
    return tuple(tuple(float(x) for x in row) for row in matrix)


def _mix(owner: str, name: str, value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    weights = tuple(check_range(owner, f"{name}[{i}]", w, 0.0, 1.0) for i, w in enumerate(value))
    if len(weights) != n or not math.isclose(sum(weights), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ConfigError(f"{owner}.{name} = {weights} must hold {n} weights summing to 1")
    return weights


def _lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_lists(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


TWO_ASSET = PortfolioSpec(
    assets=(
        Asset("equity", "equity", series="equity"),
        Asset("bond", "government_bond", series="bond", maturity_years=DEFAULT_BOND_MATURITY),
    )
)
"""The default: the equity index against the 7-year constant-maturity zero-coupon bond."""
