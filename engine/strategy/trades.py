"""The trades that move current equity/bond holdings to the rule's target weight.

Same rebalancing convention as engine.strategy.portfolio: a change below the no-trade
band is skipped; otherwise the cost tc_bps / 1e4 x (|dw_equity| + |dw_bond|) x NAV is
taken from NAV and the target weight applies to the NAV after cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine.validation import check_range


@dataclass(frozen=True, slots=True)
class Trades:
    """A rebalance of an equity/bond portfolio; weights are fractions of NAV.

    ``cost`` and the value changes are in the NAV's currency; the unit changes are
    None when no prices were given.
    """

    trade: bool
    nav: float
    current_equity_weight: float
    target_equity_weight: float
    new_equity_weight: float
    equity_weight_change: float
    bond_weight_change: float
    cost: float
    nav_after: float
    equity_value_change: float
    bond_value_change: float
    equity_units_change: float | None
    bond_units_change: float | None


def trades_to_target(
    target_equity_weight: float,
    *,
    nav: float | None = None,
    equity_weight: float | None = None,
    equity_units: float | None = None,
    bond_units: float | None = None,
    equity_price: float | None = None,
    bond_price: float | None = None,
    no_trade_band: float = 0.0,
    tc_bps: float = 0.0,
) -> Trades:
    """Trades from the current holdings to ``target_equity_weight``.

    Give the holdings either as units and prices (equity_units, bond_units, equity_price,
    bond_price) or as ``nav`` and ``equity_weight``.

    Notes
    -----
    With w the current equity weight, w* the target and dw = w* - w::

        no trade          if |dw| < no_trade_band
        cost c            = tc_bps / 1e4 x (|dw| + |-dw|) x NAV = tc_bps / 1e4 x 2 |dw| x NAV
        NAV after         = NAV - c
        equity value      = w* x NAV after      (change: w* (NAV - c) - w NAV)
        bond value        = (1 - w*) x NAV after
        units change      = value change / price

    The value changes sum to -c: the cost is paid out of the portfolio.
    """
    check_range("trades_to_target", "target_equity_weight", target_equity_weight, 0.0, 3.0)
    band = check_range("trades_to_target", "no_trade_band", no_trade_band, 0.0, 1.0)
    bps = check_range("trades_to_target", "tc_bps", tc_bps, 0.0, 500.0)
    target = float(target_equity_weight)
    if equity_units is not None or bond_units is not None:
        if None in (equity_units, bond_units, equity_price, bond_price):
            raise ValueError("trades_to_target: units need equity_units, bond_units,"
                             " equity_price and bond_price together")
        for name, price in (("equity_price", equity_price), ("bond_price", bond_price)):
            if not price > 0:  # type: ignore[operator]
                raise ValueError(f"trades_to_target: {name} = {price!r} must be positive")
        equity_value = float(equity_units) * float(equity_price)  # type: ignore[arg-type]
        bond_value = float(bond_units) * float(bond_price)  # type: ignore[arg-type]
        total = equity_value + bond_value
        if not total > 0:
            raise ValueError(f"trades_to_target: holdings are worth {total!r}; need > 0")
        weight = equity_value / total
    else:
        if nav is None or equity_weight is None:
            raise ValueError("trades_to_target: give nav and equity_weight, or units and prices")
        total = float(nav)
        if not total > 0:
            raise ValueError(f"trades_to_target: nav = {nav!r} must be positive")
        weight = float(equity_weight)
    change = target - weight
    trade = abs(change) >= band and change != 0.0
    if not trade:
        change = 0.0
    cost = bps / 1e4 * 2.0 * abs(change) * total
    nav_after = total - cost
    new_weight = target if trade else weight
    equity_change = new_weight * nav_after - weight * total
    bond_change = (1.0 - new_weight) * nav_after - (1.0 - weight) * total
    with_units = equity_price is not None and bond_price is not None
    return Trades(
        trade=trade,
        nav=total,
        current_equity_weight=weight,
        target_equity_weight=target,
        new_equity_weight=new_weight,
        equity_weight_change=change,
        bond_weight_change=-change,
        cost=cost,
        nav_after=nav_after,
        equity_value_change=equity_change,
        bond_value_change=bond_change,
        equity_units_change=equity_change / float(equity_price) if with_units else None,  # type: ignore[arg-type]
        bond_units_change=bond_change / float(bond_price) if with_units else None,  # type: ignore[arg-type]
    )


def trades_frame(trades: Trades) -> pl.DataFrame:
    """One row per asset: asset, current_weight, target_weight, new_weight, weight_change,
    value_change, units_change (null without prices), cost (the whole rebalance's cost on
    the equity row, 0 on the bond row, so the column sums to it)."""
    return pl.DataFrame(
        {
            "asset": ["equity", "bond"],
            "current_weight": [trades.current_equity_weight, 1.0 - trades.current_equity_weight],
            "target_weight": [trades.target_equity_weight, 1.0 - trades.target_equity_weight],
            "new_weight": [trades.new_equity_weight, 1.0 - trades.new_equity_weight],
            "weight_change": [trades.equity_weight_change, trades.bond_weight_change],
            "value_change": [trades.equity_value_change, trades.bond_value_change],
            "units_change": [trades.equity_units_change, trades.bond_units_change],
            "cost": [trades.cost, 0.0],
        },
        schema_overrides={"units_change": pl.Float64},
    )
