"""Equities calibrated from a joint history: vol ratios and the shrunk correlation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.portfolio.calibration import calibrate_equities
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.shrinkage import ledoit_wolf_correlation


def test_recovers_vol_ratios_and_correlation():
    rng = np.random.default_rng(4)
    vols = np.array([0.16, 0.20, 0.26]) / np.sqrt(252)
    corr = np.array([[1, .8, .6], [.8, 1, .7], [.6, .7, 1]])
    x = rng.multivariate_normal(np.zeros(3), np.outer(vols, vols) * corr, 5000)
    fitted = calibrate_equities(GLOBAL_SIX, x)
    ratios = [a.vol_ratio for a in fitted.equities]
    # sample vol ratios of 5000 days: SE of a log-vol ~ 1/sqrt(2n) = 1%
    np.testing.assert_allclose(ratios, [1.0, 1.25, 1.625], rtol=0.04)
    assert ratios[0] == 1.0
    np.testing.assert_allclose(fitted.equity_correlation, ledoit_wolf_correlation(x),
                               rtol=1e-15)
    np.testing.assert_allclose(fitted.equity_correlation, corr, atol=0.03)
    assert [a.drift_spread for a in fitted.equities] == [a.drift_spread
                                                          for a in GLOBAL_SIX.equities]
    assert fitted.defensive == GLOBAL_SIX.defensive


def test_short_or_misshaped_history_raises():
    with pytest.raises(ValueError, match="one column per equity"):
        calibrate_equities(GLOBAL_SIX, np.zeros((100, 2)))
    with pytest.raises(ValueError, match="at least 63"):
        calibrate_equities(GLOBAL_SIX, np.full((20, 3), 0.01))
