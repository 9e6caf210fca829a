"""Gap metrics against slow direct formulas, with invariances, ranges and bad inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gaplab import metrics
from gaplab.metrics.gap import RMG_MIN_MATCHED_DISTANCE
from tests.conftest import embedding_pair, normalise, random_orthogonal


def slow_l2m(x, y):
    x, y = normalise(x), normalise(y)
    mx = [sum(x[i, j] for i in range(len(x))) / len(x) for j in range(x.shape[1])]
    my = [sum(y[i, j] for i in range(len(y))) / len(y) for j in range(y.shape[1])]
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(mx, my)))


def slow_l2i(x, y, pairs):
    x, y = normalise(x), normalise(y)
    return sum(math.dist(x[a], y[b]) for a, b in pairs) / len(pairs)


def cos(u, v):
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def slow_mean_cos(x):
    vals = [cos(x[i], x[j]) for i, j in itertools.permutations(range(len(x)), 2)]
    return sum(vals) / len(vals)


def slow_rmg(x, y, pairs):
    dist = lambda u, v: (1 - cos(u, v)) / 2  # noqa: E731
    m = max(sum(dist(x[a], y[b]) for a, b in pairs) / len(pairs), 1e-3)

    def within(z):
        pairs_z = itertools.permutations(range(len(z)), 2)
        return np.mean([dist(z[i], z[j]) for i, j in pairs_z])

    return m / (m + (within(x) + within(y)) / 2)


def identity_pairs(n):
    return [(i, i) for i in range(n)]


@given(embedding_pair())
def test_l2m_l2i_rmg_match_direct_formulas(pair):
    x, y = pair
    assert metrics.l2m(x, y) == pytest.approx(slow_l2m(x, y), abs=1e-9)
    assert metrics.l2i(x, y) == pytest.approx(
        slow_l2i(x, y, identity_pairs(len(x))), abs=1e-9
    )
    assert metrics.rmg(x, y) == pytest.approx(
        slow_rmg(x, y, identity_pairs(len(x))), abs=1e-9
    )
    assert metrics.mean_cosine(x) == pytest.approx(slow_mean_cos(x), abs=1e-9)


@given(embedding_pair(same_rows=False), st.integers(0, 2**31 - 1))
def test_metrics_with_explicit_pairs_match_direct_formulas(pair, seed):
    x, y = pair
    rng = np.random.default_rng(seed)
    p = np.stack([rng.integers(0, len(x), 7), rng.integers(0, len(y), 7)], axis=1)
    assert metrics.l2i(x, y, pairs=p) == pytest.approx(
        slow_l2i(x, y, p.tolist()), abs=1e-9
    )
    assert metrics.rmg(x, y, pairs=p) == pytest.approx(
        slow_rmg(x, y, p.tolist()), abs=1e-9
    )
    assert metrics.l2m(x, y) == pytest.approx(slow_l2m(x, y), abs=1e-9)


@given(embedding_pair(), st.integers(0, 2**31 - 1))
def test_same_orthogonal_map_changes_nothing(pair, seed):
    x, y = pair
    q = random_orthogonal(x.shape[1], seed)
    for f in (metrics.l2m, metrics.l2i, metrics.rmg):
        assert f(x @ q, y @ q) == pytest.approx(f(x, y), abs=1e-9)


@given(embedding_pair(), st.integers(0, 2**31 - 1))
def test_permuting_rows_changes_nothing(pair, seed):
    x, y = pair
    perm = np.random.default_rng(seed).permutation(len(x))
    # permuting both sides alike keeps the pairs; L2M does not depend on pairing at all
    for f in (metrics.l2m, metrics.l2i, metrics.rmg):
        assert f(x[perm], y[perm]) == pytest.approx(f(x, y), abs=1e-9)
    assert metrics.l2m(x[perm], y) == pytest.approx(metrics.l2m(x, y), abs=1e-9)


@given(embedding_pair(), st.floats(0.01, 100), st.floats(0.01, 100))
def test_scale_of_rows_does_not_matter(pair, a, b):
    x, y = pair
    for f in (metrics.l2m, metrics.l2i, metrics.rmg):
        assert f(a * x, b * y) == pytest.approx(f(x, y), abs=1e-9)


@given(embedding_pair())
def test_ranges(pair):
    x, y = pair
    assert 0.0 <= metrics.l2m(x, y) <= 2.0 + 1e-12
    assert 0.0 <= metrics.l2i(x, y) <= 2.0 + 1e-12
    assert 0.0 <= metrics.rmg(x, y) <= 1.0
    assert -1.0 - 1e-12 <= metrics.mean_cosine(x) <= 1.0 + 1e-12


def test_returns_plain_floats_and_accepts_tensors(rng):
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    for f in (metrics.l2m, metrics.l2i, metrics.rmg, metrics.mean_cosine):
        args = (x,) if f is metrics.mean_cosine else (x, y)
        value = f(*args)
        assert type(value) is float
        targs = tuple(
            torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in args
        )
        assert f(*targs) == pytest.approx(value, abs=1e-5)


def test_known_values():
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    y = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert metrics.l2m(x, y) == pytest.approx(math.sqrt(2))
    assert metrics.l2i(x, y) == pytest.approx(math.sqrt(2))
    # matched distance (1 - 0)/2 = 0.5; within each modality distance 0 -> RMG = 1
    assert metrics.rmg(x, y) == pytest.approx(1.0)
    # identical modalities: matched distance clamps at 1e-3
    z = np.eye(3)
    within = 0.5  # cosines 0 -> distance 1/2
    assert metrics.rmg(z, z) == pytest.approx(
        RMG_MIN_MATCHED_DISTANCE / (RMG_MIN_MATCHED_DISTANCE + within)
    )
    assert metrics.l2m(z, z) == pytest.approx(0.0)


def test_rmg_coco_style_several_captions_per_image(rng):
    img = rng.normal(size=(4, 6))
    txt = rng.normal(size=(12, 6))
    pairs = np.array([(i // 3, i) for i in range(12)])
    assert metrics.rmg(img, txt, pairs) == pytest.approx(
        slow_rmg(img, txt, pairs.tolist()), abs=1e-12
    )
    assert metrics.l2i(img, txt, pairs) == pytest.approx(
        slow_l2i(img, txt, pairs.tolist()), abs=1e-12
    )


@pytest.mark.parametrize("f", [metrics.l2m, metrics.l2i, metrics.rmg])
def test_bad_inputs_raise_clear_errors(f, rng):
    good = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="same dimension"):
        f(good, rng.normal(size=(5, 4)))
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        f(good[0], good)
    bad = good.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f(bad, good)
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        f(good, bad)
    zero = good.copy()
    zero[3] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        f(zero, good)
    with pytest.raises(ValueError, match="at least 2 rows"):
        f(good[:1], good[:1])


@pytest.mark.parametrize("f", [metrics.l2i, metrics.rmg])
def test_bad_pairs(f, rng):
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(6, 3))
    with pytest.raises(ValueError, match="same number of rows"):
        f(x, y)
    with pytest.raises(ValueError, match="outside 0..5"):
        f(x, y, pairs=[[0, 6]])
    with pytest.raises(ValueError, match="outside 0..4"):
        f(x, y, pairs=[[-1, 0]])
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        f(x, y, pairs=[0, 1])
    with pytest.raises(ValueError, match="empty"):
        f(x, y, pairs=np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        f(x, y, pairs=[[0.5, 1]])


def test_linear_separability(rng):
    d = 16
    shift = np.zeros(d)
    shift[0] = 3.0
    x = rng.normal(size=(200, d)) + shift
    y = rng.normal(size=(200, d)) - shift
    assert metrics.linear_separability(x, y) == pytest.approx(1.0)
    # the same distribution on both sides: held-out accuracy near chance
    same = metrics.linear_separability(
        rng.normal(size=(300, d)), rng.normal(size=(300, d))
    )
    assert 0.35 < same < 0.65
    assert metrics.linear_separability(x, y, seed=3) == metrics.linear_separability(
        x, y, seed=3
    )
    with pytest.raises(ValueError, match="test_fraction"):
        metrics.linear_separability(x, y, test_fraction=1.0)


@pytest.mark.parametrize("n", [7, 23, 50])
def test_linear_separability_uses_fahims_80_20_split_of_pairs(rng, n):
    from sklearn.linear_model import LogisticRegression

    x, y = rng.normal(size=(n, 5)) + 0.3, rng.normal(size=(n, 5)) - 0.3
    # written out as Fahim et al.'s evaluator does it: int(0.8 N) pairs train, the rest test, a pair's
    # image and text in the same split
    perm = np.random.default_rng(4).permutation(n)
    n_train = int(0.8 * n)
    tr, te = perm[:n_train], perm[n_train:]
    xn, yn = normalise(x), normalise(y)
    clf = LogisticRegression(C=1.0, max_iter=5000).fit(
        np.concatenate([xn[tr], yn[tr]]), np.repeat([0, 1], len(tr))
    )
    direct = clf.score(np.concatenate([xn[te], yn[te]]), np.repeat([0, 1], len(te)))
    got = metrics.linear_separability(x, y, seed=4)
    assert got == pytest.approx(direct)
    # the test set holds both sides of n - int(0.8 n) pairs
    assert (got * 2 * (n - n_train)) == pytest.approx(round(got * 2 * (n - n_train)))


def slow_neighbour_overlap(x, y, k):
    x, y = normalise(x), normalise(y)
    shares = []
    for i in range(len(x)):

        def nn(z):
            sims = [(-float(z[i] @ z[j]), j) for j in range(len(z)) if j != i]
            return {j for _, j in sorted(sims)[:k]}

        shares.append(len(nn(x) & nn(y)) / k)
    return sum(shares) / len(shares)


def test_neighbour_overlap(rng):
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    assert metrics.neighbour_overlap(x, y, k=4) == pytest.approx(
        slow_neighbour_overlap(x, y, 4)
    )
    assert metrics.neighbour_overlap(
        x, 2 * x @ random_orthogonal(5, 1), k=4
    ) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="k must lie"):
        metrics.neighbour_overlap(x, y, k=30)
