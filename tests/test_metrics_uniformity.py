"""Alignment and uniformity against slow direct formulas, with invariances, ranges, the training losses and bad
inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gaplab import metrics
from gaplab.metrics.uniformity import cross_uniformity
from gaplab.training import losses
from tests.conftest import embedding_pair, normalise, random_orthogonal

torch.set_num_threads(1)


def slow_alignment(x, y):
    x, y = normalise(x), normalise(y)
    total = 0.0
    for i in range(len(x)):
        total += sum((x[i, k] - y[i, k]) ** 2 for k in range(x.shape[1]))
    return total / len(x)


def slow_uniformity(x, t=2.0):
    x = normalise(x)
    terms = []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            sq = sum((x[i, k] - x[j, k]) ** 2 for k in range(x.shape[1]))
            terms.append(math.exp(-t * sq))
    return math.log(sum(terms) / len(terms))


@given(embedding_pair(), st.sampled_from([0.5, 1.0, 2.0, 5.0]))
def test_match_direct_formulas(pair, t):
    x, y = pair
    assert metrics.alignment(x, y) == pytest.approx(slow_alignment(x, y), abs=1e-9)
    assert metrics.uniformity(x, t=t) == pytest.approx(slow_uniformity(x, t), abs=1e-9)
    assert metrics.uniformity(y) == pytest.approx(slow_uniformity(y, 2.0), abs=1e-9)


@given(embedding_pair(), st.integers(0, 2**31 - 1))
def test_same_orthogonal_map_changes_nothing(pair, seed):
    x, y = pair
    q = random_orthogonal(x.shape[1], seed)
    assert metrics.alignment(x @ q, y @ q) == pytest.approx(
        metrics.alignment(x, y), abs=1e-9
    )
    assert metrics.uniformity(x @ q) == pytest.approx(metrics.uniformity(x), abs=1e-9)


@given(embedding_pair(), st.floats(0.01, 100), st.floats(0.01, 100))
def test_scale_of_rows_does_not_matter(pair, a, b):
    x, y = pair
    assert metrics.alignment(a * x, b * y) == pytest.approx(
        metrics.alignment(x, y), abs=1e-9
    )
    assert metrics.uniformity(a * x) == pytest.approx(metrics.uniformity(x), abs=1e-9)


@given(embedding_pair(), st.integers(0, 2**31 - 1))
def test_permuting_rows_changes_nothing(pair, seed):
    x, y = pair
    perm = np.random.default_rng(seed).permutation(len(x))
    # alignment depends on the pairing, so both sides move together; uniformity sees one set only
    assert metrics.alignment(x[perm], y[perm]) == pytest.approx(
        metrics.alignment(x, y), abs=1e-9
    )
    assert metrics.uniformity(x[perm]) == pytest.approx(metrics.uniformity(x), abs=1e-9)


@given(embedding_pair(), st.floats(0.1, 50))
def test_ranges(pair, t):
    x, y = pair
    assert 0.0 <= metrics.alignment(x, y) <= 4.0
    assert -4.0 * t <= metrics.uniformity(x, t=t) <= 0.0


def test_known_values():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    assert metrics.alignment(x, x) == pytest.approx(0.0, abs=1e-15)
    assert metrics.alignment(x, -x) == pytest.approx(4.0)
    # rows at right angles: ||x - y||^2 = 2 for every pair
    assert metrics.alignment(np.eye(3), np.roll(np.eye(3), 1, axis=0)) == pytest.approx(
        2.0
    )
    same = np.tile([[0.3, -0.4, 1.2]], (5, 1))
    assert metrics.uniformity(same) == pytest.approx(0.0, abs=1e-15)
    # the orthonormal basis: every pair at squared distance 2, so the mean of exp(-2t) gives -2t
    assert metrics.uniformity(np.eye(4), t=1.5) == pytest.approx(-3.0)
    # an antipodal pair reaches the lower end -4t
    assert metrics.uniformity(
        np.array([[1.0, 0.0], [-1.0, 0.0]]), t=3.0
    ) == pytest.approx(-12.0)


def test_large_t_does_not_underflow():
    # exp(-4 * 400) is 0 in float64; a naive log(mean(exp(...))) would give -inf
    pair = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert metrics.uniformity(pair, t=400.0) == pytest.approx(-1600.0)
    value = metrics.uniformity(np.eye(6), t=1000.0)
    assert math.isfinite(value) and value == pytest.approx(-2000.0)


def test_agrees_with_the_training_losses(rng):
    # gaplab.training.losses takes rows that are already unit length; the metrics normalise them themselves
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    tx = torch.tensor(normalise(x), dtype=torch.float64)
    ty = torch.tensor(normalise(y), dtype=torch.float64)
    for t in (0.5, 2.0, 7.0):
        # losses.uniformity takes log(number of pairs) as a float32 tensor even for float64 input, which
        # costs it about 1e-7; the definitions agree, the precision does not
        assert metrics.uniformity(x, t=t) == pytest.approx(
            float(losses.uniformity(tx, t=t)), abs=1e-6
        )
    assert metrics.alignment(x, y) == pytest.approx(
        float(losses.alignment(tx, ty)), abs=1e-10
    )


def test_returns_plain_floats_and_accepts_tensors(rng):
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    a, u = metrics.alignment(x, y), metrics.uniformity(x)
    assert type(a) is float and type(u) is float
    tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ty = torch.tensor(y, dtype=torch.float32)
    assert metrics.alignment(tx, ty) == pytest.approx(a, abs=1e-5)
    assert metrics.uniformity(tx) == pytest.approx(u, abs=1e-5)


def test_alignment_needs_matched_rows(rng):
    with pytest.raises(ValueError, match="same number of rows"):
        metrics.alignment(rng.normal(size=(5, 3)), rng.normal(size=(6, 3)))
    with pytest.raises(ValueError, match="same dimension"):
        metrics.alignment(rng.normal(size=(5, 3)), rng.normal(size=(5, 4)))
    # a single pair is a valid (if noisy) alignment
    assert metrics.alignment([[1.0, 0.0]], [[0.0, 1.0]]) == pytest.approx(2.0)


@pytest.mark.parametrize("f", [metrics.alignment, lambda x, y: metrics.uniformity(x)])
def test_bad_embeddings_raise_clear_errors(f, rng):
    good = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        f(good[0], good)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f(bad, good)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        f(bad, good)
    zero = good.copy()
    zero[3] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        f(zero, good)


def test_uniformity_needs_two_rows_and_a_valid_t(rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="at least 2 rows"):
        metrics.uniformity(x[:1])
    for t in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="t must be a positive finite number"):
            metrics.uniformity(x, t=t)
    for t in ("2", None, True):
        with pytest.raises(ValueError, match="t must be a positive finite number"):
            metrics.uniformity(x, t=t)
    assert metrics.uniformity(x, t=np.float32(2.0)) == pytest.approx(
        metrics.uniformity(x, t=2)
    )


def slow_cross_uniformity(x, y, t=2.0):
    x, y = normalise(x), normalise(y)
    terms = []
    for i in range(len(x)):
        for j in range(len(y)):
            if i != j:
                sq = sum((x[i, k] - y[j, k]) ** 2 for k in range(x.shape[1]))
                terms.append(math.exp(-t * sq))
    return math.log(sum(terms) / len(terms))


@given(embedding_pair(), st.sampled_from([0.5, 1.0, 2.0, 5.0]))
def test_cross_uniformity_matches_the_double_loop(pair, t):
    x, y = pair
    got = cross_uniformity(x, y, t=t)
    assert got == pytest.approx(slow_cross_uniformity(x, y, t), abs=1e-9)
    assert cross_uniformity(x, y) == pytest.approx(
        slow_cross_uniformity(x, y), abs=1e-9
    )


@given(embedding_pair(), st.integers(0, 2**31 - 1), st.floats(0.1, 50))
def test_cross_uniformity_properties(pair, seed, t):
    x, y = pair
    value = cross_uniformity(x, y, t=t)
    assert -4.0 * t <= value <= 0.0
    # symmetric: swapping the modalities transposes the matrix, and i != j is the same set of pairs
    assert cross_uniformity(y, x, t=t) == pytest.approx(value, abs=1e-9)
    q = random_orthogonal(x.shape[1], seed)
    assert cross_uniformity(x @ q, y @ q, t=t) == pytest.approx(value, abs=1e-9)
    # moving whole pairs changes nothing; only which caption is a row's own counts
    perm = np.random.default_rng(seed).permutation(len(x))
    assert cross_uniformity(x[perm], y[perm], t=t) == pytest.approx(value, abs=1e-9)


def test_cross_uniformity_known_values_and_the_training_loss(rng):
    # images on a basis, each caption its own image: every non-matching pair is at squared distance 2
    assert cross_uniformity(np.eye(4), np.eye(4), t=1.5) == pytest.approx(-3.0)
    # the matching pairs are left out: antipodal captions of two images make the one cross pair coincide
    x = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert cross_uniformity(x, -x) == pytest.approx(0.0, abs=1e-15)
    assert cross_uniformity(x, x, t=3.0) == pytest.approx(-12.0)
    a, b = rng.normal(size=(30, 6)), rng.normal(size=(30, 6))
    ta = torch.tensor(normalise(a), dtype=torch.float64)
    tb = torch.tensor(normalise(b), dtype=torch.float64)
    assert cross_uniformity(a, b) == pytest.approx(
        float(losses.cross_uniformity(ta, tb)), abs=1e-6
    )


def test_cross_uniformity_bad_input(rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="same number of rows"):
        cross_uniformity(x, rng.normal(size=(6, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        cross_uniformity(x[:1], x[:1])
    with pytest.raises(ValueError, match="t must be a positive finite number"):
        cross_uniformity(x, x, t=0.0)
