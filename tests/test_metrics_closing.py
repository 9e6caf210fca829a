"""Closing the gap (ideal words, mean gap vector) and the cross-model rank correlation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.metrics.closing import (
    closing_table,
    dot_accuracy,
    ideal_images,
    ideal_words,
)
from gaplab.metrics.correlation import kendall, kendall_by_group


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_ideal_words_are_means_over_the_other_factor():
    rng = np.random.default_rng(0)
    comp = rng.normal(size=(3, 4, 5))
    attr, obj, u0 = ideal_words(comp)
    unit = _unit(comp)
    for a in range(3):
        np.testing.assert_allclose(attr[a], sum(unit[a, o] for o in range(4)) / 4)
    for o in range(4):
        np.testing.assert_allclose(obj[o], sum(unit[a, o] for a in range(3)) / 3)
    np.testing.assert_allclose(u0, unit.reshape(-1, 5).mean(axis=0))
    np.testing.assert_allclose(
        attr.mean(axis=0), u0
    )  # the shared part is what the ideal words have in common
    with pytest.raises(ValueError, match="shape"):
        ideal_words(comp[:1])


def test_ideal_images_and_missing_classes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4))
    a, o = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1])
    ia, io, u0 = ideal_images(x, a, o)
    np.testing.assert_allclose(ia[1], _unit(x)[[2, 3]].mean(axis=0))
    np.testing.assert_allclose(io[0], _unit(x)[[0, 2, 4]].mean(axis=0))
    np.testing.assert_allclose(u0, _unit(x).mean(axis=0))
    with pytest.raises(ValueError, match=r"no image has attribute \[1\]"):
        ideal_images(x, np.array([0, 0, 2, 2, 2, 2]), o)


def test_dot_accuracy_counts_ties_against_the_image():
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert dot_accuracy(x, np.array([[2.0, 0.0], [0.0, 1.0]]), [0, 1]) == 1.0
    assert dot_accuracy(x, np.array([[1.0, 0.0], [1.0, 0.0]]), [0, 1]) == 0.0
    assert (
        dot_accuracy(x, np.array([[3.0, 0.0], [0.0, 0.5]]), [0, 1]) == 1.0
    )  # magnitudes count per class only
    with pytest.raises(ValueError, match="class_vectors must have shape"):
        dot_accuracy(x, np.ones((2, 3)), [0, 1])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_adding_one_vector_cannot_change_a_dot_product_prediction(seed):
    rng = np.random.default_rng(seed)
    x, v, g = rng.normal(size=(20, 6)), rng.normal(size=(4, 6)), rng.normal(size=6)
    labels = rng.integers(0, 4, size=20)
    assert dot_accuracy(x, v + g, labels) == dot_accuracy(x, v, labels)


def _toy_attributes(seed=0, gap=3.0):
    """Images = object + attribute directions; texts = the same plus a shared offset (a modality gap)."""
    rng = np.random.default_rng(seed)
    d, n_a, n_o = 16, 3, 4
    attr_dir, obj_dir = rng.normal(size=(n_a, d)), rng.normal(size=(n_o, d))
    offset = gap * _unit(rng.normal(size=d))
    a, o = rng.integers(0, n_a, 200), rng.integers(0, n_o, 200)
    img = 0.5 * attr_dir[a] + obj_dir[o] + 0.3 * rng.normal(size=(200, d))
    comp = np.stack(
        [
            [0.5 * attr_dir[i] + obj_dir[j] + offset for j in range(n_o)]
            for i in range(n_a)
        ]
    )
    return img, a, o, attr_dir + offset, obj_dir + offset, comp


def test_closing_table_on_a_known_geometry():
    img, a, o, words_a, words_o, comp = _toy_attributes()
    table = closing_table(img, a, o, words_a, words_o, comp)
    assert list(table) == [
        "class prompts",
        "class prompts + gap",
        "ideal words",
        "ideal words - u0",
        "ideal words + gap",
        "ideal words - u0 + gap",
    ]
    for v in table.values():
        assert set(v) == {"attribute", "object", "attribute_dot", "object_dot"}
        assert all(0 <= x <= 1 for x in v.values())
        # the dot rule is blind to one added vector
    assert (
        table["ideal words + gap"]["attribute_dot"]
        == table["ideal words"]["attribute_dot"]
    )
    # the text offset dominates the plain prompts; removing the shared part recovers the attributes
    assert table["ideal words - u0"]["attribute"] > table["class prompts"]["attribute"]
    with pytest.raises(ValueError, match="compositions must be"):
        closing_table(img, a, o, words_a[:2], words_o, comp)


def _tau_direct(x, y):
    """Kendall's tau-a over all pairs (equal to tau-b without ties)."""
    s = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return s / (len(x) * (len(x) - 1) / 2)


def test_kendall_equals_the_direct_count_and_the_exact_permutation_p():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=6)
    r = kendall(x, y)
    assert r.tau == pytest.approx(_tau_direct(x, y))
    # with 6 models every one of the 720 pairings is tried: p is the share at least as extreme
    taus = [_tau_direct(x, y[list(p)]) for p in itertools.permutations(range(6))]
    assert r.p == pytest.approx(np.mean(np.abs(taus) >= abs(r.tau) - 1e-12))
    assert r.n == 6 and r.significant == (r.p < 0.05)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=4, max_size=9, unique=True)
)
def test_kendall_properties(values):
    x = np.array(values)
    y = np.arange(len(x), dtype=float)
    r = kendall(x, y, n_resamples=200)
    assert -1 <= r.tau <= 1 and 0 < r.p <= 1
    ranks = np.argsort(np.argsort(x)).astype(float)
    assert kendall(ranks, y, n_resamples=200).tau == pytest.approx(
        r.tau
    )  # only the order counts
    assert kendall(x, -y, n_resamples=200).tau == pytest.approx(-r.tau)
    assert kendall(x, x, n_resamples=200).tau == pytest.approx(1.0)


def test_kendall_bad_input_and_groups():
    with pytest.raises(ValueError, match="at least 3 models"):
        kendall([1, 2], [2, 1])
    with pytest.raises(ValueError, match="one value per model each"):
        kendall([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        kendall([1, np.nan, 3], [1, 2, 3])
    assert np.isnan(kendall([1, 1, 1], [1, 2, 3]).tau)
    groups = kendall_by_group(
        [1, 2, 3, 4, 5, 6, 7],
        [1, 2, 3, 3, 2, 1, 0],
        ["a", "a", "a", "b", "b", "b", "c"],
    )
    assert set(groups) == {"a", "b"} and groups["a"].tau == 1 and groups["b"].tau == -1


def test_permutation_p_with_ties_equals_scipy_per_pairing():
    from scipy import stats

    x = np.array([1.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0])
    y = np.array([2.0, 1.0, 1.0, 4.0, 3.0, 3.0, 6.0])
    r = kendall(x, y)  # 7! = 5040 pairings < 9999: exact
    assert r.tau == pytest.approx(stats.kendalltau(x, y).statistic)
    taus = np.array(
        [
            stats.kendalltau(x[list(p)], y).statistic
            for p in itertools.permutations(range(7))
        ]
    )
    # scipy's two-sided p: twice the smaller tail (the null need not be symmetric when there are ties)
    eps = 1e-12
    tails = np.mean(taus >= r.tau - eps), np.mean(taus <= r.tau + eps)
    assert r.p == pytest.approx(min(1.0, 2 * min(tails)), abs=1e-9)
