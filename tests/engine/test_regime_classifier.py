"""engine.market.regime_classifier on data simulated from each regime."""

from __future__ import annotations

import collections
import math

import numpy as np
import polars as pl
import pytest

from engine.market.paths import simulate_scenario
from engine.market.regime_classifier import classify_regime, regime_distance
from engine.market.regimes import REGIMES, Regime


@pytest.mark.parametrize("name", list(REGIMES))
def test_a_year_of_each_regime_is_mostly_classified_as_itself(name: str) -> None:
    # 20 one-year paths per regime (Heston variance wanders, so some years look like a
    # neighbour); the regime itself must be the most frequent answer and win half or more
    paths = simulate_scenario(REGIMES[name], 20, 3, warmup_months=0, horizon_years=1)
    votes = collections.Counter(
        classify_regime(pl.DataFrame({"close": paths.equity[i], "bond_close": paths.bond[i]}))
        .regime for i in range(20))
    assert votes.most_common(1)[0][0] == name, votes
    assert votes[name] >= 10, votes


def test_distance_is_the_documented_z_score_norm() -> None:
    regime = Regime("r", equity_drift=0.05, equity_vol=0.2, short_rate=0.02,
                    equity_bond_corr=-0.5)
    features = {"realised_vol": 0.22, "drift": 0.15, "equity_bond_corr": -0.3}
    n = 252
    z_vol = 0.02 / (0.2 / math.sqrt(2 * n))
    z_drift = 0.10 / (0.2 / math.sqrt(1.0))
    z_corr = 0.2 / (0.75 / math.sqrt(n))
    expected = math.sqrt(z_vol**2 + z_drift**2 + z_corr**2)
    assert regime_distance(features, regime, n) == pytest.approx(expected, rel=1e-14)
    # without a bond index the correlation term drops out
    no_bond = {"realised_vol": 0.22, "drift": 0.15}
    assert regime_distance(no_bond, regime, n) == pytest.approx(math.hypot(z_vol, z_drift),
                                                                 rel=1e-14)


def test_short_history_is_refused() -> None:
    with pytest.raises(ValueError, match="needs 253 rows"):
        classify_regime(pl.DataFrame({"close": [1.0] * 100}))


def _two_years(first: str, second: str, n_paths: int, seed: int) -> list[pl.DataFrame]:
    """Two simulated years back to back, per path: a year of ``first`` then a year of
    ``second`` (rescaled to start where the first ended)."""
    one = simulate_scenario(REGIMES[first], n_paths, seed, warmup_months=0, horizon_years=1)
    two = simulate_scenario(REGIMES[second], n_paths, seed + 1, warmup_months=0,
                            horizon_years=1)
    histories = []
    for i in range(n_paths):
        equity = np.concatenate([one.equity[i], two.equity[i][1:] * one.equity[i][-1]
                                 / two.equity[i][0]])
        bond = np.concatenate([one.bond[i], two.bond[i][1:] * one.bond[i][-1] / two.bond[i][0]])
        histories.append(pl.DataFrame({"close": equity, "bond_close": bond}))
    return histories


@pytest.mark.parametrize(("first", "second", "answers"),
                         [("low_vol", "high_vol", {"high_vol", "bear"}),
                          ("high_vol", "low_vol", {"low_vol", "bull"})])
def test_the_last_year_is_classified_not_the_first(first: str, second: str,
                                                   answers: set[str]) -> None:
    """Two years of history, a calm one and a volatile one (8% and 40% vol): the default
    one-year window reads the last year (its realised vol is the second regime's)."""
    for history in _two_years(first, second, 5, seed=11):
        assert history.height == 2 * 252 + 1
        result = classify_regime(history)
        assert result.regime in answers, result
        vol = result.features["realised_vol"]
        assert abs(vol - REGIMES[second].equity_vol) < abs(vol - REGIMES[first].equity_vol)
