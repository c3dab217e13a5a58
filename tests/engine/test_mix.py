"""Base mixes: trailing covariance against numpy, inverse vol, and risk parity against
closed forms, a scipy-optimised reference and skfolio's stored weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from engine.portfolio.mix import (
    base_mix_weights,
    inverse_vol_weights,
    risk_parity_weights,
    trailing_covariance,
)
from engine.strategy.rolling import trailing_realized_vol
from tests.engine.data.make_risk_parity_reference import covariance_cases

REFERENCE = Path(__file__).with_name("data") / "risk_parity_reference.json"
SCIPY_TOL = 1e-8
"""The L-BFGS-B reference's weights sit within ~5e-9 of the exact ERC on these cases (its
contributions within ~1e-8 of equal); the engine's contributions are within 1e-14."""
WARM_COLD_RTOL = 2e-15
"""Solves stopped by a full Newton step below 1e-8 are within ~1e-16 of the exact ERC
(engine.portfolio.mix.ERC_FULL_STEP_TOLERANCE squared), so two of them agree to a few
ulps: 2e-15 relative (9 ulps of a weight near 1)."""


def _scipy_erc(cov: np.ndarray) -> np.ndarray:
    """Reference: minimise y' cov y / 2 - sum ln(y_i) / n over y > 0 (strictly convex;
    its stationary point is y_i (cov y)_i = 1 / n), then normalise."""
    n = cov.shape[0]
    result = minimize(lambda y: 0.5 * y @ cov @ y - np.log(y).sum() / n,
                      np.full(n, 1.0), jac=lambda y: cov @ y - 1.0 / (n * y),
                      method="L-BFGS-B", bounds=[(1e-12, None)] * n,
                      options={"ftol": 1e-15, "gtol": 1e-13, "maxiter": 10_000})
    return result.x / result.x.sum()


def test_trailing_covariance_matches_numpy():
    rng = np.random.default_rng(1)
    logs = np.cumsum(rng.standard_normal((3, 4, 200)) * 0.01, axis=-1)
    ends = np.array([60, 100, 199])
    cov = trailing_covariance(logs, ends, 42)
    for p in range(4):
        for k, e in enumerate(ends):
            window = np.diff(logs[:, p, e - 42 : e + 1], axis=-1)
            np.testing.assert_allclose(cov[p, k], np.cov(window) * 252, rtol=1e-9)
    vol = trailing_realized_vol(np.exp(logs[1]), ends, 42)
    np.testing.assert_allclose(np.sqrt(cov[:, :, 1, 1]), vol, rtol=1e-12)


@pytest.mark.parametrize("case", range(len(covariance_cases())))
def test_risk_parity_equalises_contributions_and_matches_scipy(case):
    cov = covariance_cases()[case]
    w = risk_parity_weights(cov)
    contributions = w * (cov @ w) / (w @ cov @ w)
    np.testing.assert_allclose(contributions, 1.0 / len(w), rtol=0, atol=1e-14)
    np.testing.assert_allclose(w, _scipy_erc(cov), rtol=0, atol=SCIPY_TOL)
    assert (w > 0).all() and w.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.skipif(not REFERENCE.exists(), reason="skfolio reference not generated")
def test_risk_parity_matches_skfolio():
    stored = json.loads(REFERENCE.read_text())
    for cov, expected in zip(covariance_cases(), stored["weights"], strict=True):
        np.testing.assert_allclose(risk_parity_weights(cov), expected, rtol=0,
                                   atol=stored["tolerance"])


def test_diagonal_risk_parity_is_inverse_vol():
    cov = np.diag([0.04, 0.01, 0.0225, 0.09])
    expected = (1 / np.sqrt(np.diag(cov))) / (1 / np.sqrt(np.diag(cov))).sum()
    np.testing.assert_allclose(risk_parity_weights(cov), expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(inverse_vol_weights(cov), expected, rtol=1e-15)


@pytest.mark.parametrize("rho", [-0.6, 0.0, 0.8])
def test_two_asset_risk_parity_is_inverse_vol_whatever_the_correlation(rho):
    # With two assets w1 (cov w)_1 = w2 (cov w)_2 reduces to w1 s1 = w2 s2.
    s = np.array([0.15, 0.05])
    cov = np.outer(s, s) * np.array([[1, rho], [rho, 1]])
    np.testing.assert_allclose(risk_parity_weights(cov), [0.25, 0.75], rtol=0, atol=1e-13)


def test_vectorised_over_leading_axes_and_singular_fallback():
    cases = np.stack([c for c in covariance_cases() if c.shape == (3, 3)])
    batch = risk_parity_weights(np.stack([cases, cases]))
    assert batch.shape == (2, len(cases), 3)
    for i in range(len(cases)):
        # warm (the previous case's solution) and cold starts stop at different last
        # Newton steps, each leaving an error of rounding's size
        np.testing.assert_allclose(batch[1, i], risk_parity_weights(cases[i]),
                                   rtol=WARM_COLD_RTOL, atol=0)
    singular = np.diag([0.04, 0.0, 0.01])
    np.testing.assert_array_equal(risk_parity_weights(singular), [0.0, 1.0, 0.0])


def test_fixed_and_single_asset_mixes():
    cov = np.broadcast_to(np.diag([0.04, 0.01]), (5, 7, 2, 2))
    np.testing.assert_array_equal(base_mix_weights("fixed", cov, (0.7, 0.3))[3, 2], [0.7, 0.3])
    np.testing.assert_array_equal(base_mix_weights("fixed", cov, None)[0, 0], [0.5, 0.5])
    one = np.full((5, 7, 1, 1), 0.04)
    np.testing.assert_array_equal(base_mix_weights("risk_parity", one, None), 1.0)
    with pytest.raises(ValueError, match="base mix 'equal'"):
        base_mix_weights("equal", cov, None)
