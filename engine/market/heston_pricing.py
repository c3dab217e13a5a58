"""European options under Heston (semi-analytic) and Black-Scholes, with implied vols.

Heston prices use the Lewis (2001) single-integral formula with the "little Heston trap"
characteristic function of Albrecher, Mayer, Schoutens and Tistaert (Wilmott, 2007),
integrated on fixed Gauss-Legendre nodes up to a truncation set from the decay of the
characteristic function (its large-u rate from C. Kahl, P. Jaeckel, "Not-so-complex
logarithms in the Heston model", Wilmott 2005).
Fixed nodes make the price a smooth function of the parameters, which the calibration's
finite-difference Jacobian needs. docs/engine.md gives the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

from engine.types import FloatArray

OptionType = Literal["call", "put"]

_PANEL_NODES = 32
_NODES_PER_PERIOD = 12
_DECAY_LOG = 34.0
_NEAR_ZERO_EDGES = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
"""Extra panel edges near 0: the integrand has poles at u = +-i/2, so panels there must
be short for Gauss-Legendre to converge fast."""
_X, _W = np.polynomial.legendre.leggauss(_PANEL_NODES)  # nodes on (-1, 1)


@dataclass(frozen=True, slots=True)
class HestonParams:
    """Heston parameters (risk-neutral), annualised.

    dv = kappa (theta - v) dt + sigma sqrt(v) dW_v, corr(dW_S, dW_v) = rho.

    Parameters
    ----------
    v0 : initial variance.
    kappa : mean-reversion speed, 1/year.
    theta : long-run variance.
    sigma : vol of variance.
    rho : spot-variance correlation.
    """

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    def __post_init__(self) -> None:
        for name in ("v0", "kappa", "theta", "sigma"):
            value = float(getattr(self, name))
            if not value > 0.0 or not math.isfinite(value):
                raise ValueError(f"HestonParams.{name} = {value!r} must be positive and finite")
            object.__setattr__(self, name, value)
        rho = float(self.rho)
        if not -1.0 < rho < 1.0:
            raise ValueError(f"HestonParams.rho = {rho!r} must lie in (-1, 1)")
        object.__setattr__(self, "rho", rho)

    @property
    def feller_satisfied(self) -> bool:
        """2 kappa theta > sigma^2."""
        return 2.0 * self.kappa * self.theta > self.sigma**2

    def as_array(self) -> FloatArray:
        """(v0, kappa, theta, sigma, rho) as an array."""
        return np.array([self.v0, self.kappa, self.theta, self.sigma, self.rho])

    def to_dict(self) -> dict[str, float]:
        return {"v0": self.v0, "kappa": self.kappa, "theta": self.theta,
                "sigma": self.sigma, "rho": self.rho}


def heston_cf(u: np.ndarray, expiry: float | FloatArray, params: HestonParams) -> np.ndarray:
    """Characteristic function E[exp(i u X_T)] of X_T = ln(S_T / F_T) (the trap form).

    Notes
    -----
    With b = kappa - rho sigma i u (Albrecher et al. 2007, eq. 2.4-2.6)::

        d  = sqrt(b^2 + sigma^2 (i u + u^2))
        g  = (b - d) / (b + d)
        C  = kappa theta / sigma^2 [(b - d) T - 2 ln((1 - g e^{-dT}) / (1 - g))]
        D  = (b - d) / sigma^2 (1 - e^{-dT}) / (1 - g e^{-dT})
        phi(u) = exp(C + D v0)

    ``u`` may be complex; ``u`` and ``expiry`` broadcast.
    """
    v0, kappa, theta, sigma, rho = params.as_array()
    iu = 1j * u
    b = kappa - rho * sigma * iu
    d = np.sqrt(b * b + sigma * sigma * (iu + u * u))
    g = (b - d) / (b + d)
    edt = np.exp(-d * expiry)
    c = kappa * theta / sigma**2 * ((b - d) * expiry - 2.0 * np.log((1.0 - g * edt) / (1.0 - g)))
    dd = (b - d) / sigma**2 * (1.0 - edt) / (1.0 - g * edt)
    return np.exp(c + dd * v0)


def heston_price(
    spot: float,
    strikes: FloatArray | float,
    expiries: FloatArray | float,
    params: HestonParams,
    r: float = 0.0,
    q: float = 0.0,
    *,
    option: OptionType = "call",
) -> FloatArray:
    """European option prices under Heston; ``strikes`` and ``expiries`` broadcast.

    Parameters
    ----------
    spot : spot price S_0.
    strikes, expiries : strikes K and expiries T in years (> 0), broadcast together.
    params : Heston parameters.
    r, q : continuously compounded rate and dividend yield.
    option : "call" or "put" (put by put-call parity).

    Notes
    -----
    Lewis (2001) formula with F = S e^{(r-q)T}, x = ln(F / K)::

        C = e^{-rT} [F - sqrt(F K) / pi  int_0^inf Re(e^{i u x} phi(u - i/2)) / (u^2 + 1/4) du]

    The integral is truncated at u_max and taken on composite Gauss-Legendre panels
    (``_truncation``), one expiry at a time, vectorised over strikes.
    """
    k, t = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64),
                               np.asarray(expiries, dtype=np.float64))
    if (t <= 0).any() or (k <= 0).any():
        raise ValueError("heston_price needs positive strikes and expiries")
    forward = spot * np.exp((r - q) * t)
    x = np.log(forward / k)
    integral = np.empty(t.shape)
    for expiry in np.unique(t):
        at = t == expiry
        integral[at] = _lewis_integral(x[at], float(expiry), params)
    call = np.exp(-r * t) * (forward - np.sqrt(forward * k) / math.pi * integral)
    if option == "call":
        return call
    if option == "put":
        return call - spot * np.exp(-q * t) + k * np.exp(-r * t)
    raise ValueError(f"option = {option!r} is not one of call, put")


def _lewis_integral(x: FloatArray, expiry: float, params: HestonParams) -> FloatArray:
    """int_0^u_max Re(e^{i u x} phi(u - i/2)) / (u^2 + 1/4) du for log-forward-moneyness x
    at one expiry, on composite Gauss-Legendre panels (``_PANEL_NODES`` nodes each):
    n equal panels of (0, u_max), further split at ``_NEAR_ZERO_EDGES``.

    The panel count n* is real-valued; the integral is the blend (1 - f) I_n + f I_{n+1}
    with n = floor(n*), f = n* - n, so the price is continuous in the parameters (an
    integer panel count alone would jump by the quadrature error, which breaks the
    calibration's finite-difference Jacobian).
    """
    u_max, n_real = _truncation(expiry, params, float(np.max(np.abs(x), initial=0.0)))
    n_low = math.floor(n_real)
    frac = n_real - n_low
    low = _panels(x, expiry, params, u_max, n_low)
    return low if frac == 0.0 else (1.0 - frac) * low + frac * _panels(
        x, expiry, params, u_max, n_low + 1)


def _panels(x: FloatArray, expiry: float, params: HestonParams, u_max: float,
            n_panels: int) -> FloatArray:
    edges = np.union1d(np.linspace(0.0, u_max, n_panels + 1),
                       _NEAR_ZERO_EDGES[_NEAR_ZERO_EDGES < u_max])
    half = 0.5 * (edges[1:] - edges[:-1])
    u = ((edges[:-1] + half)[:, None] + half[:, None] * _X).ravel()
    w = (half[:, None] * _W).ravel()
    phi = heston_cf(u - 0.5j, expiry, params)
    integrand = (np.exp(1j * np.multiply.outer(x, u)) * phi).real / (u * u + 0.25)
    return integrand @ w


def _truncation(expiry: float, params: HestonParams, x_max: float) -> tuple[float, float]:
    """Upper limit u_max of the pricing integral and the (real) number of panels.

    |phi(u - i/2)| falls like exp(-u^2 w T / 2) at moderate u (w = theta + (v0 - theta)
    (1 - e^{-kappa T}) / (kappa T), the expected average variance) and like exp(-C_inf u)
    at large u (C_inf = sqrt(1 - rho^2) (v0 + kappa theta T) / sigma, Kahl and Jaeckel
    2005); the slower of the two governs. u_max solves
    min(u^2 w T / 2, C_inf u) + 2 ln u = L with L = ``_DECAY_LOG``, so the neglected tail
    of the integrand (|.| <= e^{-decay} / u^2) is below e^{-L} u_max. The panels resolve
    the oscillation of e^{i u x} phi at ``_NODES_PER_PERIOD`` nodes a period, the rate
    taken as |x| + min(C_inf, 5) + 1: the phase of phi grows at most like C_inf u, and
    where C_inf is large (small sigma) phi is already negligible at such u, so the rate
    is capped (checked against QuantLib, and against Black-Scholes at sigma = 1e-4).
    """
    kt = params.kappa * expiry
    w = params.theta + (params.v0 - params.theta) * -math.expm1(-kt) / kt
    c_inf = math.sqrt(1.0 - params.rho**2) * (params.v0 + params.kappa * params.theta * expiry) / (
        params.sigma)

    def excess(u: float) -> float:
        return min(0.5 * u * u * w * expiry, c_inf * u) + 2.0 * math.log(u) - _DECAY_LOG

    u_max = brentq(excess, 1.0, 1e7)
    periods = u_max * (x_max + min(c_inf, 5.0) + 1.0) / (2.0 * math.pi)
    return u_max, max(4.0, periods * _NODES_PER_PERIOD / _PANEL_NODES)


def bs_price(
    spot: float,
    strikes: FloatArray | float,
    expiries: FloatArray | float,
    vol: FloatArray | float,
    r: float = 0.0,
    q: float = 0.0,
    *,
    option: OptionType = "call",
) -> FloatArray:
    """Black-Scholes(-Merton) price; inputs broadcast.

    C = S e^{-qT} N(d1) - K e^{-rT} N(d2), d1 = (ln(S/K) + (r - q + vol^2/2) T) / (vol sqrt(T)),
    d2 = d1 - vol sqrt(T); P = C - S e^{-qT} + K e^{-rT}.
    """
    k, t, s = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64),
                                  np.asarray(expiries, dtype=np.float64),
                                  np.asarray(vol, dtype=np.float64))
    sd = s * np.sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (np.log(spot / k) + (r - q) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    df_q, df_r = np.exp(-q * t), np.exp(-r * t)
    call = spot * df_q * ndtr(d1) - k * df_r * ndtr(d2)
    intrinsic = np.maximum(spot * df_q - k * df_r, 0.0)
    call = np.where(sd > 0, call, intrinsic)
    if option == "call":
        return call
    if option == "put":
        return call - spot * df_q + k * df_r
    raise ValueError(f"option = {option!r} is not one of call, put")


def bs_vega(
    spot: float,
    strikes: FloatArray | float,
    expiries: FloatArray | float,
    vol: FloatArray | float,
    r: float = 0.0,
    q: float = 0.0,
) -> FloatArray:
    """dPrice/dvol = S e^{-qT} n(d1) sqrt(T) (same for calls and puts)."""
    k, t, s = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64),
                                  np.asarray(expiries, dtype=np.float64),
                                  np.asarray(vol, dtype=np.float64))
    sd = s * np.sqrt(t)
    d1 = (np.log(spot / k) + (r - q) * t) / sd + 0.5 * sd
    return spot * np.exp(-q * t) * np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi) * np.sqrt(t)


def implied_vol(
    prices: FloatArray | float,
    spot: float,
    strikes: FloatArray | float,
    expiries: FloatArray | float,
    r: float = 0.0,
    q: float = 0.0,
    *,
    option: OptionType = "call",
    low: float = 1e-6,
    high: float = 5.0,
) -> FloatArray:
    """Black-Scholes implied vol by Brent's method on [low, high], elementwise.

    NaN where the price lies outside the no-arbitrage bounds
    (intrinsic value, S e^{-qT} for a call / K e^{-rT} for a put) or no root lies in the bracket.
    """
    p, k, t = np.broadcast_arrays(np.asarray(prices, dtype=np.float64),
                                  np.asarray(strikes, dtype=np.float64),
                                  np.asarray(expiries, dtype=np.float64))
    out = np.full(p.shape, np.nan)
    for idx in np.ndindex(p.shape):
        price, strike, expiry = float(p[idx]), float(k[idx]), float(t[idx])

        def error(vol: float, price=price, strike=strike, expiry=expiry) -> float:
            return float(bs_price(spot, strike, expiry, vol, r, q, option=option)) - price

        f_low, f_high = error(low), error(high)
        if not (math.isfinite(f_low) and math.isfinite(f_high)) or f_low * f_high > 0:
            continue
        out[idx] = brentq(error, low, high, xtol=1e-14, rtol=1e-14, maxiter=200)
    return out


def heston_implied_vols(
    spot: float,
    strikes: FloatArray | float,
    expiries: FloatArray | float,
    params: HestonParams,
    r: float = 0.0,
    q: float = 0.0,
) -> FloatArray:
    """Black-Scholes implied vols of Heston prices: OTM options (puts below the forward,
    calls above) are inverted, the better-conditioned side."""
    k, t = np.broadcast_arrays(np.asarray(strikes, dtype=np.float64),
                               np.asarray(expiries, dtype=np.float64))
    forward = spot * np.exp((r - q) * t)
    calls = heston_price(spot, k, t, params, r, q, option="call")
    puts = calls - spot * np.exp(-q * t) + k * np.exp(-r * t)
    otm_call = k >= forward
    vols = np.full(k.shape, np.nan)
    vols[otm_call] = implied_vol(calls[otm_call], spot, k[otm_call], t[otm_call], r, q,
                                 option="call")
    vols[~otm_call] = implied_vol(puts[~otm_call], spot, k[~otm_call], t[~otm_call], r, q,
                                  option="put")
    return vols
