"""engine.optimisation.convergence: the stop rule's "no more improvement" half.

Reference iterations are worked out by hand from the Notes: best_i = max_{j<=i} s_j and
the rule fires at the first i >= max(window + 1, min_iteration) with
best_i - best_{i-window} < tolerance |best_{i-window}|.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.optimisation.convergence import convergence
from engine.validation import ConfigError

RTOL = 1e-12


def test_stops_at_the_first_small_improvement_over_the_window():
    # window 3, tolerance 1%. best (1-based): 1, 2, 2.5, 2.6, 2.7, 2.7, 2.8, 2.8, 2.8, 2.805.
    # i = 4: 2.6 - 1.0 = 1.6 >= 0.010; i = 5: 2.7 - 2.0 = 0.7 >= 0.020;
    # i = 6: 2.7 - 2.5 = 0.2 >= 0.025; i = 7: 2.8 - 2.6 = 0.2 >= 0.026;
    # i = 8: 2.8 - 2.7 = 0.1 >= 0.027; i = 9: 2.8 - 2.7 = 0.1 >= 0.027;
    # i = 10: 2.805 - 2.8 = 0.005 < 0.028 -> stop at 10.
    scores = [1.0, 2.0, 2.5, 2.6, 2.7, 1.0, 2.8, 2.0, 2.8, 2.805]
    table, stop = convergence(scores, window=3, tolerance=0.01)
    assert stop == 10
    assert table.columns == ["iteration", "score", "best_score", "converged"]
    assert table["iteration"].to_list() == list(range(1, 11))
    np.testing.assert_allclose(
        table["best_score"].to_numpy(),
        [1.0, 2.0, 2.5, 2.6, 2.7, 2.7, 2.8, 2.8, 2.8, 2.805],
        rtol=RTOL,
    )
    assert table["converged"].to_list() == [False] * 9 + [True]


def test_fires_as_soon_as_the_window_allows():
    # Flat scores: the first comparison is iteration window + 1 (best_4 vs best_1).
    table, stop = convergence([1.0] * 6, window=3, tolerance=0.01)
    assert stop == 4
    assert table["converged"].to_list() == [False, False, False, True, True, True]


def test_min_iteration_ignores_earlier_windows():
    # Flat for 4 configs then a 25% jump: the rule would fire at 3 (window 2), but the
    # caller allows it from 5 on: i = 5: 2.5 - 2.0 = 0.5 >= 0.02, no stop; i = 6 (flat
    # again): 2.5 - 2.0 = 0.5, no; i = 7: 2.5 - 2.5 = 0 < 0.025 -> 7.
    scores = [2.0, 2.0, 2.0, 2.0, 2.5, 2.5, 2.5]
    assert convergence(scores, window=2)[1] == 3
    table, stop = convergence(scores, window=2, min_iteration=5)
    assert stop == 7
    assert table["converged"].to_list() == [False] * 6 + [True]


def test_relative_to_a_negative_best():
    # best -1.0 then -0.995: improvement 0.005 < 0.01 * |-1.0| -> stops at iteration 3.
    _, stop = convergence([-1.0, -2.0, -0.995], window=2, tolerance=0.01)
    assert stop == 3


def test_nan_scores_never_count_as_best():
    # NaN is -inf: best -inf, 1.0, 1.0, 1.0; i = 3: 1 - (-inf) is no stop (inf),
    # i = 4: 1.0 - 1.0 = 0 < 0.01 -> 4.
    table, stop = convergence([math.nan, 1.0, 1.0, 1.0], window=2)
    assert stop == 4
    assert table["best_score"].to_list() == [-math.inf, 1.0, 1.0, 1.0]


def test_never_fires():
    # Each step improves by 10%, far above 1%; and a sequence no longer than the window.
    table, stop = convergence(1.1 ** np.arange(30), window=5, tolerance=0.01)
    assert stop is None
    assert not table["converged"].any()
    assert convergence([1.0, 1.0, 1.0], window=3)[1] is None
    # A best of exactly 0 never satisfies the strict inequality.
    assert convergence([0.0] * 10, window=2)[1] is None


@pytest.mark.parametrize("window", [1, 20])
def test_table_has_one_row_per_score(window):
    table, _ = convergence(np.linspace(0.0, 1.0, 25), window=window)
    assert table.height == 25


@pytest.mark.parametrize(("kwargs", "field"), [({"window": 0}, "window"),
                                                ({"tolerance": 1.5}, "tolerance")])
def test_arguments_are_validated(kwargs, field):
    with pytest.raises(ConfigError, match=f"^convergence.{field} ="):
        convergence([1.0, 2.0], **kwargs)


def test_with_batches_only_a_batch_end_can_converge_over_the_whole_batch():
    # window 2; batches of 2, 4: best 1, 2 | 3, 3, 3, 3. Per config the rule fires at 5
    # (3 - 3 < 0.03), inside the second batch; by batch, its end (6) is compared with
    # best before the batch (i = 2): 3 - 2 >= 0.02 -> no stop.
    scores = [1.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    assert convergence(scores, window=2)[1] == 5
    table, stop = convergence(scores, window=2, batches=[2, 4])
    assert stop is None
    assert not table["converged"].any()
    # one more batch of 2 that stays flat: 3 - 3 over the last max(2, 2) configs -> 8.
    table, stop = convergence([*scores, 3.0, 2.0], window=2, batches=[2, 4, 2])
    assert stop == 8
    assert table["converged"].to_list() == [False] * 7 + [True]
    # batches of one are the per-config rule
    assert convergence(scores, window=2, batches=[1] * 6)[1] == 5


def test_with_batches_a_window_reaches_back_but_not_into_the_first_batch():
    # window 3, batches 3, 1, 1, 1: best 1, 1.5, 2 | 2.01 | 2.015 | 2.02.
    # i = 4: m = min(1, 3) = 1 and i = 5: m = 2 lie inside the first batch: no test
    # (per config, with tolerance 50%, i = 5 fires: 2.015 - 1.5 < 0.5 x 1.5);
    # i = 6: m = 3: 2.02 - 2 = 0.02 < 0.02? no (strict); tolerance 2%: 0.02 < 0.04 -> 6.
    scores = [1.0, 1.5, 2.0, 2.01, 2.015, 2.02]
    assert convergence(scores, window=3, tolerance=0.5)[1] == 5
    assert convergence(scores, window=3, tolerance=0.5, batches=[3, 1, 1, 1])[1] == 6
    assert convergence(scores, window=3, batches=[3, 1, 1, 1])[1] is None
    assert convergence(scores, window=3, tolerance=0.02, batches=[3, 1, 1, 1])[1] == 6


@pytest.mark.parametrize("batches", [[2, 1], [3, 0, 1], [5]])
def test_batches_must_be_positive_and_cover_the_scores(batches):
    with pytest.raises(ConfigError, match=r"^convergence.batches = "):
        convergence([1.0, 2.0, 3.0, 4.0], window=1, batches=batches)


def test_a_dip_below_the_best_does_not_delay_the_stop():
    """The window compares best-so-far with best-so-far, not with the raw score: at
    iteration 6 the score two configs back is the dip (1), but the best then was 2, so
    the improvement is 0 and the rule fires (against the raw score it would be 1, 100%)."""
    table, stop = convergence([2, 2, 2, 1, 2, 2], window=2, min_iteration=6)
    assert stop == 6
    assert table["best_score"].to_list() == [2.0] * 6
    assert table["converged"].to_list() == [False] * 5 + [True]
