"""Shipped multi-asset portfolios: two US equity indices against cash (the real sample's),
and three equity regions against three Treasury buckets."""

from __future__ import annotations

from engine.portfolio.spec import Asset, PortfolioSpec

US_INDICES = PortfolioSpec(
    assets=(
        Asset("sp500", "equity", series="sp500"),
        Asset("nasdaq", "equity", series="nasdaq", vol_ratio=1.32),
        Asset("cash", "cash"),
    ),
    equity_correlation=((1.0, 0.88), (0.88, 1.0)),
    risky_weights=(0.75, 0.25),
)
"""The S&P 500 and the NASDAQ Composite against cash: the portfolio of the shipped real
sample (dynalloc_dagster/sample_data/us_indices, 1999-2018). The NASDAQ's vol ratio and
the correlation are those of the sample's daily log returns (1.32 and 0.88, annualised
vols 19.1% and 25.2%; engine.portfolio.calibration.calibrate_equities gives them)."""

GLOBAL_SIX = PortfolioSpec(
    assets=(
        Asset("us_equity", "equity", series="us_equity"),
        Asset("europe_equity", "equity", series="europe_equity", vol_ratio=1.15,
              drift_spread=-0.005),
        Asset("em_equity", "equity", series="em_equity", vol_ratio=1.45, drift_spread=0.01),
        Asset("ust_2y", "government_bond", series="ust_2y", maturity_years=2.0),
        Asset("ust_5y", "government_bond", series="ust_5y", maturity_years=5.0),
        Asset("ust_10y", "government_bond", series="ust_10y", maturity_years=10.0),
    ),
    equity_correlation=((1.0, 0.78, 0.66), (0.78, 1.0, 0.70), (0.66, 0.70, 1.0)),
    risky_weights=(0.6, 0.25, 0.15),
)
"""US, Europe and emerging-market equity (60/25/15 when the mix is fixed) with
correlations and vol ratios of the order of their 2000-2024 daily history, against 2-, 5-
and 10-year constant-maturity Treasury zero buckets (equal weights when fixed)."""
