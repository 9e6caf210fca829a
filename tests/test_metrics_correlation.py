"""Kendall's tau and its permutation p-value against slow direct enumerations and SciPy."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from gaplab.metrics.correlation import kendall, mahonian


def _p_direct(x, y):
    """Two-sided p as SciPy defines it, from tau-b of every pairing (slow: n! kendalltau calls)."""
    observed = stats.kendalltau(x, y).statistic
    taus = np.array(
        [
            stats.kendalltau(x, y[list(p)]).statistic
            for p in itertools.permutations(range(len(x)))
        ]
    )
    eps = 1e-12
    tails = np.mean(taus <= observed + eps), np.mean(taus >= observed - eps)
    return min(1.0, 2 * min(tails))


@pytest.mark.parametrize("n", [3, 4, 5, 6])
def test_exact_p_without_ties_equals_direct_enumeration(n):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(size=n)
    r = kendall(x, y)
    assert r.tau == pytest.approx(stats.kendalltau(x, y).statistic)
    assert r.p == pytest.approx(_p_direct(x, y), abs=1e-12)
    assert r.exact and r.n_pairings == math.factorial(n) and r.se == 0.0
    assert r.method == f"exact over all {math.factorial(n):,} pairings"


@pytest.mark.parametrize("n", [4, 5, 6])
def test_exact_p_with_ties_equals_direct_enumeration(n):
    rng = np.random.default_rng(10 + n)
    x = rng.integers(0, 3, size=n).astype(float)
    y = rng.integers(0, 3, size=n).astype(float)
    x[:2] = [0.0, 1.0]  # never constant
    y[:2] = [1.0, 0.0]
    r = kendall(x, y)
    assert r.p == pytest.approx(_p_direct(x, y), abs=1e-12)
    assert r.exact and r.n_pairings == math.factorial(n)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 3), min_size=3, max_size=6),
    st.lists(st.integers(0, 3), min_size=6, max_size=6),
)
def test_exact_p_equals_direct_enumeration_property(xs, ys):
    x = np.array(xs, dtype=float)
    y = np.array(ys[: len(xs)], dtype=float)
    r = kendall(x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(r.tau) and math.isnan(r.p)
        return
    assert r.p == pytest.approx(_p_direct(x, y), abs=1e-12)
    assert 0 < r.p <= 1


def test_exact_p_equals_scipy_when_scipy_enumerates():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=7), rng.integers(0, 4, size=7).astype(float)
    for a, b in ((x, rng.normal(size=7)), (x.round(0), y)):
        ours = kendall(a, b)
        theirs = stats.permutation_test(
            (a,),
            lambda u: stats.kendalltau(u, b).statistic,
            permutation_type="pairings",
            n_resamples=np.inf,
        )
        assert ours.p == pytest.approx(theirs.pvalue, abs=1e-12)


@pytest.mark.parametrize("n", range(1, 8))
def test_mahonian_counts_inversions(n):
    counts = [0] * (n * (n - 1) // 2 + 1)
    for p in itertools.permutations(range(n)):
        counts[sum(p[i] > p[j] for i, j in itertools.combinations(range(n), 2))] += 1
    assert mahonian(n) == tuple(counts)
    assert sum(mahonian(20)) == math.factorial(20)


def test_ten_models_with_ties_are_exact():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=10).astype(float)
    y = rng.normal(size=10)
    r = kendall(x, y)
    assert r.exact and r.n_pairings == 3_628_800 and r.se == 0.0
    assert r.method == "exact over all 3,628,800 pairings"


def test_resampled_p_carries_its_standard_error_and_agrees_with_the_exact_one():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, size=10).astype(float)
    y = x + rng.normal(scale=2.0, size=10)
    exact = kendall(x, y)
    mc = kendall(x, y, max_enumerated=5, n_resamples=20_000, seed=3)
    assert not mc.exact and mc.n_pairings == 20_000
    assert mc.se == pytest.approx(math.sqrt(mc.p * (1 - mc.p) / 20_000))
    # the two-sided p doubles a tail, so its s.e. is up to twice the binomial one
    assert abs(mc.p - exact.p) < 2 * 5 * mc.se
    assert mc.method == f"from 20,000 resamples, MC s.e. {mc.se:.3g}"
    assert mc.tau == exact.tau


def test_resampled_p_is_seeded_and_never_zero():
    x = np.arange(16, dtype=float) // 2  # ties: 16 models cannot be enumerated
    y = np.arange(16, dtype=float)
    a = kendall(x, y, seed=5)
    assert a == kendall(x, y, seed=5)
    assert not a.exact and a.n_pairings == 99_999
    # no resample beats a perfect order: p is the floor SciPy's adjustment gives, 2 / (R + 1)
    assert a.p == pytest.approx(2 / 100_000)
    noisy = y[::-1] * 0.1 + np.sin(np.arange(16)) * 3
    b, c = kendall(x, noisy, seed=5), kendall(x, noisy, seed=6)
    assert b == kendall(x, noisy, seed=5) and b.p != c.p
    assert abs(b.p - c.p) < 2 * 5 * max(b.se, c.se)


def test_without_ties_any_number_of_models_is_exact():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=12), rng.normal(size=12)
    y = x + 2 * y  # a p-value away from 0 and 1
    r = kendall(x, y)
    assert r.exact and r.n_pairings == math.factorial(12)
    sx = np.sign(x[:, None] - x[None, :])

    def tau_batch(u, axis=-1):
        u = np.moveaxis(u, axis, -1)
        su = np.sign(u[..., :, None] - u[..., None, :])
        return (su * sx).sum(axis=(-1, -2)) / (12 * 11)

    mc = stats.permutation_test(
        (y,),
        tau_batch,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=40_000,
        rng=np.random.default_rng(0),
    )
    se = math.sqrt(r.p * (1 - r.p) / 40_000)
    assert abs(mc.pvalue - r.p) < 2 * 5 * se


def test_bad_arguments():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_resamples"):
            kendall([1, 2, 3], [3, 1, 2], n_resamples=bad)
    with pytest.raises(ValueError, match="max_enumerated can be at most 10"):
        kendall([1, 2, 3], [3, 1, 2], max_enumerated=11)
    r = kendall([1, 1, 1], [1, 2, 3])
    assert math.isnan(r.p) and not r.exact and "undefined" in r.method
