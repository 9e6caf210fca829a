"""MOAD and the similarity contrast against the direct pairwise formulas, with properties and bad inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gaplab import metrics
from tests.conftest import normalise, random_orthogonal


def slow_contrast(x, labels):
    x = normalise(x)
    same, diff = [], []
    for i, j in itertools.permutations(range(len(x)), 2):
        (same if labels[i] == labels[j] else diff).append(float(x[i] @ x[j]))
    return np.mean(same) - np.mean(diff)


def slow_moad(x, objects, attributes):
    attrs = np.asarray(attributes).reshape(len(x), -1)
    obj = slow_contrast(x, objects)
    return np.mean([obj - slow_contrast(x, attrs[:, f]) for f in range(attrs.shape[1])])


def _has_both(labels):
    """A label column defines both pair kinds: some pair shares a value and some pair does not."""
    counts = np.bincount(labels)
    return counts.max() >= 2 and (counts > 0).sum() >= 2


@st.composite
def labelled(draw, n_factors=2):
    n = draw(st.integers(4, 12))
    d = draw(st.integers(1, 5))
    x = draw(
        hnp.arrays(
            np.float64, (n, d), elements=st.floats(-3, 3, allow_nan=False, width=64)
        )
    )
    x[np.linalg.norm(x, axis=1) < 1e-2, 0] = 1.0
    cols = []
    for _ in range(1 + n_factors):
        lab = np.asarray(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
        if not _has_both(lab):
            lab[0], lab[1], lab[2] = 0, 0, 1
        cols.append(lab)
    return x, cols[0], np.stack(cols[1:], axis=1)


@given(labelled())
def test_moad_matches_direct_pairwise_form(case):
    x, obj, attrs = case
    assert metrics.moad(x, obj, attrs) == pytest.approx(
        slow_moad(x, obj, attrs), abs=1e-9
    )
    assert metrics.moad(x, obj, attrs[:, 0]) == pytest.approx(
        slow_moad(x, obj, attrs[:, 0]), abs=1e-9
    )
    assert metrics.similarity_contrast(x, obj) == pytest.approx(
        slow_contrast(x, obj), abs=1e-9
    )


@given(labelled(), st.integers(0, 2**31 - 1))
def test_moad_invariances(case, seed):
    x, obj, attrs = case
    base = metrics.moad(x, obj, attrs)
    rng = np.random.default_rng(seed)
    q = random_orthogonal(x.shape[1], seed)
    assert metrics.moad(x @ q, obj, attrs) == pytest.approx(base, abs=1e-9)  # rotation
    assert metrics.moad(
        x * rng.uniform(0.1, 10, (len(x), 1)), obj, attrs
    ) == pytest.approx(base, abs=1e-9)  # norms
    perm = rng.permutation(len(x))
    assert metrics.moad(x[perm], obj[perm], attrs[perm]) == pytest.approx(
        base, abs=1e-9
    )  # sample order
    # label values are names only: renaming them (here to strings) changes nothing
    names = np.array(["a", "b", "c", "d"])
    assert metrics.moad(x, names[obj], attrs) == pytest.approx(base, abs=1e-9)
    # factor order does not matter for the mean over factors
    assert metrics.moad(x, obj, attrs[:, ::-1]) == pytest.approx(base, abs=1e-9)


@given(labelled(n_factors=1))
def test_moad_range_and_antisymmetry(case):
    x, obj, attrs = case
    a = attrs[:, 0]
    m = metrics.moad(x, obj, a)
    assert -4 - 1e-9 <= m <= 4 + 1e-9
    assert -2 - 1e-9 <= metrics.similarity_contrast(x, obj) <= 2 + 1e-9
    # swapping the roles of object and attribute flips the sign; an attribute equal to the object gives 0
    assert metrics.moad(x, a, obj) == pytest.approx(-m, abs=1e-9)
    assert metrics.moad(x, obj, obj) == pytest.approx(0.0, abs=1e-9)


def test_moad_known_geometry():
    # embeddings that are a function of the object only: same object -> cosine 1; attributes independent
    rng = np.random.default_rng(0)
    n_obj, per = 4, 50
    centres = normalise(rng.normal(size=(n_obj, 16)))
    obj = np.repeat(np.arange(n_obj), per)
    attr = np.tile(np.arange(2), n_obj * per // 2)
    x = centres[obj]
    m = metrics.moad(x, obj, attr)
    sim_o = 1.0
    cos = centres @ centres.T
    sim_no = (cos.sum() - np.trace(cos)) / (n_obj * (n_obj - 1))
    assert metrics.similarity_contrast(x, obj) == pytest.approx(
        sim_o - sim_no, abs=1e-9
    )
    # the attribute is balanced within each object, so it leaves only a small finite-sample contrast
    assert abs(metrics.similarity_contrast(x, attr)) < 0.02
    assert m > 0.9 * (sim_o - sim_no)
    # an attribute-organised space gives a negative MOAD
    assert metrics.moad(centres[attr], obj, attr) < 0


def test_moad_accepts_torch_and_is_the_mean_over_factors():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 8))
    obj, a1, a2 = rng.integers(0, 3, 30), rng.integers(0, 2, 30), rng.integers(0, 4, 30)
    attrs = np.stack([a1, a2], axis=1)
    assert metrics.moad(
        torch.from_numpy(x), torch.from_numpy(obj), torch.from_numpy(attrs)
    ) == pytest.approx(metrics.moad(x, obj, attrs), abs=1e-12)
    assert metrics.moad(x, obj, attrs) == pytest.approx(
        (metrics.moad(x, obj, a1) + metrics.moad(x, obj, a2)) / 2, abs=1e-12
    )


@pytest.mark.parametrize(
    "emb, obj, attrs, message",
    [
        (
            np.ones((5, 3)),
            np.arange(4),
            np.zeros(5, int),
            "objects must be a 1-D array of length 5",
        ),
        (
            np.ones((5, 3)),
            np.arange(5) % 2,
            np.zeros((4, 2), int),
            "attributes must have shape",
        ),
        (
            np.ones((5, 3)),
            np.arange(5) % 2,
            np.zeros((5, 0), int),
            "attributes must have shape",
        ),
        (np.ones((5, 3)), np.arange(5), np.arange(5) % 2, "no two samples share"),
        (
            np.ones((5, 3)),
            np.zeros(5, int),
            np.arange(5) % 2,
            "every sample has the same value",
        ),
        (
            np.ones((5, 3)),
            np.arange(5) % 2,
            np.zeros(5, int),
            r"attributes\[:, 0\]: every sample",
        ),
        (np.full((5, 3), np.nan), np.arange(5) % 2, np.arange(5) % 2, "NaN"),
        (np.zeros((5, 3)), np.arange(5) % 2, np.arange(5) % 2, "all-zero rows"),
        (np.ones(5), np.arange(5) % 2, np.arange(5) % 2, "shape"),
    ],
)
def test_moad_bad_inputs(emb, obj, attrs, message):
    with pytest.raises(ValueError, match=message):
        metrics.moad(emb, obj, attrs)
