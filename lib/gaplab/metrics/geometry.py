"""Projections of paired embeddings for looking at the gap, and Liang et al.'s shift that closes it."""

from __future__ import annotations

import math

import numpy as np

from gaplab.metrics.inputs import as_pair, unit_rows

__all__ = ["joint_pca", "shift_along_gap", "unit_gap", "subtract_gap"]


def joint_pca(
    img, txt, n_components: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project normalised image and text embeddings onto the principal components of both sets together.

    Returns ``(img_proj, txt_proj, explained)``: the (N, n_components) projections and the share of the joint
    variance each component explains. Components are signed so that the image mean has a non-negative first
    coordinate, which makes the picture the same on every platform.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics.geometry import joint_pca
    >>> img_2d, txt_2d, explained = joint_pca(img, txt)
    >>> img_2d.shape, explained.round(4)
    ((3, 2), array([0.9565, 0.0435]))
    """
    x, y = as_pair(img, txt)
    joint = np.concatenate([x, y])
    centre = joint.mean(axis=0)
    if not 1 <= n_components <= min(joint.shape):
        raise ValueError(
            f"n_components must lie in 1..{min(joint.shape)}; got {n_components}"
        )
    _, s, vt = np.linalg.svd(joint - centre, full_matrices=False)
    comps = vt[:n_components]
    img_proj = (x - centre) @ comps.T
    sign = np.where(img_proj.mean(axis=0) < 0, -1.0, 1.0)
    comps = comps * sign[:, None]
    explained = s**2 / (s**2).sum()
    return (x - centre) @ comps.T, (y - centre) @ comps.T, explained[:n_components]


def shift_along_gap(
    img, txt, lam: float, *, delta=None
) -> tuple[np.ndarray, np.ndarray]:
    """Liang et al.'s (2022) embedding shift: move both modalities along the gap vector and renormalise.

    With ``delta`` the mean of the normalised image rows minus the mean of the normalised text rows, returns
    ``(normalise(x - lam * delta), normalise(y + lam * delta))`` as float64 arrays. ``lam = 0`` gives the
    normalised inputs; positive ``lam`` moves the modalities towards each other (at ``lam = 0.5`` their means
    meet before renormalising), negative ``lam`` pushes them apart. The two sides may have different numbers
    of rows.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import l2m
    >>> from gaplab.metrics.geometry import shift_along_gap
    >>> img_s, txt_s = shift_along_gap(img, txt, lam=0.5)
    >>> round(l2m(img, txt), 4), round(l2m(img_s, txt_s), 4)
    (1.2015, 0.0701)
    """
    if isinstance(lam, bool) or not isinstance(
        lam, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"lam must be a finite number; got {lam!r}")
    lam = float(lam)
    if not math.isfinite(lam):
        raise ValueError(f"lam must be a finite number; got {lam}")
    x, y = as_pair(img, txt, min_rows=1)
    if delta is None:
        delta = x.mean(axis=0) - y.mean(axis=0)
    else:
        delta = np.asarray(delta, dtype=np.float64)
        if delta.shape != (x.shape[1],) or not np.all(np.isfinite(delta)):
            raise ValueError(
                f"delta must be a finite vector of shape ({x.shape[1]},); got shape {delta.shape}"
            )

    def renormalise(z: np.ndarray, side: str) -> np.ndarray:
        # a row equal to the shift itself has no direction left after it
        return unit_rows(
            z,
            lambda zero: (
                f"shifting by lam={lam} sends {side} row {zero[0]} to zero; choose another lam"
            ),
        )

    return renormalise(x - lam * delta, "image"), renormalise(y + lam * delta, "text")


def unit_gap(img, txt) -> np.ndarray:
    """ĝ: the mean of the normalised image rows minus that of the normalised text rows, scaled to length 1.
    The two sides may have different numbers of rows.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics.geometry import unit_gap
    >>> unit_gap(img, txt).round(4)
    array([ 0.6718, -0.7407])
    """
    x, y = as_pair(img, txt, min_rows=1)
    g = x.mean(axis=0) - y.mean(axis=0)
    norm = np.linalg.norm(g)
    if norm == 0:
        raise ValueError(
            "the two modalities have the same mean: there is no gap direction to shift along"
        )
    return g / norm


def subtract_gap(img, txt) -> np.ndarray:
    """The normalised images moved by minus the mean gap vector (mean image minus mean text row, both
    normalised) and renormalised: the gap closed on the image side, as Schrodi et al. close it.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import l2m
    >>> from gaplab.metrics.geometry import subtract_gap
    >>> round(l2m(subtract_gap(img, txt), txt), 4)
    0.0236
    """
    x, y = as_pair(img, txt, min_rows=1)
    moved = x - (x.mean(axis=0) - y.mean(axis=0))
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)
