"""Markets: the regimes, Heston equity, Vasicek rates and bond index, scenario paths,
synthetic market data and calibration from history."""
