"""Which embedding dimensions carry the modality gap (Schrodi et al., 2025, dimension ablation).

The gap vector is the difference of the modality means of the normalised embeddings; its squared length, L2M^2,
is the sum of the squared per-dimension mean differences, so a dimension's share of the squared gap is its
squared difference over that sum. Ablating a dimension sets it to zero in both modalities and renormalises
the rows.
"""

from __future__ import annotations

import numpy as np

from gaplab.metrics.gap import l2m, rmg
from gaplab.metrics.inputs import as_embeddings, as_pair
from gaplab.metrics.retrieval import recall_at_k

__all__ = [
    "mean_differences",
    "top_gap_dimensions",
    "gap_share",
    "ablate",
    "ablation_curve",
    "random_ablation_curve",
]


def mean_differences(img, txt) -> np.ndarray:
    """Per-dimension difference of the means of the normalised image and text embeddings, shape (d,).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import mean_differences
    >>> mean_differences(img, txt).round(4)
    array([ 0.8072, -0.8899])
    """
    x, y = as_pair(img, txt)
    return x.mean(axis=0) - y.mean(axis=0)


def top_gap_dimensions(img, txt, k: int | None = None) -> np.ndarray:
    """Dimension indices sorted by ``|mean difference|``, largest first (ties by index); the first ``k`` if given.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import top_gap_dimensions
    >>> top_gap_dimensions(img, txt)
    array([1, 0])
    """
    diff = np.abs(mean_differences(img, txt))
    order = np.argsort(-diff, kind="stable")
    return order if k is None else order[:k]


def gap_share(img, txt, top: int = 2) -> float:
    """Share of the squared gap (L2M^2) carried by the ``top`` dimensions with the largest mean difference.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import gap_share
    >>> round(gap_share(img, txt, top=1), 4)
    0.5486
    """
    sq = np.sort(mean_differences(img, txt) ** 2)[::-1]
    if not 0 <= top <= sq.size:
        raise ValueError(f"top must lie in 0..{sq.size}; got {top}")
    total = sq.sum()
    if total == 0:
        raise ValueError(
            "the two modalities have identical means: there is no gap to share out"
        )
    return float(sq[:top].sum() / total)


def ablate(x, dims) -> np.ndarray:
    """Normalise ``x``, set the columns ``dims`` to zero and renormalise the rows.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics import ablate
    >>> ablate(np.array([[3.0, 4.0], [1.0, -1.0]]), [1])
    array([[1., 0.],
           [1., 0.]])
    """
    z = as_embeddings(x, "embeddings", min_rows=1).copy()
    dims = np.asarray(dims, dtype=np.int64).reshape(-1)
    if dims.size and (dims.min() < 0 or dims.max() >= z.shape[1]):
        raise ValueError(f"dimensions to ablate must lie in 0..{z.shape[1] - 1}")
    z[:, dims] = 0.0
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("ablating these dimensions leaves some rows all zero")
    return z / norms


def _curve(
    x: np.ndarray, y: np.ndarray, orders: np.ndarray, max_k: int
) -> dict[str, np.ndarray]:
    out = {
        key: np.zeros((len(orders), max_k + 1))
        for key in ("l2m", "rmg", "i2t_r1", "t2i_r1")
    }
    for r, order in enumerate(orders):
        for k in range(max_k + 1):
            xa, ya = ablate(x, order[:k]), ablate(y, order[:k])
            out["l2m"][r, k] = l2m(xa, ya)
            out["rmg"][r, k] = rmg(xa, ya)
            out["i2t_r1"][r, k] = recall_at_k(xa, ya, 1, "i2t")
            out["t2i_r1"][r, k] = recall_at_k(xa, ya, 1, "t2i")
    return out


def ablation_curve(img, txt, max_k: int = 20) -> dict[str, list]:
    """Ablate the top k gap dimensions for k = 0..max_k and track L2M, RMG and R@1 in both directions.

    Returns lists of ``max_k + 1`` floats (index = number of dimensions ablated) under ``l2m``, ``rmg``,
    ``i2t_r1``, ``t2i_r1``, and the ablated dimensions in order under ``dims``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import ablation_curve
    >>> curve = ablation_curve(img, txt, max_k=1)
    >>> curve["dims"], [round(v, 4) for v in curve["l2m"]]
    ([1], [1.2015, 0.6667])
    """
    x, y = as_pair(img, txt, same_rows=True)
    if not 0 <= max_k < x.shape[1]:
        raise ValueError(f"max_k must lie in 0..{x.shape[1] - 1}; got {max_k}")
    order = top_gap_dimensions(x, y)
    curve = _curve(x, y, order[None, :], max_k)
    result = {key: [float(v) for v in val[0]] for key, val in curve.items()}
    result["dims"] = [int(d) for d in order[:max_k]]
    return result


def random_ablation_curve(
    img, txt, max_k: int = 20, repeats: int = 30, seed: int = 0
) -> dict[str, dict]:
    """The control: ablate k randomly chosen dimensions, ``repeats`` times; mean and std per k of each measure.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import random_ablation_curve
    >>> control = random_ablation_curve(img, txt, max_k=1, repeats=4)
    >>> [round(v, 4) for v in control["l2m"]["mean"]]
    [1.2015, 0.6667]
    """
    x, y = as_pair(img, txt, same_rows=True)
    if not 0 <= max_k < x.shape[1]:
        raise ValueError(f"max_k must lie in 0..{x.shape[1] - 1}; got {max_k}")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}")
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(x.shape[1]) for _ in range(repeats)])
    curve = _curve(x, y, orders, max_k)
    return {
        key: {
            "mean": [float(v) for v in val.mean(axis=0)],
            "std": [float(v) for v in val.std(axis=0)],
        }
        for key, val in curve.items()
    }
