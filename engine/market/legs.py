"""The non-equity leg: the asset the rule holds besides equity, in simulation and live.

What is simulated is what is deployed: with a bond index in the market data, the
scenarios' non-equity leg is the simulated constant-maturity government bond index and
the live signal holds the bond index; without one, both hold cash at the risk-free rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal, get_args

DefensiveLeg = Literal["bond", "cash"]
DEFENSIVE_LEGS: Final[tuple[str, ...]] = get_args(DefensiveLeg)
LEG_LABELS: Final[dict[str, str]] = {"bond": "government bonds", "cash": "cash"}
"""How every report names the leg: "government bonds" only for a bond index."""
BOND_COLUMN: Final[str] = "bond_close"
"""The market-data column of the bond index level."""


def leg_of(columns: Iterable[str]) -> DefensiveLeg:
    """The leg a market-data table supports: "bond" when it has a bond index column
    (bond_close), "cash" (at its risk_free rate) when it does not."""
    return "bond" if BOND_COLUMN in set(columns) else "cash"


def leg_label(leg: str) -> str:
    """"government bonds" or "cash"; ValueError naming the allowed legs otherwise."""
    if leg not in LEG_LABELS:
        raise ValueError(f"defensive leg {leg!r} is not one of {', '.join(DEFENSIVE_LEGS)}")
    return LEG_LABELS[leg]
