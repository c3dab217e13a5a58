"""Yield curves (bootstrapped from par rates, or given as zero rates) and the Vasicek
parameters of a daily short-rate history.

Curve convention: continuously compounded zero rates z(t), discount factors
P(t) = exp(-z(t) t), interpolated log-linearly in P between nodes (piecewise-constant
instantaneous forwards, as QuantLib's PiecewiseLogLinearDiscount), with a node P(0) = 1;
beyond the last node the last segment's forward continues. Times are year fractions.
References: P. Hagan, G. West, "Interpolation methods for curve construction", Applied
Mathematical Finance 13(2), 2006 (raw interpolation = log-linear DF); Brigo & Mercurio,
Interest Rate Models, 3.2.1 (Vasicek transition).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import brentq

from engine.conventions import DT_DAY
from engine.types import FloatArray

COUPON_FREQUENCIES: tuple[int, ...] = (1, 2, 4, 12)
"""Coupons a year a par rate may be quoted with."""


@dataclass(frozen=True, slots=True)
class YieldCurve:
    """Zero curve on nodes ``tenors`` (years, strictly increasing, > 0) with continuously
    compounded ``zero_rates`` (decimals)."""

    tenors: FloatArray
    zero_rates: FloatArray

    def __post_init__(self) -> None:
        tenors = np.asarray(self.tenors, dtype=np.float64)
        rates = np.asarray(self.zero_rates, dtype=np.float64)
        if tenors.ndim != 1 or tenors.shape != rates.shape or tenors.size == 0:
            raise ValueError("YieldCurve: tenors and zero_rates must be 1-D of one length >= 1")
        if not (np.isfinite(tenors).all() and np.isfinite(rates).all()):
            raise ValueError("YieldCurve: tenors and zero_rates must be finite")
        if tenors[0] <= 0 or (np.diff(tenors) <= 0).any():
            raise ValueError("YieldCurve: tenors must be positive and strictly increasing")
        object.__setattr__(self, "tenors", tenors)
        object.__setattr__(self, "zero_rates", rates)

    def _log_discount_nodes(self) -> tuple[FloatArray, FloatArray]:
        return (np.concatenate([[0.0], self.tenors]),
                np.concatenate([[0.0], -self.zero_rates * self.tenors]))

    def log_discount(self, t: FloatArray | float) -> FloatArray:
        """ln P(t), linear in t between nodes (0, 0), (t_i, -z_i t_i); linear extrapolation
        of the last segment beyond the last node."""
        times, logs = self._log_discount_nodes()
        t = np.asarray(t, dtype=np.float64)
        if (t < 0).any():
            raise ValueError("YieldCurve: times must be >= 0")
        inner = np.interp(t, times, logs)
        last_forward = (logs[-1] - logs[-2]) / (times[-1] - times[-2])
        return np.where(t > times[-1], logs[-1] + last_forward * (t - times[-1]), inner)

    def discount(self, t: FloatArray | float) -> FloatArray:
        """P(t) = exp(ln P(t))."""
        return np.exp(self.log_discount(t))

    def zero_rate(self, t: FloatArray | float) -> FloatArray:
        """z(t) = -ln P(t) / t; at t = 0 the limit, the first segment's forward."""
        t = np.asarray(t, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = -self.log_discount(t) / t
        return np.where(t > 0, z, self.zero_rates[0])

    def forward_rate(self, t1: FloatArray | float, t2: FloatArray | float) -> FloatArray:
        """Continuously compounded forward f(t1, t2) = (ln P(t1) - ln P(t2)) / (t2 - t1)."""
        t1, t2 = np.asarray(t1, dtype=np.float64), np.asarray(t2, dtype=np.float64)
        return (self.log_discount(t1) - self.log_discount(t2)) / (t2 - t1)

    def instantaneous_forward(self, t: FloatArray | float) -> FloatArray:
        """f(t) = -d ln P / dt: the forward of the segment containing t (right-continuous)."""
        times, logs = self._log_discount_nodes()
        forwards = -np.diff(logs) / np.diff(times)
        index = np.clip(np.searchsorted(times, np.asarray(t), side="right") - 1, 0,
                        forwards.size - 1)
        return forwards[index]

    @property
    def short_rate(self) -> float:
        """The instantaneous forward at 0, equal to the zero rate of the first node
        under log-linear discount interpolation."""
        return float(self.instantaneous_forward(0.0))

    def to_frame(self) -> pl.DataFrame:
        """tenor_years, zero_yield (continuously compounded), discount_factor."""
        return pl.DataFrame({"tenor_years": self.tenors, "zero_yield": self.zero_rates,
                             "discount_factor": self.discount(self.tenors)})


def curve_from_zero_rates(tenors: Sequence[float] | FloatArray,
                          zero_rates: Sequence[float] | FloatArray) -> YieldCurve:
    """A curve from continuously compounded zero rates at the tenors."""
    return YieldCurve(np.asarray(tenors, dtype=np.float64), np.asarray(zero_rates,
                                                                        dtype=np.float64))


def coupon_schedule(tenor: float, frequency: int) -> tuple[FloatArray, FloatArray]:
    """Payment times and accrual fractions of a bond of maturity ``tenor`` paying
    ``frequency`` coupons a year: times tenor, tenor - 1/f, ... > 0 (ascending); the first
    accrual is a short stub when tenor f is not whole."""
    step = 1.0 / frequency
    n = max(1, math.ceil(round(tenor * frequency, 9)))
    times = tenor - step * np.arange(n)[::-1]
    times = times[times > 1e-12]
    accrual = np.diff(np.concatenate([[0.0], times]))
    return times, accrual


def bootstrap_par_curve(
    tenors: Sequence[float] | FloatArray,
    par_rates: Sequence[float] | FloatArray,
    *,
    frequency: int | Sequence[int] = 1,
) -> YieldCurve:
    """Bootstrap zero rates from par yields of bullet bonds priced at par.

    Parameters
    ----------
    tenors : maturities in years, strictly increasing.
    par_rates : par coupon rates (decimals), paid ``frequency`` times a year.
    frequency : coupons a year, one of ``COUPON_FREQUENCIES``: one for every tenor, or
        one per tenor (a curve of bills and bonds).

    Notes
    -----
    The bond of tenor T_n with coupon c_n pays c_n a_j at each t_j of
    ``coupon_schedule(T_n, f)`` (a_j the accrual, 1/f except a first stub) and 1 at T_n;
    at par::

        1 = c_n sum_j a_j P(t_j) + P(T_n)

    Nodes are solved in order: P at t_j <= T_{n-1} comes from the curve so far, P at
    t_j in (T_{n-1}, T_n] from log-linear interpolation between T_{n-1} and the unknown
    P(T_n), which is found by Brent's method (the price is monotone in it). A tenor
    shorter than 1/f is a single payment (1 + c T) at T, P(T) = 1 / (1 + c T).
    """
    tenors = np.asarray(tenors, dtype=np.float64)
    rates = np.asarray(par_rates, dtype=np.float64)
    if tenors.shape != rates.shape or tenors.ndim != 1 or tenors.size == 0:
        raise ValueError("tenors and par_rates must be 1-D of one length >= 1")
    frequencies = (list(frequency) if isinstance(frequency, Sequence | np.ndarray)
                   else [frequency] * tenors.size)
    if len(frequencies) != tenors.size or any(f not in COUPON_FREQUENCIES
                                              for f in frequencies):
        raise ValueError(f"frequency = {frequency!r} must be one of {COUPON_FREQUENCIES}"
                         " coupons a year, once or once per tenor")
    if tenors[0] <= 0 or (np.diff(tenors) <= 0).any():
        raise ValueError("tenors must be positive and strictly increasing")
    zeros: list[float] = []
    for n, (tenor, coupon) in enumerate(zip(tenors, rates, strict=True)):
        times, accrual = coupon_schedule(float(tenor), int(frequencies[n]))

        def par_error(z: float, n: int = n, tenor: float = float(tenor),
                      coupon: float = float(coupon), times: FloatArray = times,
                      accrual: FloatArray = accrual) -> float:
            curve = YieldCurve(tenors[: n + 1], np.array([*zeros, z]))
            return float(coupon * (accrual * curve.discount(times)).sum()
                         + curve.discount(tenor)) - 1.0

        zeros.append(brentq(par_error, -0.5, 2.0, xtol=1e-15, rtol=1e-15, maxiter=200))
    return YieldCurve(tenors, np.array(zeros))


def curve_from_frame(frame: pl.DataFrame, *, frequency: int = 1) -> YieldCurve:
    """A curve from a frame with tenor_years and either zero_yield (continuously
    compounded) or par_rate (bootstrapped with the frame's ``frequency`` column, coupons
    a year per tenor, else ``frequency`` for all)."""
    if "zero_yield" in frame.columns:
        return curve_from_zero_rates(frame["tenor_years"].to_numpy(),
                                     frame["zero_yield"].to_numpy())
    if "par_rate" in frame.columns:
        given = (frame["frequency"].cast(pl.Float64).to_list() if "frequency" in frame.columns
                 else frequency)
        return bootstrap_par_curve(frame["tenor_years"].to_numpy(),
                                   frame["par_rate"].to_numpy(), frequency=given)
    raise ValueError(
        f"yield curve needs tenor_years and zero_yield or par_rate; found {frame.columns}"
    )


@dataclass(frozen=True, slots=True)
class VasicekFit:
    """Vasicek parameters of dr = kappa (theta - r) dt + sigma dW, with standard errors
    of kappa and theta (asymptotic, from the AR(1) regression) and the sample size."""

    kappa: float
    theta: float
    sigma: float
    kappa_se: float
    theta_se: float
    n_obs: int
    dt: float


def fit_vasicek(rates: Sequence[float] | FloatArray, *, dt: float = DT_DAY) -> VasicekFit:
    """Vasicek parameters from an equally spaced rate history by exact-discretisation OLS.

    Notes
    -----
    The exact transition is the AR(1) r_{i+1} = a + b r_i + e_i, e_i ~ N(0, s^2), with
    b = e^{-kappa dt}, a = theta (1 - b), s^2 = sigma^2 (1 - b^2) / (2 kappa). OLS of
    r_{i+1} on r_i (the Gaussian maximum likelihood given r_0) gives::

        kappa = -ln(b) / dt,  theta = a / (1 - b),  sigma = s sqrt(2 kappa / (1 - b^2))

    with s^2 the residual variance (ddof = 2). Standard errors (delta method):
    se(kappa) = se(b) / (b dt), se(theta) = s / ((1 - b) sqrt(n)) (the long-run mean
    of an AR(1)). Requires 0 < b < 1 (mean reversion); a history without it raises.
    """
    r = np.asarray(rates, dtype=np.float64)
    if r.ndim != 1 or r.size < 10 or not np.isfinite(r).all():
        raise ValueError("fit_vasicek needs at least 10 finite rates")
    x, y = r[:-1], r[1:]
    n = x.size
    x_mean, y_mean = x.mean(), y.mean()
    sxx = ((x - x_mean) ** 2).sum()
    if sxx == 0:
        raise ValueError("fit_vasicek: the rate never moves")
    b = float(((x - x_mean) * (y - y_mean)).sum() / sxx)
    a = float(y_mean - b * x_mean)
    if not 0.0 < b < 1.0:
        raise ValueError(f"fit_vasicek: AR(1) slope {b:.6f} shows no mean reversion")
    resid = y - a - b * x
    s2 = float((resid**2).sum() / (n - 2))
    kappa = -math.log(b) / dt
    sigma = math.sqrt(s2 * 2.0 * kappa / (1.0 - b * b))
    b_se = math.sqrt(s2 / sxx)
    return VasicekFit(
        kappa=kappa,
        theta=a / (1.0 - b),
        sigma=sigma,
        kappa_se=b_se / (b * dt),
        theta_se=math.sqrt(s2) / ((1.0 - b) * math.sqrt(n)),
        n_obs=int(r.size),
        dt=dt,
    )
