"""Liang et al.'s mismatched-pairs toy and the free-point training (gaplab.experiments.mismatch)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab import charts
from gaplab.experiments import landscape, mismatch


def _slow_loss(x, y, s, targets):
    """The symmetric CLIP loss written out entry by entry."""
    n = len(x)
    i2t = t2i = 0.0
    for i in range(n):
        row = [s * float(np.dot(x[i], y[j])) for j in range(n)]
        i2t -= row[targets[i]] - math.log(sum(math.exp(v) for v in row))
    for j in range(n):
        col = [s * float(np.dot(x[i], y[j])) for i in range(n)]
        owner = list(targets).index(j)
        t2i -= col[owner] - math.log(sum(math.exp(v) for v in col))
    return (i2t + t2i) / (2 * n)


def _rand_unit(rng, n, d=3):
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ring_points_layout():
    x, y = mismatch.ring_points(0.6)
    assert x.shape == y.shape == (9, 3)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0)
    np.testing.assert_allclose(x[:, 2], 0.6)
    np.testing.assert_allclose(y[:, 2], -0.6)
    np.testing.assert_allclose(x[:, :2], y[:, :2])
    # the notebook's order: (a,0), (-a,0), (0,a), (0,-a), then the diagonals, then 1.53 pi
    a = 0.8
    np.testing.assert_allclose(
        x[:4, :2], [[a, 0], [-a, 0], [0, a], [0, -a]], atol=1e-12
    )
    np.testing.assert_allclose(x[4, :2], [a / 2**0.5, a / 2**0.5])
    # the swapped pair is the ring's closest pair of points
    d = np.linalg.norm(x[:, None] - x[None], axis=2) + np.eye(9) * 9
    assert set(np.unravel_index(np.argmin(d), d.shape)) == {3, 8}
    assert np.allclose(mismatch.ring_points(0.0)[0], mismatch.ring_points(0.0)[1])


@pytest.mark.parametrize("z", [1.5, -1.01, float("nan")])
def test_ring_points_rejects_heights_off_the_sphere(z):
    with pytest.raises(ValueError, match="z is a height"):
        mismatch.ring_points(z)


def test_swapped_targets():
    assert list(mismatch.swapped_targets(0)) == list(range(9))
    one = mismatch.swapped_targets(1)
    assert (one[3], one[8]) == (8, 3) and (
        np.delete(one, [3, 8]) == np.delete(np.arange(9), [3, 8])
    ).all()
    for k in range(5):
        t = mismatch.swapped_targets(k)
        assert (t[t] == np.arange(9)).all()  # an exchange is its own inverse
        assert (t != np.arange(9)).sum() == 2 * k
    with pytest.raises(ValueError, match="n_swapped"):
        mismatch.swapped_targets(5)
    with pytest.raises(TypeError, match="integer"):
        mismatch.swapped_targets(1.0)


def test_loss_matches_the_direct_formula():
    rng = np.random.default_rng(0)
    x, y = _rand_unit(rng, 7), _rand_unit(rng, 7)
    for targets in (np.arange(7), rng.permutation(7), np.array([1, 2, 0, 3, 4, 6, 5])):
        for s in (1.0, 13.0, 100.0):
            assert mismatch.contrastive_loss(x, y, s, targets) == pytest.approx(
                _slow_loss(x, y, s, targets), rel=1e-10
            )


def test_loss_with_matched_pairs_is_the_landscape_loss():
    rng = np.random.default_rng(1)
    x, y = _rand_unit(rng, 12, 5), _rand_unit(rng, 12, 5)
    assert mismatch.contrastive_loss(x, y, 30.0) == pytest.approx(
        landscape.batched_clip_loss(x, y, 30.0, batch=12), rel=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.5, 500.0))
def test_loss_is_invariant_to_rotations_and_relabelling(seed, scale):
    rng = np.random.default_rng(seed)
    x, y = _rand_unit(rng, 6), _rand_unit(rng, 6)
    t = rng.permutation(6)
    base = mismatch.contrastive_loss(x, y, scale, t)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert mismatch.contrastive_loss(x @ q, y @ q, scale, t) == pytest.approx(
        base, rel=1e-9, abs=1e-12
    )
    # renumber the images and the captions: image p[i] is now row i, caption r[j] row j
    p, r = rng.permutation(6), rng.permutation(6)
    new_t = np.argsort(r)[t[p]]
    assert mismatch.contrastive_loss(x[p], y[r], scale, new_t) == pytest.approx(
        base, rel=1e-9, abs=1e-12
    )
    assert base >= 0


@settings(max_examples=40, deadline=None)
@given(z=st.floats(0.0, 0.99), scale=st.floats(0.5, 1000.0), swaps=st.integers(0, 4))
def test_the_toy_depends_on_z_only_through_the_effective_scale(z, scale, swaps):
    t = mismatch.swapped_targets(swaps)
    at_z = mismatch.contrastive_loss(*mismatch.ring_points(z), scale, t)
    at_0 = mismatch.contrastive_loss(
        *mismatch.ring_points(0.0), mismatch.effective_logit_scale(scale, z), t
    )
    assert at_z == pytest.approx(at_0, rel=1e-9, abs=1e-12)
    assert mismatch.contrastive_loss(
        *mismatch.ring_points(-z), scale, t
    ) == pytest.approx(at_z, rel=1e-9, abs=1e-12)


def test_contrastive_loss_rejects_bad_input():
    x, y = mismatch.ring_points(0.2)
    with pytest.raises(ValueError, match="permutation"):
        mismatch.contrastive_loss(x, y, 10.0, [0] * 9)
    with pytest.raises(ValueError, match="same shape"):
        mismatch.contrastive_loss(x, y[:4], 10.0)
    with pytest.raises(ValueError, match="logit_scale"):
        mismatch.contrastive_loss(x, y, 0.0)


def test_loss_minima_reads_the_paper_pattern():
    frame = mismatch.loss_against_z(logit_scales=(1.0, 1000.0), swaps=(0, 1))
    assert len(frame) == 2 * 2 * 101
    low = mismatch.loss_minima(frame).set_index(["swapped pairs", "logit scale"])["z"]
    assert low[(0, 1.0)] == 0 and low[(0, 1000.0)] == 0 and low[(1, 1.0)] == 0
    assert low[(1, 1000.0)] > 0.9
    # a flat curve reads as a closed gap: the smallest z among equal losses
    flat = pd.DataFrame(
        {"logit scale": 1.0, "swapped pairs": 0, "z": [0.5, 0.0, 0.2], "loss": 1.0}
    )
    assert mismatch.loss_minima(flat)["z"].item() == 0.0


def test_free_points_are_reproducible_and_start_at_the_ring_gap():
    a = mismatch.train_free_points(0.5, 50.0, 1, steps=30, seed=3)
    b = mismatch.train_free_points(0.5, 50.0, 1, steps=30, seed=3)
    assert a == b
    assert a["l2m start"] == pytest.approx(1.0)
    assert 0.0 <= a["l2m"] <= 2.0 and a["mismatched captions"] == pytest.approx(2 / 9)
    assert mismatch.train_free_points(0.5, 50.0, 1, steps=30, seed=4) != a
    grid = mismatch.free_points_grid(logit_scales=(1.0, 10.0), swaps=(0, 2), steps=5)
    assert list(grid["swapped pairs"]) == [0, 0, 2, 2] and list(
        grid["logit scale"]
    ) == [1.0, 10.0, 1.0, 10.0]


def test_matched_free_points_close_the_gap_at_a_high_temperature():
    # the loss at logit scale 1 pulls matched pairs together; it is the page's matched row at scale 1
    res = mismatch.train_free_points(0.5, 1.0, 0, steps=400)
    assert res["l2m"] < 0.05 < res["l2m start"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_swapped": 5}, "n_swapped"),
        ({"steps": 0}, "steps"),
        ({"logit_scale": -1.0}, "logit_scale"),
        ({"z0": 2.0}, "z is a height"),
    ],
)
def test_free_points_reject_bad_input(kwargs, match):
    args = {"z0": 0.5, "logit_scale": 10.0, "n_swapped": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        mismatch.train_free_points(
            args.pop("z0"), args.pop("logit_scale"), args.pop("n_swapped"), **args
        )


def test_the_explorer_binds_scale_and_swaps():
    frame = mismatch.loss_against_z(logit_scales=(1.0, 100.0), swaps=(0, 1, 2))
    spec = charts.mismatch_explorer(frame, mismatch.loss_minima(frame)).to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["scale"]["bind"]["options"] == [1.0, 100.0]
    assert params["swapped"]["bind"]["options"] == [0, 1, 2]
    rows = next(iter(spec["datasets"].values()))
    assert sum(r["minimum"] for r in rows) == 2 * 3  # one red dot per curve
