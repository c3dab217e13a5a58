"""The shipped real samples (README.md here): the two-asset one in this folder, and the
portfolio one (engine.portfolio.examples.US_INDICES) in ``us_indices/``."""

from pathlib import Path

US_INDICES_DATA = Path(__file__).resolve().parent / "us_indices"
"""The S&P 500 and NASDAQ Composite series, the risk-free rate and holdings, 1999-2018."""
