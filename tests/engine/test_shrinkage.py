"""Ledoit-Wolf shrinkage against scikit-learn's LedoitWolf."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from engine.portfolio.shrinkage import ledoit_wolf, ledoit_wolf_correlation


@pytest.mark.parametrize(("n", "p"), [(500, 3), (60, 6), (4, 6)])
def test_matches_sklearn(n, p):
    rng = np.random.default_rng(n * 10 + p)
    x = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) * 0.01 + 0.001
    covariance, shrinkage = ledoit_wolf(x)
    reference = LedoitWolf().fit(x)
    np.testing.assert_allclose(shrinkage, reference.shrinkage_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(covariance, reference.covariance_, rtol=1e-10, atol=1e-18)


def test_correlation_positive_definite_with_fewer_days_than_series():
    rng = np.random.default_rng(5)
    common = rng.standard_normal((4, 1))
    x = common + 0.1 * rng.standard_normal((4, 6))
    sample = np.corrcoef(x, rowvar=False)
    assert np.linalg.eigvalsh(sample).min() < 1e-10
    shrunk = ledoit_wolf_correlation(x)
    np.testing.assert_allclose(np.diag(shrunk), 1.0)
    np.testing.assert_allclose(shrunk, shrunk.T)
    assert np.linalg.eigvalsh(shrunk).min() > 0


def test_correlation_is_sample_correlation_pulled_towards_identity():
    rng = np.random.default_rng(9)
    x = rng.multivariate_normal([0, 0, 0], [[1, .7, .4], [.7, 1, .5], [.4, .5, 1]], 250)
    _, s = ledoit_wolf(x / x.std(axis=0))
    expected = (1 - s) * np.corrcoef(x, rowvar=False) + s * np.eye(3)
    np.testing.assert_allclose(ledoit_wolf_correlation(x), expected, atol=1e-12)
    assert 0 < s < 1
