"""Cross-modal retrieval and zero-shot classification.

Ties count against the query: a match is at rank r when r other candidates score at least as high as the best
match, so degenerate embeddings (all equal) score 0 rather than a perfect recall. Scores within
:data:`TIE_TOLERANCE` of each other count as tied, so that rounding (after a rotation, say) cannot break a tie.
"""

from __future__ import annotations

import numpy as np

from gaplab.metrics.inputs import as_embeddings, as_labels, as_pair, as_pairs

__all__ = ["recall_at_k", "zero_shot_accuracy", "TIE_TOLERANCE"]

_DIRECTIONS = ("i2t", "t2i")
#: queries per block: keeps memory at O(chunk * N) for large galleries
_CHUNK = 1024
#: cosine similarities closer than this are treated as equal
TIE_TOLERANCE = 1e-10


def recall_at_k(img, txt, k: int = 1, direction: str = "i2t", pairs=None) -> float:
    """Recall@k of cross-modal retrieval by cosine similarity.

    ``direction="i2t"`` queries with each image and searches the texts; ``"t2i"`` the reverse. ``pairs`` is an
    optional (P, 2) array of matched (image row, text row), which allows several captions per image; by default
    row i pairs with row i. A query counts as a hit when one of its matches ranks within the top ``k``; queries
    without any match are left out of the mean.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import recall_at_k
    >>> round(recall_at_k(img, txt, k=1), 4)
    0.3333
    >>> round(recall_at_k(img, txt, k=2), 4)
    0.6667
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}; got {direction!r}")
    x, y = as_pair(img, txt)
    p = as_pairs(pairs, len(x), len(y))
    if direction == "t2i":
        x, y, p = y, x, p[:, ::-1]
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(y):
        raise ValueError(f"k must be an integer in 1..{len(y)}; got {k!r}")
    hits = np.zeros(len(x), dtype=bool)
    has_match = np.zeros(len(x), dtype=bool)
    has_match[p[:, 0]] = True
    order = np.argsort(p[:, 0], kind="stable")
    p_sorted = p[order]
    for start in range(0, len(x), _CHUNK):
        stop = min(start + _CHUNK, len(x))
        sim = x[start:stop] @ y.T
        match = np.zeros_like(sim, dtype=bool)
        lo, hi = np.searchsorted(p_sorted[:, 0], [start, stop])
        block = p_sorted[lo:hi]
        match[block[:, 0] - start, block[:, 1]] = True
        best = np.where(match, sim, -np.inf).max(axis=1)
        rivals = ((sim >= best[:, None] - TIE_TOLERANCE) & ~match).sum(axis=1)
        hits[start:stop] = rivals < k
    return float(hits[has_match].mean())


def zero_shot_accuracy(img, class_txt, labels) -> float:
    """Share of images whose most similar class text embedding is their own class.

    ``class_txt`` has one row per class (e.g. the embedding of "a photo of a {class}"); ``labels`` holds each
    image's class index. Ties count against the image, as in :func:`recall_at_k`.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import zero_shot_accuracy
    >>> round(zero_shot_accuracy(img, class_txt=txt[:2], labels=[0, 1, 0]), 4)
    0.3333
    """
    x = as_embeddings(img, "image embeddings", min_rows=1)
    y = as_embeddings(class_txt, "class text embeddings", min_rows=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"image and class text embeddings must have the same dimension; got {x.shape[1]} and {y.shape[1]}"
        )
    lab = as_labels(labels, len(x), len(y))
    sim = x @ y.T
    own = sim[np.arange(len(x)), lab]
    rivals = (sim >= own[:, None] - TIE_TOLERANCE).sum(axis=1) - 1
    return float((rivals == 0).mean())
