"""Markets: the regimes, Heston equity, Vasicek rates and bond index, scenario paths,
synthetic market data, market data validation, Heston pricing and calibration to a
surface, yield curves, calibration from history and the regime classifier."""
