"""Series collection across restarts and TensorBoard's debiased EMA, on hand-computed values."""

from __future__ import annotations

import math

import pytest

from m2rl_slime.analyze.curves.series import collect, ema


def test_ema_is_tensorboards_debiased_average():
    # w = 0.5 over [1, 0, 1]: last = 0.5, 0.25, 0.625; debias 1 - 0.5**n = 0.5, 0.75, 0.875
    assert ema([1.0, 0.0, 1.0], 0.5) == pytest.approx([1.0, 1 / 3, 0.625 / 0.875])
    # w = 0.6 over [0, 1]: last = 0, 0.4; debias 0.4, 0.64
    assert ema([0.0, 1.0], 0.6) == pytest.approx([0.0, 0.625])


def test_ema_weight_zero_and_constant_series_are_unchanged():
    assert ema([0.3, 0.9, 0.1], 0.0) == [0.3, 0.9, 0.1]
    assert ema([2.0, 2.0, 2.0], 0.9) == [2.0, 2.0, 2.0]
    assert ema([], 0.6) == []


def test_ema_passes_non_finite_values_through_without_poisoning_the_average():
    got = ema([1.0, math.nan, 0.0, math.inf], 0.5)
    assert got[0] == 1.0 and math.isnan(got[1]) and got[3] == math.inf
    assert got[2] == pytest.approx(1 / 3)  # as if the NaN were not there


@pytest.mark.parametrize("weight", [-0.1, 1.0, 1.5])
def test_ema_rejects_weights_outside_0_1(weight):
    with pytest.raises(ValueError, match="smoothing weight"):
        ema([1.0, 2.0], weight)


def test_collect_groups_by_tag_in_step_order():
    series, purged = collect([("a", 0, 1.0), ("b", 0, 5.0), ("a", 1, 2.0), ("a", 3, 4.0)])
    assert series["a"].steps == (0, 1, 3) and series["a"].values == (1.0, 2.0, 4.0)
    assert series["b"].steps == (0,) and purged == 0


def test_a_resumed_run_replaces_the_steps_it_logs_again():
    # crashed after step 5, resumed from the checkpoint at step 3: steps 3..5 of the first attempt are orphans
    first = [("r", s, float(s)) for s in range(6)]
    resumed = [("r", s, 10.0 + s) for s in range(3, 8)]
    series, purged = collect(first + resumed)
    assert series["r"].steps == tuple(range(8))
    assert series["r"].values == (0.0, 1.0, 2.0, 13.0, 14.0, 15.0, 16.0, 17.0)
    assert purged == 3
