"""Liang et al.'s (2022, Sec. 4.3, Fig. 3e-g) mismatched-pairs simulation, and the same with free points.

Two set-ups of the toy exist, and they differ:

- the paper's text (Sec. 4.3) and the authors' ``Figure_3_Contrastive_Learning/3d_sphere.ipynb``: six
  image-text pairs on the unit sphere, two of them mismatched; the images stay fixed and only the captions
  move, downwards along their meridians (the angle theta of Fig. 3e). In the notebook the images sit on the
  equator at longitudes -20, 0, 20, ..., 80 degrees, each caption on its image's meridian with the first two
  exchanged, the captions tilt by -90 to 90 degrees in steps of 1, and the logit scales are 1, 5, 35, 50 and
  100 (the legend of Fig. 3f-g). ``Appendix_3d_sphere.ipynb`` is the same without the exchange (Supp. Fig. 9).
  :func:`meridian_points` and :func:`loss_against_tilt` build it;
- the authors' ``mismatched_simulation.ipynb``: nine unit vectors in 3-D on a ring at height ``z`` are the
  images, the same nine on the ring at ``-z`` their captions, so both modalities move and ``z = 0`` is no gap.
  The symmetric CLIP loss is read as ``z`` moves, at logit scales 1 to 1000 (temperatures 1 to 1/1000), once
  with every pair matched and once with the targets of images 3 and 8 exchanged. Those two points are the
  ring's closest neighbours, so the swap is the kind of mistake a real caption makes. :func:`ring_points` and
  :func:`loss_against_z` build it; the book's chapter leads with this one.

Where the ring follows its notebook: the ring (eight points at multiples of 45 degrees and a ninth at
1.53 pi), the swapped pair, the temperatures and the loss (mean of both directions). Where it differs: the
notebook draws ``z`` on 100 points in [-1, 1], which miss 0; the loss is even in ``z``, so the book reads it
on [0, 1] in steps of 0.01 and reports where each curve is lowest. Further pairs, (0, 4), (1, 5) and
(2, 6), extend the single swap to higher mismatch rates. The meridian set-up keeps its notebook's grid but
reads only the tilts 0 to 90 degrees, for the same reason (its loss is even in the tilt).

A fact of both toys that explains their curves. On the ring, both rings carry the same layout, so every logit
is ``s (1 - z**2) cos(phi) - s z**2``; the last term is the same for all entries and cancels in the softmax,
and the height acts only through the effective scale ``s (1 - z**2)`` (see :func:`effective_logit_scale`).
On the meridians the images have no height, so every logit is ``s cos(tilt) cos(phi)``: the tilt acts only
through ``s cos(tilt)`` (see :func:`tilt_effective_logit_scale`).

:func:`train_free_points` is the book's addition: the points themselves are trained with the CLIP loss at a
fixed logit scale from a ring with a gap. A fixed swap is only a relabelling that free points absorb, so
there a mismatch is drawn anew at every step (random pairs of captions exchanged), as a caption that fits
several images pulls on all of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

__all__ = [
    "LIANG_MISMATCH_LOGIT_SCALES",
    "LIANG_SPHERE_LOGIT_SCALES",
    "SPHERE_LONGITUDES",
    "SWAP_PAIRS",
    "ring_points",
    "swapped_targets",
    "contrastive_loss",
    "effective_logit_scale",
    "meridian_points",
    "meridian_targets",
    "tilt_effective_logit_scale",
    "loss_against_z",
    "loss_against_tilt",
    "loss_minima",
    "moved_minima",
    "train_free_points",
    "free_points_grid",
]

#: the notebook's temperatures 1, 1/5, ..., 1/1000 as logit scales
LIANG_MISMATCH_LOGIT_SCALES = (1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0)
#: exchanged targets, in order: the notebook's pair first, then the book's extension
SWAP_PAIRS = ((3, 8), (0, 4), (1, 5), (2, 6))
_N = 9
#: the logit scales of ``3d_sphere.ipynb`` (Fig. 3f-g: temperatures 1, 1/5, 1/35, 1/50, 1/100)
LIANG_SPHERE_LOGIT_SCALES = (1.0, 5.0, 35.0, 50.0, 100.0)
#: longitudes (degrees) of the six fixed images on the equator in ``3d_sphere.ipynb``
SPHERE_LONGITUDES = (-20.0, 0.0, 20.0, 40.0, 60.0, 80.0)


def _check_z(z) -> float:
    z = float(z)
    if not -1.0 <= z <= 1.0:
        raise ValueError(
            f"z is a height on the unit sphere and must lie in [-1, 1]; got {z!r}"
        )
    return z


def ring_points(z: float) -> tuple[np.ndarray, np.ndarray]:
    """The nine image points at height ``z`` and their captions at ``-z`` (rows are pairs), all unit length."""
    z = _check_z(z)
    r = np.sqrt(1.0 - z * z)
    angles = np.r_[np.array([0, 4, 2, 6, 1, 3, 7, 5]) * np.pi / 4, 1.53 * np.pi]
    ring = np.c_[r * np.cos(angles), r * np.sin(angles)]
    ring[np.abs(ring) < 1e-15] = 0.0
    return np.c_[ring, np.full(_N, z)], np.c_[ring, np.full(_N, -z)]


def swapped_targets(n_swapped: int, n: int = _N) -> np.ndarray:
    """Target caption of each image with the first ``n_swapped`` pairs of :data:`SWAP_PAIRS` exchanged."""
    if isinstance(n_swapped, bool) or not isinstance(n_swapped, (int, np.integer)):
        raise TypeError(f"n_swapped must be an integer; got {n_swapped!r}")
    if not 0 <= n_swapped <= len(SWAP_PAIRS):
        raise ValueError(f"n_swapped must lie in 0..{len(SWAP_PAIRS)}; got {n_swapped}")
    targets = np.arange(n)
    for a, b in SWAP_PAIRS[:n_swapped]:
        targets[a], targets[b] = b, a
    return targets


def _check_scale(logit_scale) -> float:
    s = float(logit_scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"logit_scale must be a positive number; got {logit_scale!r}")
    return s


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(lse - logits[np.arange(len(targets)), targets]))


def contrastive_loss(img, txt, logit_scale: float, targets=None) -> float:
    """The symmetric CLIP loss of one batch whose image ``i`` is paired with caption ``targets[i]``.

    ``targets`` must be a permutation (each caption is some image's), so the caption-to-image direction
    uses its inverse; the identity by default.
    """
    x, y = np.asarray(img, dtype=np.float64), np.asarray(txt, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            f"img and txt must be matrices of the same shape; got {x.shape} and {y.shape}"
        )
    s = _check_scale(logit_scale)
    n = len(x)
    t = np.arange(n) if targets is None else np.asarray(targets)
    if t.shape != (n,) or not np.array_equal(np.sort(t), np.arange(n)):
        raise ValueError(
            f"targets must be a permutation of 0..{n - 1}; got {targets!r}"
        )
    inverse = np.argsort(t)
    logits = s * x @ y.T
    return 0.5 * (_cross_entropy(logits, t) + _cross_entropy(logits.T, inverse))


def effective_logit_scale(logit_scale: float, z: float) -> float:
    """``s (1 - z**2)``: the logit scale at ``z = 0`` that gives the toy the same loss as ``s`` at ``z``."""
    z = _check_z(z)
    return _check_scale(logit_scale) * (1.0 - z * z)


def _check_tilt(tilt) -> float:
    t = float(tilt)
    if not -90.0 <= t <= 90.0:
        raise ValueError(
            f"tilt is the captions' move along their meridians in degrees and must lie in "
            f"[-90, 90]; got {tilt!r}"
        )
    return t


def meridian_points(tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """The paper's set-up: six images fixed on the equator at :data:`SPHERE_LONGITUDES`, and six captions on the
    same meridians moved down by ``tilt`` degrees (rows are positions, not pairs: see :func:`meridian_targets`).

    At ``tilt = 0`` the captions lie on the images, so the two means coincide; at 90 they all sit at the
    south pole.
    """
    t = np.deg2rad(_check_tilt(tilt))
    lon = np.deg2rad(np.asarray(SPHERE_LONGITUDES))
    flat = np.c_[np.cos(lon), np.sin(lon), np.zeros(len(lon))]
    txt = np.c_[np.cos(t) * flat[:, :2], np.full(len(lon), -np.sin(t))]
    return flat, txt


def meridian_targets(n_swapped: int) -> np.ndarray:
    """Caption of each image in :func:`meridian_points`: its own meridian's, or with ``n_swapped = 1`` the first
    two exchanged (the mismatched pairs (I0, T0) and (I1, T1) of the paper, neighbours 20 degrees apart)."""
    if isinstance(n_swapped, bool) or not isinstance(n_swapped, (int, np.integer)):
        raise TypeError(f"n_swapped must be an integer; got {n_swapped!r}")
    if n_swapped not in (0, 1):
        raise ValueError(
            f"the paper's set-up has one mismatched pair or none: n_swapped must be 0 or 1; "
            f"got {n_swapped}"
        )
    targets = np.arange(len(SPHERE_LONGITUDES))
    if n_swapped:
        targets[[0, 1]] = [1, 0]
    return targets


def tilt_effective_logit_scale(logit_scale: float, tilt: float) -> float:
    """``s cos(tilt)``: the logit scale at ``tilt = 0`` that gives the meridian toy the same loss as ``s`` at
    ``tilt`` (degrees)."""
    t = _check_tilt(tilt)
    return _check_scale(logit_scale) * float(np.cos(np.deg2rad(t)))


def loss_against_tilt(
    logit_scales=LIANG_SPHERE_LOGIT_SCALES, swaps=(0, 1), tilts=None
) -> pd.DataFrame:
    """The paper's toy on a grid of caption tilts (degrees): one row per (logit scale, swapped pairs, tilt),
    with the gap (L2M) between the fixed images and the moved captions."""
    tilts = (
        np.arange(0.0, 91.0) if tilts is None else np.asarray(tilts, dtype=np.float64)
    )
    return _loss_grid(
        logit_scales,
        swaps,
        "tilt",
        {float(t): meridian_points(t) for t in tilts},
        meridian_targets,
        lambda t, x, y: float(np.linalg.norm(x.mean(0) - y.mean(0))),
    )


def _loss_grid(logit_scales, swaps, name, layouts, targets_of, gap) -> pd.DataFrame:
    """One row per (logit scale, swapped pairs, layout value ``name``): the toy's gap and loss."""
    rows = []
    for n_swapped in swaps:
        targets = targets_of(int(n_swapped))
        for s in logit_scales:
            for v, (x, y) in layouts.items():
                rows.append(
                    {
                        "logit scale": float(s),
                        "swapped pairs": int(n_swapped),
                        name: v,
                        "gap": gap(v, x, y),
                        "loss": contrastive_loss(x, y, s, targets),
                    }
                )
    return pd.DataFrame(rows)


def loss_against_z(
    logit_scales=LIANG_MISMATCH_LOGIT_SCALES, swaps=(0, 1), zs=None
) -> pd.DataFrame:
    """The toy's loss on a grid of heights: one row per (logit scale, swapped pairs, z)."""
    zs = (
        np.round(np.linspace(0.0, 1.0, 101), 10)
        if zs is None
        else np.asarray(zs, dtype=np.float64)
    )
    return _loss_grid(
        logit_scales,
        swaps,
        "z",
        {float(z): ring_points(z) for z in zs},
        swapped_targets,
        lambda z, x, y: 2.0 * abs(z),
    )


def loss_minima(frame: pd.DataFrame, along: str = "z") -> pd.DataFrame:
    """Per (logit scale, swapped pairs), the row of :func:`loss_against_z` (or, with ``along="tilt"``,
    :func:`loss_against_tilt`) where the loss is lowest (the smallest ``z`` or tilt on ties, so a flat curve
    reads as a closed gap)."""
    if along not in frame.columns:
        raise ValueError(
            f"along must name the column the toy moves along ('z' or 'tilt'); "
            f"the frame has {list(frame.columns)}"
        )
    ordered = frame.sort_values(["logit scale", "swapped pairs", along])
    idx = ordered.groupby(["logit scale", "swapped pairs"])["loss"].idxmin()
    return (
        frame.loc[idx]
        .sort_values(["swapped pairs", "logit scale"])
        .reset_index(drop=True)
    )


def moved_minima(at_minimum: pd.Series, along: str = "z") -> dict:
    """Where one family of curves' minima left a closed gap, and the effective logit scale there.

    ``at_minimum``: ``z`` (or, with ``along="tilt"``, the tilt) at the minimum, indexed by logit scale (a
    column of :func:`loss_minima` pivoted by swapped pairs). Returns ``first_moved`` (the smallest logit
    scale whose minimum is not at 0; NaN if none) and ``eff_low``/``eff_high``, the range of
    :func:`effective_logit_scale` (:func:`tilt_effective_logit_scale`) over the minima that moved (NaN if none).
    """
    effective = {"z": effective_logit_scale, "tilt": tilt_effective_logit_scale}
    if along not in effective:
        raise ValueError(f"along must be 'z' or 'tilt'; got {along!r}")
    eff = [effective[along](s, v) for s, v in at_minimum.items() if v > 0]
    moved = at_minimum.index[at_minimum > 0]
    nan = float("nan")
    return {
        "first_moved": moved.min() if len(moved) else nan,
        "eff_low": min(eff) if eff else nan,
        "eff_high": max(eff) if eff else nan,
    }


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=1, keepdim=True)


def train_free_points(
    z0: float,
    logit_scale: float,
    n_swapped: int,
    *,
    steps: int = 1000,
    lr: float = 0.01,
    seed: int = 0,
) -> dict:
    """Train the 18 points of :func:`ring_points` ``(z0)`` as free unit vectors with the CLIP loss at a fixed
    logit scale (Adam, full batch). At every step ``n_swapped`` random pairs of captions are exchanged.

    Returns the gap (L2M: distance between the two means) at the start and the end, and the last loss.
    """
    s = _check_scale(logit_scale)
    if not 0 <= int(n_swapped) <= _N // 2:
        raise ValueError(f"n_swapped must lie in 0..{_N // 2}; got {n_swapped!r}")
    if int(steps) < 1:
        raise ValueError(f"steps must be at least 1; got {steps!r}")
    k = int(n_swapped)
    gen = torch.Generator().manual_seed(int(seed))
    x0, y0 = (torch.tensor(p) for p in ring_points(z0))
    x, y = x0.clone().requires_grad_(True), y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x, y], lr=lr)
    ce = torch.nn.functional.cross_entropy
    for _ in range(int(steps)):
        targets = torch.arange(_N)
        if k:
            picked = torch.randperm(_N, generator=gen)[: 2 * k]
            targets[picked[:k]], targets[picked[k:]] = picked[k:], picked[:k]
        logits = s * _unit(x) @ _unit(y).T
        # an exchange is its own inverse, so one target vector serves both directions
        loss = 0.5 * (ce(logits, targets) + ce(logits.T, targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        gap = float((_unit(x).mean(0) - _unit(y).mean(0)).norm())
    return {
        "logit scale": s,
        "swapped pairs": k,
        "mismatched captions": 2 * k / _N,
        "l2m start": float((x0.mean(0) - y0.mean(0)).norm()),
        "l2m": gap,
        "loss": float(loss.detach()),
    }


def free_points_grid(
    z0: float = 0.5,
    logit_scales=LIANG_MISMATCH_LOGIT_SCALES,
    swaps=(0, 1, 2, 4),
    *,
    steps: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`train_free_points` for every (logit scale, swapped pairs), one row each."""
    return pd.DataFrame(
        [
            train_free_points(z0, s, k, steps=steps, seed=seed)
            for k in swaps
            for s in logit_scales
        ]
    )
