"""Post-hoc remedies of the gap (gaplab.metrics.remedies): each against a slow direct loop, the properties each
promises (means, deviations, symmetries, fitting on one set and applying to another), the two backends, the
errors, and on the shipped real embeddings what centring does to the gap."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from gaplab import metrics as M
from gaplab.data.embeddings import EMBEDDING_MODELS, load_embeddings
from gaplab.metrics.geometry import shift_along_gap
from gaplab.metrics.remedies import (
    ZERO_STD,
    center,
    gap_statistics,
    modality_means,
    remove_gap_vector,
    standardise,
)
from tests.conftest import embedding_pair, normalise, random_orthogonal
from tests.test_core_no_torch import BLOCK_TORCH

REMEDIES = {"center": center, "standardise": standardise, "gap": remove_gap_vector}
#: a centred row shorter than this has a direction set by rounding, which no two computations share
SHORT = 1e-6
#: C^3 collapses the gap by centring: on CLIP, the gap left should be a small share of the gap before
COLLAPSED = 0.05


# --- slow direct versions -------------------------------------------------------------------------------------


def slow_stats(rows):
    """Per-dimension mean and population standard deviation of the unit rows, one loop each."""
    u = normalise(rows)
    n, d = u.shape
    mean = [sum(u[i, k] for i in range(n)) / n for k in range(d)]
    std = [
        math.sqrt(sum((u[i, k] - mean[k]) ** 2 for i in range(n)) / n) for k in range(d)
    ]
    return np.array(mean), np.array(std)


def slow_remedy(kind, x, y, fit=None, renormalise=True):
    (mx, sx), (my, sy) = (slow_stats(r) for r in (fit if fit is not None else (x, y)))
    ones = np.ones_like(mx)
    half = (mx - my) / 2
    shift, scale = {
        "center": ((mx, my), (ones, ones)),
        "standardise": ((mx, my), (sx, sy)),
        "gap": ((half, -half), (ones, ones)),
    }[kind]
    out = []
    for rows, m, s in zip((x, y), shift, scale):
        u = normalise(rows)
        moved = np.array(
            [
                [(u[i, k] - m[k]) / s[k] for k in range(u.shape[1])]
                for i in range(len(u))
            ]
        )
        if renormalise:
            moved = moved / np.linalg.norm(moved, axis=1, keepdims=True)
        out.append(moved)
    return out


def well_posed(kind, x, y, fit=None) -> bool:
    """Whether the slow version is defined away from rounding: no dimension without spread where
    standardise divides, and no row moved (nearly) onto the origin."""
    (_, sx), (_, sy) = (slow_stats(r) for r in (fit if fit is not None else (x, y)))
    if kind == "standardise" and min(sx.min(), sy.min()) < SHORT:
        return False
    moved = slow_remedy(kind, x, y, fit, renormalise=False)
    return all(np.linalg.norm(m, axis=1).min() > SHORT for m in moved)


kinds = st.sampled_from(sorted(REMEDIES))


@given(kinds, embedding_pair(same_rows=False), st.booleans())
def test_each_remedy_matches_its_direct_loop(kind, pair, renormalise):
    x, y = pair
    assume(well_posed(kind, x, y))
    got = REMEDIES[kind](x, y, renormalise=renormalise)
    want = slow_remedy(kind, x, y, renormalise=renormalise)
    for g, w, rows in zip(got, want, pair):
        assert isinstance(g, np.ndarray) and g.dtype == np.float64
        assert g.shape == rows.shape
        np.testing.assert_allclose(g, w, atol=1e-9)
        if renormalise:
            np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, atol=1e-12)


@given(embedding_pair(same_rows=False))
def test_modality_means_match_the_loop_and_l2m(pair):
    x, y = pair
    mx, my = modality_means(x, y)
    np.testing.assert_allclose(mx, slow_stats(x)[0], atol=1e-12)
    np.testing.assert_allclose(my, slow_stats(y)[0], atol=1e-12)
    assert np.linalg.norm(mx - my) == pytest.approx(M.l2m(x, y), abs=1e-12)


# --- properties ---------------------------------------------------------------------------------------------


@given(embedding_pair(same_rows=False))
def test_centring_without_renormalising_leaves_both_means_at_zero(pair):
    cx, cy = center(*pair, renormalise=False)
    np.testing.assert_allclose(cx.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(cy.mean(axis=0), 0.0, atol=1e-12)
    # the L2M-style gap of the outputs as they are: the distance of their means
    assert np.linalg.norm(cx.mean(axis=0) - cy.mean(axis=0)) < 1e-12


@given(embedding_pair(same_rows=False))
def test_the_gap_vector_removed_leaves_the_means_equal(pair):
    rx, ry = remove_gap_vector(*pair, renormalise=False)
    np.testing.assert_allclose(rx.mean(axis=0), ry.mean(axis=0), atol=1e-12)
    # at the midpoint of the two means, not at zero as centring puts them
    mx, my = modality_means(*pair)
    np.testing.assert_allclose(rx.mean(axis=0), (mx + my) / 2, atol=1e-12)


@given(embedding_pair(same_rows=False))
def test_standardised_dimensions_have_mean_zero_and_deviation_one(pair):
    x, y = pair
    assume(well_posed("standardise", x, y))
    for out in standardise(x, y, renormalise=False):
        np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-9)
        np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-9)


@given(embedding_pair(same_rows=False))
def test_the_gap_vector_removal_is_liang_s_shift_at_one_half(pair):
    x, y = pair
    assume(well_posed("gap", x, y))
    for got, want in zip(remove_gap_vector(x, y), shift_along_gap(x, y, 0.5)):
        np.testing.assert_allclose(got, want, atol=1e-9)


@given(
    st.sampled_from(["center", "gap"]),
    embedding_pair(same_rows=False),
    st.integers(0, 2**31 - 1),
)
def test_centring_and_the_gap_shift_commute_with_a_common_rotation(kind, pair, seed):
    x, y = pair
    assume(well_posed(kind, x, y))
    q = random_orthogonal(x.shape[1], seed)
    plain, rotated = REMEDIES[kind](x, y), REMEDIES[kind](x @ q, y @ q)
    for a, b in zip(plain, rotated):
        np.testing.assert_allclose(b, a @ q, atol=1e-9)


@given(embedding_pair(same_rows=False), st.integers(0, 2**31 - 1))
def test_standardising_commutes_with_permuting_and_flipping_dimensions(pair, seed):
    # a per-dimension scale commutes with a signed permutation, not with a general rotation
    x, y = pair
    assume(well_posed("standardise", x, y))
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    p = np.eye(d)[rng.permutation(d)] * rng.choice([-1.0, 1.0], size=d)
    for a, b in zip(standardise(x, y), standardise(x @ p, y @ p)):
        np.testing.assert_allclose(b, a @ p, atol=1e-9)


def test_standardising_is_not_rotation_equivariant():
    # the check above could pass for a rotation-equivariant map too: this one separates the two
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) * [3.0, 1.0, 0.5, 0.2] + 1.0
    y = rng.normal(size=(50, 4)) - 1.0
    q = random_orthogonal(4, 1)
    a, b = standardise(x, y)[0], standardise(x @ q, y @ q)[0]
    assert np.abs(b - a @ q).max() > 1e-3


@given(kinds, embedding_pair(same_rows=False))
def test_fitting_on_one_set_and_applying_to_another(kind, fitted):
    fx, fy = fitted
    d = fx.shape[1]
    rng = np.random.default_rng(len(fx))
    x, y = rng.normal(size=(3, d)), rng.normal(size=(5, d))
    assume(well_posed(kind, x, y, fit=(fx, fy)))
    got = REMEDIES[kind](x, y, fit=(fx, fy), renormalise=False)
    want = slow_remedy(kind, x, y, fit=(fx, fy), renormalise=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-9)
    # fitting on the inputs themselves is the default
    assume(well_posed(kind, fx, fy))
    for a, b in zip(REMEDIES[kind](fx, fy), REMEDIES[kind](fx, fy, fit=(fx, fy))):
        np.testing.assert_array_equal(a, b)
    # with the statistics given, one row alone can be moved; without, one row has none
    one = REMEDIES[kind](x[:1], y[:1], fit=(fx, fy), renormalise=False)
    np.testing.assert_allclose(one[0], got[0][:1], atol=1e-12)
    with pytest.raises(ValueError, match="at least 2 rows"):
        REMEDIES[kind](x[:1], y)


@given(embedding_pair(same_rows=False))
def test_what_centring_leaves_of_the_gap_is_bounded_by_the_spread_of_row_lengths(pair):
    x, y = pair
    assume(well_posed("center", x, y))
    assert (
        M.l2m(*center(x, y)) <= _renormalising_bound(x) + _renormalising_bound(y) + 1e-9
    )


def _renormalising_bound(rows) -> float:
    """The centred rows c_i sum to 0, so for any c: |mean(c_i / r_i)| = |mean(c_i (1 / r_i - c))| <=
    mean|1 - c r_i|, r_i = |c_i|; with c = 1 / mean(r) the bound is the rows' mean relative length
    deviation. Renormalising can bring the mean back only as far as the centred lengths differ."""
    u = normalise(rows)
    r = np.linalg.norm(u - u.mean(axis=0), axis=1)
    return float(np.mean(np.abs(1 - r / r.mean())))


# --- gap statistics ------------------------------------------------------------------------------------------


def slow_gap_statistics(x, y, variance):
    """The same quantities by SVD of the centred rows and an explicit projector."""
    gap = slow_stats(x)[0] - slow_stats(y)[0]
    out = {"gap_norm": float(np.linalg.norm(gap))}
    for side, rows in (("image", x), ("text", y)):
        u = normalise(rows)
        _, s, vt = np.linalg.svd(u - u.mean(axis=0), full_matrices=True)
        share = np.concatenate([s**2, np.zeros(len(vt) - len(s))])
        total = share.sum()
        rank = 0
        while total > 0 and share[:rank].sum() < variance * total - 1e-12 * total:
            rank += 1
        projector = vt[:rank].T @ vt[:rank]
        out[f"{side}_rank"] = rank
        out[f"{side}_share"] = float(gap @ projector @ gap / (gap @ gap))
        out[f"{side}_chance"] = rank / len(gap)
    return out


def _separated_eigenvalues(rows, variance) -> bool:
    """Whether the rank is settled away from rounding: no eigenvalue sits at the variance threshold and the
    retained subspace is separated from the rest (else its basis is not unique)."""
    u = normalise(rows)
    s = np.linalg.svd(u - u.mean(axis=0), compute_uv=False) ** 2
    if s.sum() < SHORT:
        return False
    cum = np.cumsum(s) / s.sum()
    rank = int(np.argmax(cum >= variance - 1e-12)) + 1
    gaps_ok = rank >= len(s) or s[rank - 1] - s[rank] > SHORT
    return bool(np.min(np.abs(cum - variance)) > SHORT and gaps_ok)


@given(embedding_pair(same_rows=False), st.floats(0.05, 1.0))
def test_gap_statistics_match_a_direct_svd_and_lie_in_range(pair, variance):
    x, y = pair
    assume(M.l2m(x, y) > SHORT)
    assume(_separated_eigenvalues(x, variance) and _separated_eigenvalues(y, variance))
    got = gap_statistics(x, y, variance=variance)
    want = slow_gap_statistics(x, y, variance)
    assert got["variance"] == variance
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    for side in ("image", "text"):
        assert 0.0 <= got[f"{side}_share"] <= 1.0 + 1e-12
        assert 1 <= got[f"{side}_rank"] <= x.shape[1]


@given(embedding_pair(same_rows=False), st.integers(0, 2**31 - 1))
def test_gap_statistics_do_not_change_under_a_common_rotation(pair, seed):
    x, y = pair
    assume(M.l2m(x, y) > SHORT)
    assume(_separated_eigenvalues(x, 0.9) and _separated_eigenvalues(y, 0.9))
    q = random_orthogonal(x.shape[1], seed)
    a, b = gap_statistics(x, y), gap_statistics(x @ q, y @ q)
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=1e-9), key


def test_edge_cases_of_the_gap_statistics():
    s = np.array([-1.0, -0.5, 0.5, 1.0])
    ones = np.ones_like(s)
    # all the variance kept: the subspace is the whole space, which holds the whole gap
    img = np.stack([s + 3.0, ones], axis=1)
    txt = np.stack([s - 3.0, ones], axis=1)
    stats = gap_statistics(img, txt, variance=1.0)
    assert stats["image_rank"] == stats["text_rank"] == 2
    assert stats["image_share"] == pytest.approx(1.0)
    same = gap_statistics(img, img)
    assert same["gap_norm"] == 0.0 and math.isnan(same["image_share"])
    point = gap_statistics(np.tile([1.0, 0.0], (3, 1)), np.tile([0.0, 1.0], (3, 1)))
    assert point["image_rank"] == 0 and point["image_share"] == 0.0


# --- backends -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(REMEDIES))
def test_numpy_in_numpy_out_and_torch_in_torch_out(kind):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)) + 0.5, rng.normal(size=(40, 5)) - 0.5
    want = REMEDIES[kind](x, y)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        a, b = x.astype(dtype), y.astype(dtype)
        got = REMEDIES[kind](a, b)
        assert all(isinstance(g, np.ndarray) and g.dtype == dtype for g in got)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        got_t = REMEDIES[kind](ta.requires_grad_(), tb)
        assert all(torch.is_tensor(g) and g.dtype == ta.dtype for g in got_t)
        # one tensor beside an array: both come back as tensors
        mixed = REMEDIES[kind](a, tb)
        assert all(torch.is_tensor(g) for g in mixed)
        for g, gt, gm, w in zip(got, got_t, mixed, want):
            np.testing.assert_allclose(g, w, atol=tol)
            np.testing.assert_allclose(gt.detach().numpy(), w, atol=tol)
            np.testing.assert_allclose(gm.numpy(), w, atol=tol)
    # statistics from numpy rows apply to tensors alike
    fitted = REMEDIES[kind](torch.from_numpy(x), torch.from_numpy(y), fit=(x, y))
    for g, w in zip(fitted, want):
        np.testing.assert_allclose(g.numpy(), w, atol=1e-12)
    tm = modality_means(torch.from_numpy(x), torch.from_numpy(y))
    for a, b in zip(tm, modality_means(x, y)):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, atol=1e-12)
    ts = gap_statistics(torch.from_numpy(x), torch.from_numpy(y))
    assert ts == pytest.approx(gap_statistics(x, y), abs=1e-12)


def test_the_inputs_are_left_untouched():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(10, 4)), rng.normal(size=(12, 4))
    keep = x.copy(), y.copy()
    for f in REMEDIES.values():
        f(x, y)
    np.testing.assert_array_equal(x, keep[0])
    np.testing.assert_array_equal(y, keep[1])


def test_the_remedies_run_without_torch():
    code = BLOCK_TORCH + (
        "import numpy as np\n"
        "from gaplab.metrics import remedies as R\n"
        "rng = np.random.default_rng(0)\n"
        "x, y = rng.normal(size=(20, 4)) + 1, rng.normal(size=(25, 4)) - 1\n"
        "for f in (R.center, R.standardise, R.remove_gap_vector):\n"
        "    a, b = f(x, y, fit=(x, y))\n"
        "    assert isinstance(a, np.ndarray) and np.isfinite(a).all()\n"
        "R.modality_means(x, y), R.gap_statistics(x, y)\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(REMEDIES))
def test_bad_inputs_raise_errors_that_name_them(kind):
    f = REMEDIES[kind]
    rng = np.random.default_rng(5)
    good, other = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    with pytest.raises(
        ValueError,
        match="image and text embeddings must have the same dimension; got 3 and 4",
    ):
        f(good, rng.normal(size=(6, 4)))
    with pytest.raises(ValueError, match=r"text embeddings must have shape \(N, d\)"):
        f(good, other[0])
    with pytest.raises(
        ValueError, match="image embeddings needs at least 2 rows; got 1"
    ):
        f(good[:1], other)
    bad = good.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="image embeddings holds infinite values"):
        f(bad, other)
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="text embeddings holds NaN values"):
        f(good, bad)
    with pytest.raises(ValueError, match="fit must be a pair"):
        f(good, other, fit=good)
    with pytest.raises(ValueError, match="fit must be a pair .* of length 3"):
        f(good, other, fit=(good, other, good))
    with pytest.raises(
        ValueError,
        match="the fit embeddings have dimension 2, the embeddings to transform 3",
    ):
        f(good, other, fit=(good[:, :2], other[:, :2]))
    with pytest.raises(ValueError, match="text fit embeddings needs at least 2 rows"):
        f(good, other, fit=(good, other[:1]))


def test_a_row_moved_onto_the_origin_is_refused():
    same = np.tile([1.0, 0.0], (3, 1))
    other = np.array([[0.0, 1.0], [1.0, 1.0]])
    # every image is the image mean: centring leaves no direction
    with pytest.raises(
        ValueError, match="center sends 3 image rows to zero .first row 0."
    ):
        center(same, other)
    cx, _ = center(same, other, renormalise=False)
    np.testing.assert_array_equal(cx, 0.0)
    # texts opposite to the images: the means are two antipodal points, half the gap vector is a unit row
    with pytest.raises(
        ValueError, match="remove_gap_vector sends 3 image rows to zero"
    ):
        remove_gap_vector(same, -same)
    # standardise cannot get there: a mean of unit rows is a unit row only when all rows agree, and then no
    # dimension varies
    with pytest.raises(ValueError, match="zero variance"):
        standardise(same, other)


def test_standardise_names_the_dimensions_without_spread():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 5))
    y = np.zeros((9, 5))
    y[:, 3] = 1.0  # every text points along axis 3: no dimension of the texts varies
    with pytest.raises(
        ValueError,
        match=r"5 of the 5 dimensions of the text embeddings have zero variance \(first: dimension 0\)",
    ):
        standardise(x, y)
    y[:4, 1] = rng.normal(size=4)  # now dimensions 1 and 3 vary
    with pytest.raises(
        ValueError,
        match="3 of the 5 dimensions of the text fit embeddings .*first: dimension 0",
    ):
        standardise(x, x, fit=(x, y))
    assert ZERO_STD < 1e-9  # a threshold for rounding, not for small spread
    for bad in (0.0, -0.1, 1.5, math.nan, None, True):
        with pytest.raises(ValueError, match="variance must"):
            gap_statistics(x, rng.normal(size=(8, 5)), variance=bad)


# --- on the shipped real embeddings --------------------------------------------------------------------------


def test_centring_collapses_the_gap_of_the_shipped_clip_embeddings():
    # C^3 removes the gap of CLIP by subtracting each modality's mean; renormalising afterwards may bring back
    # only a small part of it
    x, y = load_embeddings("clip")
    before, after = M.l2m(x, y), M.l2m(*center(x, y))
    assert after < COLLAPSED * before, (before, after)


@pytest.mark.parametrize("name", sorted(EMBEDDING_MODELS))
def test_on_every_shipped_model_the_gap_left_after_centring_is_within_its_bound(name):
    x, y = load_embeddings(name)
    cx, cy = center(x, y)
    assert cx.dtype == np.float32 and cy.dtype == np.float32
    after = M.l2m(cx, cy)
    assert after <= _renormalising_bound(x) + _renormalising_bound(y) + 1e-6
    assert after < M.l2m(x, y)
