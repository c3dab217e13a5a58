"""Store skfolio's risk-parity weights for fixed covariance matrices.

skfolio (a convex programme solved by CLARABEL through cvxpy) is not a dependency of the
project; run this with any Python that has skfolio and numpy, from the repository root:

    PYTHONPATH=. python tests/engine/data/make_risk_parity_reference.py

It writes ``risk_parity_reference.json`` next to this file, which
tests/engine/test_mix.py compares engine.portfolio.mix.risk_parity_weights against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("risk_parity_reference.json")
TOLERANCE = 2e-5
"""skfolio's conic solve (CLARABEL at its default tolerances) leaves the risk contributions
up to ~1.2e-5 from equal on these cases and the weights up to ~1.1e-5 from the exact ERC
(the engine's are within 1e-15 of equal); 2e-5 bounds that."""


def covariance_cases() -> list[np.ndarray]:
    """Fixed annualised covariance matrices: 3 equities, 3 bond buckets, 6 mixed, a
    near-singular pair, and 8 random ones from a seeded generator."""
    vols = np.array([0.16, 0.19, 0.24])
    corr = np.array([[1, .75, .6], [.75, 1, .65], [.6, .65, 1]])
    equities = np.outer(vols, vols) * corr
    bvols = np.array([0.015, 0.045, 0.085])
    bcorr = np.array([[1, .85, .7], [.85, 1, .92], [.7, .92, 1]])
    bonds = np.outer(bvols, bvols) * bcorr
    six = np.zeros((6, 6))
    six[:3, :3], six[3:, 3:] = equities, bonds
    six[:3, 3:] = -0.2 * np.outer(vols, bvols)
    six[3:, :3] = six[:3, 3:].T
    near = np.outer([0.2, 0.1], [0.2, 0.1]) * np.array([[1, 0.999], [0.999, 1]])
    cases = [equities, bonds, six, near]
    rng = np.random.default_rng(18)
    for n in (2, 3, 4, 5, 6, 8, 10, 12):
        factor = rng.standard_normal((n, n)) * rng.uniform(0.02, 0.3, n)
        cases.append(factor @ factor.T / n + np.diag(rng.uniform(1e-4, 1e-3, n)))
    return cases


def skfolio_weights(cov: np.ndarray) -> list[float]:
    from skfolio.moments import EmpiricalCovariance
    from skfolio.optimization import RiskBudgeting
    from skfolio.prior import EmpiricalPrior

    n = cov.shape[0]

    class FixedCovariance(EmpiricalCovariance):
        def fit(self, X, y=None):
            self.covariance_ = cov
            return self

    rng = np.random.default_rng(0)
    returns = rng.standard_normal((64, n)) * 0.01
    model = RiskBudgeting(prior_estimator=EmpiricalPrior(covariance_estimator=FixedCovariance()))
    model.fit(returns)
    return [float(w) for w in model.weights_]


if __name__ == "__main__":
    weights = [skfolio_weights(c) for c in covariance_cases()]
    REFERENCE.write_text(json.dumps({"tolerance": TOLERANCE, "weights": weights}, indent=1))
    print(f"wrote {REFERENCE}")
