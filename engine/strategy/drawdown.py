"""The exact daily maximum drawdown of many configs on one path, compiled (numba).

Within month k every config's daily NAV is NAV_t = A_k (g^A_t + w_k gap_t), with the
path's growths g^A_t = alt_t / alt_{d_k} and gap_t = equity_t / equity_{d_k} - g^A_t
shared by all configs and A_k = (1 - c_k) prod_{j<k} (1 + R_j). The day-by-day scan
peak = max(peak, NAV_t), worst = max(worst, 1 - NAV_t / peak) divides once per config and
day and its running peak chains the days; :func:`max_drawdowns` gives its result bit for
bit with one division per config and month in most months.

Why that is exact: for A_k > 0, every rounded operation of
fl(A_k fl(g^A_t + fl(w_k gap_t))) is non-decreasing in fl(g^A_t + fl(w_k gap_t)), and
fl(1 - fl(x / y)) is non-increasing in x and, for x > 0, non-decreasing in y > 0. With
U and L the month's largest and smallest rounded NAV (fl(A_k max_t X_t) and
fl(A_k min_t X_t), X_t = fl(g^A_t + fl(w_k gap_t))):

- when U <= peak no day sets a peak, and the month's worst is 1 - L / peak;
- when U > peak, L > 0 and 1 - L / U <= worst, no day beats worst (each day's running
  peak is at most U, its NAV at least L), and the peak becomes U.

So peak' = max(peak, U) and worst' = max(worst, 1 - L / peak') in both cases. The other
months (a new peak and a possibly deeper drawdown, A_k <= 0, or a value that is not
finite: a growth, A_k, U or L) are scanned day by day, as is every later month of a
config whose peak became NaN.
"""

from __future__ import annotations

import numba
import numpy as np

from engine.types import FloatArray, IntArray


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _month_extremes(
    growth_alt: FloatArray, growth_gap: FloatArray, lo: int, hi: int, w: FloatArray,
    running: FloatArray,
) -> tuple[FloatArray, FloatArray]:  # pragma: no cover - compiled
    """max_t X_t and min_t X_t of each config over the days lo ... hi - 1, with
    X_t = fl(g^A_t + fl(w gap_t)) and ``w`` (n_configs,); ``running`` (2, 2, n_configs) is
    scratch, the returned arrays are two of its rows.

    The running max and min go from one row to the other each day: written back in place,
    the compiler would store them with masked stores, slow on some processors (AMD Zen).
    """
    n_configs = w.shape[0]
    g_alt, g_gap = growth_alt[lo], growth_gap[lo]
    high, low = running[0, 0], running[0, 1]
    for c in range(n_configs):
        x = g_alt + w[c] * g_gap
        high[c] = x
        low[c] = x
    for t in range(lo + 1, hi):
        g_alt, g_gap = growth_alt[t], growth_gap[t]
        high, low = running[(t - lo - 1) % 2, 0], running[(t - lo - 1) % 2, 1]
        next_high, next_low = running[(t - lo) % 2, 0], running[(t - lo) % 2, 1]
        for c in range(n_configs):
            x = g_alt + w[c] * g_gap
            h = high[c]
            next_high[c] = x if x > h else h
            m = low[c]
            next_low[c] = x if x < m else m
    row = (hi - lo - 1) % 2
    return running[row, 0], running[row, 1]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def max_drawdowns(
    growth_alt: FloatArray,
    growth_gap: FloatArray,
    days: IntArray,
    weights: FloatArray,
    costs: FloatArray,
    monthly: FloatArray,
    worst: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Fill ``worst`` (n_configs,) with max_t (1 - NAV_t / max(1, max_{s<=t} NAV_s)) of
    each config on one path, as the day-by-day scan gives it, bit for bit.

    Parameters
    ----------
    growth_alt, growth_gap : g^A_t and gap_t of the days d_0 + 1 ... d_{n_months}.
    days : the rebalance days d_0 < ... < d_{n_months}, (n_months + 1,).
    weights, costs, monthly : w_k, c_k and the net R_k of each config, (n_configs, n_months).
    worst : filled.

    Notes
    -----
    See the module notes. Each month runs over the configs side by side (months x configs
    copies of A_k and w_k), so the compiler computes several configs' X_t, running max and
    min per instruction without a branch; the months to scan are scanned with the month's
    scanned configs packed side by side too.
    """
    n_configs, n_months = weights.shape
    first = days[0]
    start = np.empty((n_months, n_configs))
    weight = np.empty((n_months, n_configs))
    for c in range(n_configs):
        nav = 1.0
        for k in range(n_months):
            start[k, c] = nav * (1.0 - costs[c, k])
            weight[k, c] = weights[c, k]
            nav *= 1.0 + monthly[c, k]
    peak = np.ones(n_configs)
    worst[:] = 0.0
    running = np.empty((2, 2, n_configs))
    ceiling = np.empty(n_configs)
    low = np.empty(n_configs)
    drawdown = np.empty(n_configs)
    scanned = np.empty(n_configs, dtype=np.int64)
    scan_peak = np.empty(n_configs)
    scan_worst = np.empty(n_configs)
    for k in range(n_months):
        lo, hi = days[k] - first, days[k + 1] - first
        a, w = start[k], weight[k]
        finite = True
        for t in range(lo, hi):
            finite = finite and np.isfinite(growth_alt[t]) and np.isfinite(growth_gap[t])
        high_of, low_of = _month_extremes(growth_alt, growth_gap, lo, hi, w, running)
        for c in range(n_configs):
            top = a[c] * high_of[c]
            ceiling[c] = top if top > peak[c] else peak[c]
            low[c] = a[c] * low_of[c]
            drawdown[c] = 1.0 - low[c] / ceiling[c]
        n_scanned = 0
        for c in range(n_configs):
            if (finite and a[c] > 0.0 and np.isfinite(ceiling[c]) and np.isfinite(low[c])
                    and (ceiling[c] == peak[c] or (low[c] > 0.0 and drawdown[c] <= worst[c]))):
                peak[c] = ceiling[c]
                worst[c] = max(worst[c], drawdown[c])
            else:
                scanned[n_scanned] = c
                scan_peak[n_scanned], scan_worst[n_scanned] = peak[c], worst[c]
                n_scanned += 1
        for t in range(lo, hi):
            g_alt, g_gap = growth_alt[t], growth_gap[t]
            for j in range(n_scanned):
                c = scanned[j]
                nav = a[c] * (g_alt + w[c] * g_gap)
                top = max(scan_peak[j], nav)
                scan_peak[j] = top
                scan_worst[j] = max(scan_worst[j], 1.0 - nav / top)
        for j in range(n_scanned):
            peak[scanned[j]] = scan_peak[j]
            worst[scanned[j]] = scan_worst[j]
