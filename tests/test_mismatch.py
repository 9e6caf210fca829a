"""Liang et al.'s mismatched-pairs toy and the free-point training (gaplab.experiments.mismatch)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.book import charts
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


# The paper's set-up (Sec. 4.3; the authors' 3d_sphere.ipynb): six pairs, images fixed, captions tilted.


def _sphere_point(lon_deg, polar_deg):
    """A unit vector from its longitude and polar angle, both in degrees."""
    lon, pol = math.radians(lon_deg), math.radians(polar_deg)
    return np.array(
        [math.cos(lon) * math.sin(pol), math.sin(lon) * math.sin(pol), math.cos(pol)]
    )


def _paper_rows(tilt, swapped):
    """The set-up as the notebook lays it out: caption row i belongs to image row i, and the mismatch is
    written into the captions' positions (T0 on I1's meridian, T1 on I0's)."""
    lons = [-20, 0, 20, 40, 60, 80]
    cap_lons = [0, -20, *lons[2:]] if swapped else lons
    img = np.array([_sphere_point(u, 90) for u in lons])
    txt = np.array([_sphere_point(u, 90 + tilt) for u in cap_lons])
    return img, txt


def test_meridian_images_stay_fixed_and_captions_move_down_their_meridians():
    x0, y0 = mismatch.meridian_points(0.0)
    assert x0.shape == y0.shape == (6, 3)
    np.testing.assert_allclose(x0, y0, atol=1e-15)  # no tilt: no gap
    for tilt in (-90.0, -30.0, 12.5, 45.0, 90.0):
        x, y = mismatch.meridian_points(tilt)
        np.testing.assert_array_equal(x, x0)  # the images never move
        np.testing.assert_allclose(x[:, 2], 0.0)  # on the equator
        np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0)
        np.testing.assert_allclose(y[:, 2], -math.sin(math.radians(tilt)))
        # each caption stays on its image's meridian: same longitude
        lon_x = np.degrees(np.arctan2(x[:, 1], x[:, 0]))
        if abs(tilt) < 90:
            lon_y = np.degrees(np.arctan2(y[:, 1], y[:, 0]))
            np.testing.assert_allclose(lon_y, lon_x, atol=1e-9)
    np.testing.assert_allclose(lon_x, mismatch.SPHERE_LONGITUDES, atol=1e-9)
    assert len(mismatch.LIANG_SPHERE_LOGIT_SCALES) == 5


def test_meridian_targets():
    assert list(mismatch.meridian_targets(0)) == list(range(6))
    assert list(mismatch.meridian_targets(1)) == [1, 0, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="0 or 1"):
        mismatch.meridian_targets(2)
    with pytest.raises(TypeError, match="integer"):
        mismatch.meridian_targets(True)


@pytest.mark.parametrize("swapped", [0, 1])
@pytest.mark.parametrize("tilt", [0.0, 17.0, 53.0, -65.0, 90.0])
@pytest.mark.parametrize("scale", [1.0, 35.0, 100.0])
def test_meridian_loss_is_the_notebook_layout_written_out(swapped, tilt, scale):
    img, txt = _paper_rows(tilt, swapped)
    direct = _slow_loss(img, txt, scale, list(range(6)))
    x, y = mismatch.meridian_points(tilt)
    ours = mismatch.contrastive_loss(x, y, scale, mismatch.meridian_targets(swapped))
    assert ours == pytest.approx(direct, rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    tilt=st.floats(-90.0, 90.0), scale=st.floats(0.5, 1000.0), swaps=st.integers(0, 1)
)
def test_the_tilt_acts_only_through_the_effective_scale(tilt, scale, swaps):
    t = mismatch.meridian_targets(swaps)
    at_tilt = mismatch.contrastive_loss(*mismatch.meridian_points(tilt), scale, t)
    eff = mismatch.tilt_effective_logit_scale(scale, tilt)
    at_0 = (
        mismatch.contrastive_loss(*mismatch.meridian_points(0.0), eff, t)
        if eff > 0
        else None
    )
    if at_0 is None:  # at 90 degrees every logit is 0: the loss of a uniform guess
        assert at_tilt == pytest.approx(math.log(6), rel=1e-9)
    else:
        assert at_tilt == pytest.approx(at_0, rel=1e-9, abs=1e-12)


def test_meridian_gap_is_the_distance_of_the_means():
    frame = mismatch.loss_against_tilt(
        logit_scales=(1.0,), swaps=(0,), tilts=(0.0, 30.0, 90.0)
    )
    for row in frame.itertuples():
        x, y = mismatch.meridian_points(row.tilt)
        direct = math.sqrt(
            sum((x[:, k].mean() - y[:, k].mean()) ** 2 for k in range(3))
        )
        assert row.gap == pytest.approx(direct, rel=1e-12, abs=1e-15)
    assert frame["gap"].iloc[0] == pytest.approx(0.0, abs=1e-15)
    assert frame["gap"].is_monotonic_increasing


def test_the_paper_set_up_keeps_a_gap_only_with_the_mismatch_at_low_temperature():
    frame = mismatch.loss_against_tilt()
    assert len(frame) == 2 * 5 * 91
    low = mismatch.loss_minima(frame, along="tilt").set_index(
        ["swapped pairs", "logit scale"]
    )["tilt"]
    assert (low.loc[0] == 0).all()  # matched: lowest with no gap at every temperature
    assert low.loc[(1, 1.0)] == 0 and low.loc[(1, 100.0)] > 45
    with pytest.raises(ValueError, match="along"):
        mismatch.loss_minima(frame, along="z")


@pytest.mark.parametrize("tilt", [90.5, -91.0, float("nan")])
def test_meridian_points_reject_tilts_off_the_meridian(tilt):
    with pytest.raises(ValueError, match="tilt is the captions' move"):
        mismatch.meridian_points(tilt)


def test_moved_minima_against_direct_computation():
    z = pd.Series([0.0, 0.0, 0.4, 0.9], index=[1.0, 5.0, 50.0, 1000.0])
    got = mismatch.moved_minima(z)
    eff = [mismatch.effective_logit_scale(50.0, 0.4), 1000.0 * (1 - 0.81)]
    assert got["first_moved"] == 50.0
    assert got["eff_low"] == min(eff)
    assert got["eff_high"] == pytest.approx(max(eff))
    tilt = pd.Series([0.0, 60.0], index=[1.0, 100.0])
    got = mismatch.moved_minima(tilt, along="tilt")
    assert got["first_moved"] == 100.0
    assert got["eff_low"] == got["eff_high"] == pytest.approx(50.0)
    none = mismatch.moved_minima(pd.Series([0.0, 0.0], index=[1.0, 5.0]))
    assert all(math.isnan(v) for v in none.values())
    with pytest.raises(ValueError, match="along"):
        mismatch.moved_minima(z, along="x")
