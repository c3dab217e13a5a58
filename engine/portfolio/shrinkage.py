"""Ledoit-Wolf shrinkage of a covariance matrix, and the equities' correlation from history.

Reference: O. Ledoit and M. Wolf, "A well-conditioned estimator for large-dimensional
covariance matrices", Journal of Multivariate Analysis 88, 2004 (the estimator
sklearn.covariance.LedoitWolf implements; the tests check this one against it).
"""

from __future__ import annotations

import numpy as np

from engine.types import FloatArray


def ledoit_wolf(returns: FloatArray) -> tuple[FloatArray, float]:
    """Shrunk covariance (1 - s) S + s mu I and the shrinkage s in [0, 1].

    Parameters
    ----------
    returns : observations x variables, shape (n, p), n >= 2; centred here by the mean.

    Notes
    -----
    With X centred, S = X'X / n, mu = tr(S) / p, d^2 = ||S - mu I||_F^2 / p and
    b^2 = min(d^2, (1 / (n^2 p)) sum_k ||x_k x_k' - S||_F^2), s = b^2 / d^2 (0 when
    b^2 = 0). mu > 0 makes the result positive definite whenever s > 0.
    """
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or not np.isfinite(x).all():
        raise ValueError(f"returns must be a finite (n >= 2, p) array, got shape {x.shape}")
    n, p = x.shape
    x = x - x.mean(axis=0)
    x2 = x * x
    emp_cov_trace = x2.sum(axis=0) / n
    mu = emp_cov_trace.sum() / p
    beta_ = float(np.sum(x2.T @ x2))
    delta_ = float(np.sum((x.T @ x) ** 2)) / n**2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum() + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    covariance = (1.0 - shrinkage) * (x.T @ x) / n
    covariance.flat[:: p + 1] += shrinkage * mu
    return covariance, shrinkage


def ledoit_wolf_correlation(returns: FloatArray) -> FloatArray:
    """Correlation matrix of the columns, shrunk towards the identity, positive definite.

    Each column is standardised to unit variance first, so the target mu I of
    :func:`ledoit_wolf` is the identity and the shrunk matrix C = (1 - s) R + s I (R the
    sample correlation); a matrix that is not positive definite (s = 0 with fewer
    observations than variables) raises ValueError.
    """
    x = np.asarray(returns, dtype=np.float64)
    std = x.std(axis=0)
    if x.ndim != 2 or (std <= 0).any():
        raise ValueError("every series needs a positive sample variance")
    covariance, _ = ledoit_wolf(x / std)
    scale = np.sqrt(np.diag(covariance))
    correlation = covariance / np.outer(scale, scale)
    np.fill_diagonal(correlation, 1.0)
    if np.linalg.eigvalsh(correlation).min() <= 0:
        raise ValueError("the shrunk correlation is not positive definite: more history needed")
    return correlation
