"""Alignment and uniformity of Wang and Isola (2020), the two terms Fahim et al. (2024) relate to the gap.

Rows are L2-normalised first, as in :mod:`gaplab.metrics.gap`, and everything is computed in float64. These
are the measurement counterparts of the training losses in :mod:`gaplab.training.losses`: the same formulas, but
checked inputs, numpy or torch in, and a plain float out.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from gaplab.metrics.inputs import as_embeddings, as_pair

__all__ = ["alignment", "uniformity", "cross_uniformity"]


def alignment(x, y) -> float:
    """Mean squared Euclidean distance between matched normalised rows: mean_i ||x_i - y_i||^2.

    Row i of ``x`` pairs with row i of ``y``, so both need the same number of rows. Lies in [0, 4]: 0 when
    every pair coincides, 4 when every pair is antipodal. Lower is better aligned.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import alignment
    >>> round(alignment(img, txt), 4)
    1.5505
    """
    a, b = as_pair(x, y, same_rows=True, min_rows=1)
    # for unit rows ||a - b||^2 = 2 - 2<a, b>; the difference form stays exact for nearly equal rows
    sq = np.einsum("ij,ij->i", a - b, a - b)
    return float(np.clip(sq.mean(), 0.0, 4.0))


def _temperature(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
        raise ValueError(f"t must be a positive finite number; got {t!r}")
    t = float(t)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"t must be a positive finite number; got {t}")
    return t


def uniformity(x, t: float = 2.0) -> float:
    """log of the mean over pairs i < j of exp(-t ||x_i - x_j||^2), on normalised rows.

    Lies in [-4t, 0]: 0 when all rows coincide, lower the more evenly the rows spread over the sphere.
    ``t`` must be positive and finite; Wang and Isola use t = 2. Needs at least 2 rows. Forms the N x N
    Gram matrix, so it is meant for evaluation sets of up to some thousands of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics import uniformity
    >>> round(uniformity(np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])), 4)
    -0.2501
    >>> round(uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])), 4)  # antipodal: -4t with t = 2
    -8.0
    """
    t = _temperature(t)
    z = as_embeddings(x, "embeddings", min_rows=2)
    i, j = np.triu_indices(len(z), k=1)
    # ||a - b||^2 = 2 - 2<a, b> for unit rows, which needs no (N^2 / 2, d) array of differences; rounding can
    # push it a hair below 0 for coinciding rows
    sq = np.maximum(2.0 - 2.0 * (z @ z.T)[i, j], 0.0)
    # logsumexp: exp(-t * 4) underflows to 0 for large t, and log(0) would be -inf instead of -4t
    value = logsumexp(-t * sq) - math.log(sq.size)
    return float(np.clip(value, -4.0 * t, 0.0))


def cross_uniformity(x, y, t: float = 2.0) -> float:
    """Fahim et al.'s cross-modal uniformity: log of the mean over i != j of exp(-t ||x_i - y_j||^2).

    Row i of ``x`` pairs with row i of ``y``; every image is compared with every text except its own caption,
    so the term measures how evenly the two modalities spread against each other rather than how well pairs
    align. As ``cross_encoder_uniform_loss`` in ``Evaluator.get_mscoco_uniformity`` (src/evaluator.py in
    abrar-fahim/contrastive-gap): the off-diagonal entries of the image-text distance matrix, squared, t = 2,
    and lower means more uniform. Rows are normalised first (the authors' embeddings arrive normalised).

    Lies in [-4t, 0] and is symmetric in ``x`` and ``y``. Needs at least 2 pairs; forms the N x N matrix.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import cross_uniformity
    >>> round(cross_uniformity(img, txt), 4)
    -2.7314
    """
    t = _temperature(t)
    a, b = as_pair(x, y, same_rows=True, min_rows=2)
    off = ~np.eye(len(a), dtype=bool)
    sq = np.maximum(2.0 - 2.0 * (a @ b.T)[off], 0.0)
    value = logsumexp(-t * sq) - math.log(sq.size)
    return float(np.clip(value, -4.0 * t, 0.0))
