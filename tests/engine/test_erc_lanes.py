"""Risk parity solved side by side (engine.portfolio.erc_lanes) against the scalar solve
and the equal-risk-contribution conditions, and the sleeve-mix pass that uses it against
the numpy-level mix functions."""

from __future__ import annotations

import numpy as np
import pytest

from engine.portfolio.erc_lanes import erc_lanes_workspace, erc_solve_lanes
from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.mix import base_mix_weights, erc_solve, sleeve_vol, trailing_covariance
from engine.portfolio.sleeve_mixes import sleeve_mixes


def _covariances(rng: np.random.Generator, lanes: int, n: int) -> np.ndarray:
    """(lanes, n, n) positive definite, vols 5%-40%, correlations of every sign."""
    factor = rng.normal(size=(lanes, n, n + 2))
    cov = factor @ factor.transpose(0, 2, 1)
    vol = np.sqrt(np.einsum("lii->li", cov))
    target = rng.uniform(0.05, 0.4, size=(lanes, n))
    return cov / vol[:, :, None] / vol[:, None, :] * target[:, :, None] * target[:, None, :]


def _solve_lanes(cov: np.ndarray, y: np.ndarray, warm: np.ndarray, out: np.ndarray) -> int:
    """erc_solve_lanes on (lanes, n, n) covariances; y and out (n, lanes)."""
    return erc_solve_lanes(np.ascontiguousarray(cov.transpose(1, 2, 0)), y, warm, out,
                    *erc_lanes_workspace(*y.shape))


def test_lanes_are_the_scalar_solve_bit_for_bit():
    # Month by month on drifting covariances: warm starts (full steps only), cold starts
    # (damped steps, solved again by erc_solve), a lane whose asset has no variance in one
    # month (fails, inverse vol elsewhere, then starts cold), lanes of 2 and 3 assets.
    rng = np.random.default_rng(7)
    for n in (2, 3, 4):
        lanes = 7
        base = _covariances(rng, lanes, n)
        y_lanes, out_lanes = np.zeros((n, lanes)), np.full((n, lanes), -1.0)
        warm_lanes = np.zeros(lanes, dtype=np.bool_)
        y_scalar, out_scalar = np.zeros((lanes, n)), np.full((lanes, n), -1.0)
        warm_scalar = np.zeros(lanes, dtype=np.bool_)
        for month in range(12):
            cov = base * rng.uniform(0.9, 1.1, size=(lanes, n, 1)) ** 0.5 \
                * rng.uniform(0.9, 1.1, size=(lanes, 1, n)) ** 0.5
            cov = (cov + cov.transpose(0, 2, 1)) / 2
            if month == 4:
                cov[2, 1, :] = cov[2, :, 1] = 0.0
            if month == 7:
                cov[5] = _covariances(rng, 1, n)[0]
            for lane in range(lanes):
                warm_scalar[lane] = erc_solve(np.ascontiguousarray(cov[lane]), y_scalar[lane],
                                              np.empty((n + 3, n)), warm_scalar[lane],
                                              out_scalar[lane])
            cold = (~warm_lanes).sum() + (month in (7, 8))
            damped = _solve_lanes(cov, y_lanes, warm_lanes, out_lanes)
            # warm lanes take full steps side by side; cold ones and lane 5, whose
            # covariance jumps in month 7 and back in 8, may be damped
            assert damped <= cold, (n, month, damped, cold)
            np.testing.assert_array_equal(warm_lanes, warm_scalar)
            np.testing.assert_array_equal(out_lanes.T, out_scalar)
            if month == 4:
                assert not warm_lanes[2]


def test_lanes_meet_the_equal_risk_contribution_conditions():
    # Plain numpy reference: w_i (Sigma w)_i = w' Sigma w / n, w > 0, sum w = 1; diagonal
    # covariances give inverse vol.
    rng = np.random.default_rng(3)
    cov = _covariances(rng, 9, 3)
    cov[8] = np.diag([0.04, 0.01, 0.09])
    y, out = np.zeros((3, 9)), np.zeros((3, 9))
    warm = np.zeros(9, dtype=np.bool_)
    _solve_lanes(cov, y, warm, out)
    assert warm.all()
    assert _solve_lanes(cov, y, warm, out) == 0
    w = out.T
    contributions = w * np.einsum("lij,lj->li", cov, w)
    total = contributions.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(contributions, np.broadcast_to(total / 3, w.shape), rtol=1e-12)
    assert (w > 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    inverse_vol = np.array([1 / 0.2, 1 / 0.1, 1 / 0.3])
    np.testing.assert_allclose(w[8], inverse_vol / inverse_vol.sum(), rtol=1e-15)


def test_failed_lane_leaves_its_weights_and_warms_no_further():
    cov = _covariances(np.random.default_rng(1), 3, 3)
    cov[1, 0, 0] = -1e-6
    y, out = np.ones((3, 3)), np.full((3, 3), 7.0)
    warm = np.ones(3, dtype=np.bool_)
    _solve_lanes(cov, y, warm, out)
    np.testing.assert_array_equal(warm, [True, False, True])
    np.testing.assert_array_equal(out[:, 1], 7.0)


@pytest.fixture(scope="module")
def six_levels():
    rng = np.random.default_rng(11)
    n_days = 700
    returns = rng.normal(0.0, 0.01, size=(6, 5, n_days)) * np.linspace(0.5, 1.5, 6)[:, None, None]
    returns[4, 2, 100:380] = 0.0
    levels = np.ones((6, 5, n_days + 1))
    levels[:, :, 1:] = np.exp(np.cumsum(returns, axis=-1))
    return levels


def test_sleeve_mixes_are_the_numpy_level_mixes(six_levels):
    # Every (window, mix) of both sleeves at every rebalance against trailing_covariance,
    # base_mix_weights and sleeve_vol, bit for bit; one path's ust_5y is flat for 280 days
    # so its 126-day risk parity falls back to inverse vol, then restarts cold.
    starts = np.arange(252, 700, 21)
    windows = (126, 147, 252)
    mixes = ("fixed", "inverse_vol", "risk_parity")
    risky_keys = [(w, m) for w in windows for m in mixes]
    defensive_keys = [(w, m) for w in windows[::-1] for m in mixes[::-1]]
    result = sleeve_mixes(six_levels, GLOBAL_SIX, starts, risky_keys, defensive_keys)
    logs = np.log(six_levels)
    for sleeve, keys, fixed, lo, hi in (
        (result.risky, risky_keys, GLOBAL_SIX.risky_weights, 0, 3),
        (result.defensive, defensive_keys, GLOBAL_SIX.defensive_weights, 3, 6),
    ):
        for i, (window, mix) in enumerate(keys):
            cov = trailing_covariance(logs[lo:hi], starts, window)
            expected = base_mix_weights(mix, cov, fixed)
            np.testing.assert_array_equal(sleeve[i], expected, err_msg=f"{lo} {window} {mix}")
            if lo == 0:
                np.testing.assert_array_equal(result.risky_vol[i], sleeve_vol(expected, cov))
