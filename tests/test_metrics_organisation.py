"""The organisation test: Kendall distances against slow direct formulas, properties and bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.metrics.organisation import (
    class_similarities,
    kendall_distance,
    organisation_test,
    row_distances,
    script_kendall_distance,
)

scores = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False), min_size=2, max_size=9
)


def slow_kendall(u, v):
    n = len(u)
    bad = sum(
        1
        for i, j in itertools.combinations(range(n), 2)
        if (u[i] < u[j] and v[i] > v[j]) or (u[i] > u[j] and v[i] < v[j])
    )
    return bad / (n * (n - 1) / 2)


def slow_script(u, v):
    # what gap_neighborhood_test.py does, written out: ranks 1..n by a stable sort, then, for every pair of
    # rank values, compare the positions (class indices) that hold them
    def ranks(arr):
        order = sorted(range(len(arr)), key=lambda i: arr[i])
        r = [0] * len(arr)
        for rank, i in enumerate(order, start=1):
            r[i] = rank
        return r

    a, b = ranks(u), ranks(v)
    n = len(u)
    bad = 0
    for x, y in itertools.combinations(range(1, n + 1), 2):
        if (a.index(x) < a.index(y)) != (b.index(x) < b.index(y)):
            bad += 1
    return bad / (0.5 * n * (n - 1))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_kendall_distances_equal_the_direct_formulas(data):
    u = data.draw(scores)
    v = data.draw(
        st.lists(
            st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
            min_size=len(u),
            max_size=len(u),
        )
    )
    assert kendall_distance(u, v) == pytest.approx(slow_kendall(u, v), abs=1e-12)
    assert script_kendall_distance(u, v) == pytest.approx(slow_script(u, v), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
        min_size=2,
        max_size=9,
        unique=True,
    ),
    st.randoms(use_true_random=False),
)
def test_properties(u, rnd):
    u = np.array(u)
    v = np.array(rnd.sample(list(u), len(u)))
    d = kendall_distance(u, v)
    assert 0.0 <= d <= 1.0
    assert d == kendall_distance(v, u)  # symmetric
    assert kendall_distance(u, u) == 0.0 and script_kendall_distance(u, u) == 0.0
    assert kendall_distance(u, -u) == 1.0
    assert (
        kendall_distance(u, 4 * v) == d
    )  # only the order counts (a power of two scales exactly)
    perm = np.array(rnd.sample(range(len(u)), len(u)))
    assert kendall_distance(u[perm], v[perm]) == pytest.approx(
        d
    )  # the standard one ignores how items are numbered


def test_the_script_number_depends_on_how_classes_are_numbered():
    u, v = [2.0, 3.0, 1.0], [1.0, 3.0, 2.0]
    # one pair of three is ordered differently; the script reports all three
    assert kendall_distance(u, v) == pytest.approx(1 / 3)
    assert script_kendall_distance(u, v) == pytest.approx(1.0)
    # renumber the classes: the standard distance stays, the script's changes
    p = [2, 0, 1]
    assert kendall_distance(np.take(u, p), np.take(v, p)) == pytest.approx(1 / 3)
    assert script_kendall_distance(np.take(u, p), np.take(v, p)) != pytest.approx(1.0)
    # and a reversed ranking need not be at distance 1 by the script's count
    assert kendall_distance([0.0, 2.0, 1.0], [0.0, -2.0, -1.0]) == 1.0
    assert script_kendall_distance([0.0, 2.0, 1.0], [0.0, -2.0, -1.0]) == pytest.approx(
        1 / 3
    )


def test_class_similarities_are_mean_pairwise_cosines():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.arange(30) % 3
    t = rng.normal(size=(3, 5))
    img, txt = class_similarities(x, labels, t)
    for a in range(3):
        for b in range(3):
            pairs = [
                x[i] @ x[j]
                for i in np.nonzero(labels == a)[0]
                for j in np.nonzero(labels == b)[0]
            ]
            assert img[a, b] == pytest.approx(np.mean(pairs))
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    np.testing.assert_allclose(txt, tn @ tn.T)


def test_organisation_of_one_geometry_seen_twice_is_perfect():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 8))
    labels = np.repeat(np.arange(6), 20)
    x = centres[labels] + 0.01 * rng.normal(size=(120, 8))
    out = organisation_test(x, labels, centres)
    assert out["distance"] < 0.05 and out["tau"] > 0.9 and out["classes"] == 6
    shuffled = organisation_test(x, rng.permutation(labels), centres)
    assert shuffled["distance"] > out["distance"] + 0.2


def test_include_self_changes_only_the_row_length():
    a = np.array([[1.0, 0.2, 0.3], [0.2, 1.0, 0.1], [0.3, 0.1, 1.0]])
    b = np.array([[1.0, 0.3, 0.2], [0.3, 1.0, 0.1], [0.2, 0.1, 1.0]])
    with_self = row_distances(a, b)
    without = row_distances(a, b, include_self=False)
    assert without[0] == 1.0  # of the two others, the order flips
    assert with_self[0] == pytest.approx(1 / 3)


def test_bad_inputs_are_named():
    x = np.eye(4)
    with pytest.raises(ValueError, match="no image of class"):
        class_similarities(x, np.array([0, 0, 1, 1]), np.ones((3, 4)))
    with pytest.raises(ValueError, match="dimension"):
        class_similarities(x, np.array([0, 0, 1, 1]), np.ones((2, 3)))
    with pytest.raises(ValueError, match="same length"):
        kendall_distance([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        kendall_distance([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="definition"):
        row_distances(np.eye(3), np.eye(3), definition="other")
    with pytest.raises(ValueError, match="at least 3 classes"):
        row_distances(np.eye(2), np.eye(2), include_self=False)
