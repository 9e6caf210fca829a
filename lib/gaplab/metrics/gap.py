"""Measures of the modality gap.

All inputs are (N, d) arrays or tensors; rows are L2-normalised here, so the embeddings live on the unit
sphere as in CLIP. L2M, L2I, RMG and the mean within-modality cosine run in O(N*d) time and memory: the
averages over all pairs of rows follow from the row sums (sum_{i != j} <x_i, x_j> = ||sum_i x_i||^2 - N for
unit rows), so no N x N matrix is formed. They compute without copying the data (:mod:`gaplab.metrics._rows`):
numpy arrays in numpy, torch tensors in torch on their own device, so a GPU tensor is measured where it lies and
torch is never needed for arrays.
"""

from __future__ import annotations

import numpy as np

from gaplab.metrics._rows import (
    as_rows,
    pair_cosines,
    pair_distances,
    same_device,
    unit_sum,
)
from gaplab.metrics.inputs import as_pair, as_pairs

__all__ = [
    "l2m",
    "l2i",
    "rmg",
    "mean_cosine",
    "linear_separability",
    "neighbour_overlap",
    "RMG_MIN_MATCHED_DISTANCE",
]

#: RMG clamps the matched-pair distance below at this value (Schrodi et al., 2025), so that perfectly
#: aligned pairs do not make the ratio degenerate.
RMG_MIN_MATCHED_DISTANCE = 1e-3


def _pair_rows(img, txt, min_rows: int = 2):
    x, ix = as_rows(img, "image embeddings", min_rows=min_rows)
    y, iy = as_rows(txt, "text embeddings", min_rows=min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"image and text embeddings must have the same dimension; got {x.shape[1]} and {y.shape[1]}"
        )
    return same_device(x, ix, y, iy)


def _pairs_or_identity(pairs, n_img: int, n_txt: int) -> np.ndarray | None:
    p = as_pairs(pairs, n_img, n_txt)
    return None if pairs is None else p


def l2m(img, txt) -> float:
    """L2M: Euclidean distance between the means of the normalised image and text embeddings (Liang et al., 2022).

    Lies in [0, 2]. The two sides may have different numbers of rows.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import l2m
    >>> round(l2m(img, txt), 4)
    1.2015
    >>> l2m(img, img)
    0.0
    """
    x, ix, y, iy = _pair_rows(img, txt)
    diff = unit_sum(x, ix) / x.shape[0] - unit_sum(y, iy) / y.shape[0]
    return float(np.linalg.norm(diff))


def l2i(img, txt, pairs=None) -> float:
    """L2I: mean Euclidean distance between the normalised embeddings of matched image-text pairs.

    ``pairs`` is an optional (P, 2) array of (image row, text row); by default row i pairs with row i.
    Lies in [0, 2].

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import l2i
    >>> round(l2i(img, txt), 4)
    1.2015
    >>> round(l2i(img, txt, pairs=[[0, 0], [0, 1], [2, 2]]), 4)
    1.2674
    """
    x, ix, y, iy = _pair_rows(img, txt)
    p = _pairs_or_identity(pairs, x.shape[0], y.shape[0])
    # nearly coinciding pairs are measured as a difference, where sqrt(2 - 2 cos) would lose digits
    return float(pair_distances(x, ix, y, iy, p).mean())


def _mean_offdiagonal_cosine(x, inv) -> float:
    n = x.shape[0]
    s = unit_sum(x, inv)
    value = (float(s @ s) - n) / (n * (n - 1))
    # rounding can push a mean of cosines of identical rows past 1
    return min(max(value, -1.0), 1.0)


def mean_cosine(x) -> float:
    """Mean cosine similarity over all pairs of distinct rows: how narrow the cone of one modality is.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics import mean_cosine
    >>> round(mean_cosine(np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])), 4)
    0.9333
    >>> mean_cosine(np.array([[1.0, 0.0], [-1.0, 0.0]]))
    -1.0
    """
    return _mean_offdiagonal_cosine(*as_rows(x, "embeddings", min_rows=2))


def rmg(img, txt, pairs=None) -> float:
    """Relative modality gap of Schrodi et al. (2025).

    With the distance d(u, v) = (1 - cos(u, v)) / 2: ``m`` is the mean d over matched pairs (clamped below at
    :data:`RMG_MIN_MATCHED_DISTANCE`), ``d_img`` and ``d_txt`` the mean d over pairs of distinct rows within each
    modality, and RMG = m / (m + (d_img + d_txt) / 2). It lies in [0, 1]: near 0 when matched pairs are much
    closer than samples within a modality, near 1 when they are further apart.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import rmg
    >>> round(rmg(img, txt), 4)
    0.9209
    >>> round(rmg(img, img), 4)  # matched pairs coincide: the clamp keeps RMG above 0
    0.0291
    """
    x, ix, y, iy = _pair_rows(img, txt)
    p = _pairs_or_identity(pairs, x.shape[0], y.shape[0])
    matched = pair_cosines(x, ix, y, iy, p)
    m = max(float(((1.0 - matched) / 2.0).mean()), RMG_MIN_MATCHED_DISTANCE)
    d_img = (1.0 - _mean_offdiagonal_cosine(x, ix)) / 2.0
    d_txt = (1.0 - _mean_offdiagonal_cosine(y, iy)) / 2.0
    return float(m / (m + (d_img + d_txt) / 2.0))


def linear_separability(img, txt, seed: int = 0, test_fraction: float = 0.2) -> float:
    """Held-out accuracy of a linear classifier telling image embeddings from text embeddings.

    A logistic regression is fitted on normalised embeddings of a random (1 - test_fraction) share of the rows
    and scored on the rest; 0.5 means the modalities are indistinguishable, 1.0 perfectly separable. When both
    sides have the same number of rows, row i of each goes to the same split, so no matched pair is shared
    between training and test data.

    The default split is Fahim et al.'s: ``Evaluator.get_linear_seperability`` in their src/evaluator.py
    (abrar-fahim/contrastive-gap) trains on int(0.8 N) random pairs and tests on the other pairs, both
    modalities of a pair in the same split, as here. Their permutation comes from torch's global generator
    (seeded with 2 by ``prepare_config`` in their tests/gap_metrics.ipynb), which a numpy ``seed`` cannot
    replay, so the book's split is the same in size and kind, not in which pairs it picks.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import linear_separability
    >>> linear_separability(np.vstack([img, img]), np.vstack([txt, txt]))
    1.0
    """
    from sklearn.linear_model import LogisticRegression  # heavy: sklearn only here

    x, y = as_pair(img, txt, min_rows=4)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"test_fraction must lie strictly between 0 and 1; got {test_fraction}"
        )
    rng = np.random.default_rng(seed)

    def split(n: int, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the training share rounds down, as int(0.8 * N) does in the authors' evaluator
        n_train = min(max(1, int((1.0 - test_fraction) * n)), n - 1)
        return perm[:n_train], perm[n_train:]

    perm_x = rng.permutation(len(x))
    perm_y = perm_x if len(x) == len(y) else rng.permutation(len(y))
    tr_x, te_x = split(len(x), perm_x)
    tr_y, te_y = split(len(y), perm_y)
    features = np.concatenate([x[tr_x], y[tr_y]])
    labels = np.concatenate([np.zeros(len(tr_x)), np.ones(len(tr_y))])
    clf = LogisticRegression(C=1.0, max_iter=5000)
    clf.fit(features, labels)
    test = np.concatenate([x[te_x], y[te_y]])
    test_labels = np.concatenate([np.zeros(len(te_x)), np.ones(len(te_y))])
    return float((clf.predict(test) == test_labels).mean())


def neighbour_overlap(img, txt, k: int = 10) -> float:
    """How alike the two modalities organise the same samples.

    For each pair i, take the k nearest neighbours of image i among the images and of text i among the texts
    (cosine similarity, excluding i itself) and count the share of neighbours the two sets have in common.
    Returns the mean share in [0, 1]; two unrelated organisations give about k / (N - 1).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import neighbour_overlap
    >>> neighbour_overlap(img, txt, k=1)
    1.0
    """
    x, y = as_pair(img, txt, same_rows=True, min_rows=2)
    n = len(x)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must lie in 1..{n - 1} for {n} pairs; got {k}")

    def knn(z: np.ndarray) -> np.ndarray:
        sim = z @ z.T
        np.fill_diagonal(sim, -np.inf)
        # stable argsort so ties resolve the same way on every platform
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]

    a, b = knn(x), knn(y)
    shared = (a[:, :, None] == b[:, None, :]).any(axis=2).sum(axis=1)
    return float(shared.mean() / k)
