"""Liang et al.'s shift along the gap: the direct formula, what it does to the gap, symmetries and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gaplab import metrics
from gaplab.metrics.geometry import shift_along_gap
from tests.conftest import embedding_pair, normalise, random_orthogonal

lams = st.floats(-2, 2, allow_nan=False)


def gapped(rng, n=200, d=16, offset=1.5):
    """Two clouds on opposite sides of the first axis: a clear modality gap."""
    shift = np.zeros(d)
    shift[0] = offset
    return rng.normal(size=(n, d)) + shift, rng.normal(size=(n + 7, d)) - shift


def slow_shift(x, y, lam):
    x, y = normalise(x), normalise(y)
    delta = [x[:, k].sum() / len(x) - y[:, k].sum() / len(y) for k in range(x.shape[1])]
    sx = [[x[i, k] - lam * delta[k] for k in range(x.shape[1])] for i in range(len(x))]
    sy = [[y[i, k] + lam * delta[k] for k in range(y.shape[1])] for i in range(len(y))]
    return normalise(sx), normalise(sy)


@given(embedding_pair(same_rows=False), lams)
def test_matches_direct_formula_and_rows_stay_unit(pair, lam):
    x, y = pair
    with np.errstate(invalid="ignore", divide="ignore"):
        want_x, want_y = slow_shift(x, y, lam)
    if not (np.isfinite(want_x).all() and np.isfinite(want_y).all()):
        # the shift sent a row to zero: the function must refuse rather than return NaN
        with pytest.raises(ValueError, match="to zero"):
            shift_along_gap(x, y, lam)
        return
    sx, sy = shift_along_gap(x, y, lam)
    assert sx.dtype == np.float64 and sy.dtype == np.float64
    assert sx.shape == x.shape and sy.shape == y.shape
    np.testing.assert_allclose(sx, want_x, atol=1e-9)
    np.testing.assert_allclose(sy, want_y, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(sx, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(sy, axis=1), 1.0, atol=1e-12)


@given(embedding_pair(same_rows=False))
def test_zero_shift_returns_the_normalised_inputs(pair):
    x, y = pair
    sx, sy = shift_along_gap(x, y, 0.0)
    np.testing.assert_allclose(sx, normalise(x), atol=1e-15)
    np.testing.assert_allclose(sy, normalise(y), atol=1e-15)


@given(embedding_pair(same_rows=False), st.floats(-1, 1), st.integers(0, 2**31 - 1))
def test_commutes_with_a_shared_orthogonal_map(pair, lam, seed):
    x, y = pair
    q = random_orthogonal(x.shape[1], seed)
    try:
        sx, sy = shift_along_gap(x, y, lam)
    except ValueError:
        return
    qx, qy = shift_along_gap(x @ q, y @ q, lam)
    np.testing.assert_allclose(qx, sx @ q, atol=1e-9)
    np.testing.assert_allclose(qy, sy @ q, atol=1e-9)


def test_swapping_the_modalities_swaps_the_result(rng):
    x, y = gapped(rng)
    sx, sy = shift_along_gap(x, y, 0.3)
    ty, tx = shift_along_gap(y, x, 0.3)
    np.testing.assert_allclose(tx, sx, atol=1e-12)
    np.testing.assert_allclose(ty, sy, atol=1e-12)


def test_positive_lam_closes_the_gap_and_negative_widens_it(rng):
    x, y = gapped(rng)
    gaps = [
        metrics.l2m(*shift_along_gap(x, y, lam)) for lam in np.linspace(0.0, 0.5, 6)
    ]
    assert gaps[0] == pytest.approx(metrics.l2m(x, y), abs=1e-12)
    assert all(b < a for a, b in zip(gaps, gaps[1:])), gaps
    # at lam = 0.5 the means coincide before renormalising; what is left comes from the renormalisation only
    assert gaps[-1] < 0.25 * gaps[0]
    assert metrics.l2m(*shift_along_gap(x, y, -0.3)) > gaps[0]


def test_accepts_tensors(rng):
    x, y = gapped(rng, n=20, d=4)
    sx, sy = shift_along_gap(torch.tensor(x, requires_grad=True), torch.tensor(y), 0.4)
    ax, ay = shift_along_gap(x, y, 0.4)
    assert isinstance(sx, np.ndarray) and isinstance(sy, np.ndarray)
    np.testing.assert_allclose(sx, ax)
    np.testing.assert_allclose(sy, ay)


def test_bad_inputs_raise_clear_errors(rng):
    good = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="same dimension"):
        shift_along_gap(good, rng.normal(size=(5, 4)), 0.5)
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        shift_along_gap(good[0], good, 0.5)
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        shift_along_gap(good, bad, 0.5)
    zero = good.copy()
    zero[0] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        shift_along_gap(zero, good, 0.5)
    for lam in (math.nan, math.inf, -math.inf, None, "0.5", True):
        with pytest.raises(ValueError, match="lam must be a finite number"):
            shift_along_gap(good, good, lam)


def test_a_row_shifted_to_zero_is_refused():
    # one image row and one text row: lam = 1 moves the image row by the whole delta, onto the text row, and
    # lam = 0.5 sends both rows to the midpoint of two antipodal points, the origin
    x, y = np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]])
    np.testing.assert_allclose(shift_along_gap(x, y, 1.0)[0], y)
    with pytest.raises(ValueError, match="image row 0 to zero"):
        shift_along_gap(x, y, 0.5)


def test_shift_with_a_given_gap_vector():
    rng = np.random.default_rng(3)
    x, y, z = (
        rng.normal(size=(20, 6)) + 1,
        rng.normal(size=(20, 6)) - 1,
        rng.normal(size=(4, 6)),
    )
    delta = shift_along_gap(x, y, 0.0)[0].mean(axis=0) - shift_along_gap(x, y, 0.0)[
        1
    ].mean(axis=0)
    # the default gap vector is the one of the rows given
    for a, b in zip(
        shift_along_gap(x, y, 0.3), shift_along_gap(x, y, 0.3, delta=delta)
    ):
        assert np.allclose(a, b)
    # another set of rows (class prompts) moved by the images' and captions' gap
    _, moved = shift_along_gap(x, z, 0.3, delta=delta)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True) + 0.3 * delta
    assert np.allclose(moved, zn / np.linalg.norm(zn, axis=1, keepdims=True))
    with pytest.raises(ValueError, match="delta must be"):
        shift_along_gap(x, y, 0.3, delta=np.ones(5))
    with pytest.raises(ValueError, match="delta must be"):
        shift_along_gap(x, y, 0.3, delta=np.full(6, np.nan))


def test_unit_gap_and_subtract_gap_against_direct_formulas():
    from gaplab.metrics.geometry import subtract_gap, unit_gap

    rng = np.random.default_rng(3)
    img, txt = rng.normal(size=(40, 6)) + 1.0, rng.normal(size=(25, 6))
    x = img / np.linalg.norm(img, axis=1, keepdims=True)
    y = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    g = x.mean(0) - y.mean(0)
    np.testing.assert_allclose(unit_gap(img, txt), g / np.linalg.norm(g))
    moved = subtract_gap(img, txt)
    np.testing.assert_allclose(
        moved, (x - g) / np.linalg.norm(x - g, axis=1, keepdims=True)
    )
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0)
    with pytest.raises(ValueError, match="same mean"):
        unit_gap(img, img)
