"""Multimodal arithmetic: an image plus the difference of two words, retrieved among images.

Fahim et al. (2024) report it in their abstract; their code scores it on SIMAT (Couairon et al., 2022) in
``tests/simat_score.py`` (the section of the paper could not be read here): the
query is the normalised image embedding of an object with value ``a`` plus ``lam`` times the difference of
the normalised text embeddings of ``b`` and ``a``; the gallery images are ranked by their dot product with
the query, the query image itself left out, and a query scores when the nearest image shows the transformed
scene. This module is the same query on any labelled gallery: ``factors`` gives every image's value of
each factor; a query changes ``factor`` from the image's value to another, and an image is a target when it
has the new value and the query image's value of every factor in ``keep``.

Differences from SIMAT's script, because the data differ: SIMAT judges a hit with a caption-similarity score
(OSCAR > 0.5) and weights transformations; a labelled gallery checks the labels and weights every query
alike. Queries without any target in the gallery are skipped and counted. Ties count against the query, as
in :func:`gaplab.metrics.recall_at_k`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gaplab.metrics.inputs import as_embeddings, as_labels
from gaplab.metrics.retrieval import TIE_TOLERANCE

__all__ = ["QUERIES", "arithmetic_accuracy"]

#: the arithmetic query and two baselines: the image alone, and the text of the new value alone
QUERIES = ("image+text", "image", "text")


def _labels(factors: Mapping, n: int) -> dict[str, np.ndarray]:
    if not isinstance(factors, Mapping) or not factors:
        raise TypeError(
            "factors must be a non-empty mapping from factor name to each image's value code"
        )
    out = {}
    for name, codes in factors.items():
        arr = np.asarray(codes)
        if arr.shape != (n,):
            raise ValueError(
                f"factor {name!r} has {arr.shape} labels; expected one per image ({n})"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"factor {name!r} labels must be integer codes; got dtype {arr.dtype}"
            )
        out[name] = arr
    return out


def _checked_query(x, w, factors, factor, keep, ks, query):
    """The labels, the value of ``factor`` per image and the ranks of a query, or ValueError naming what is
    wrong."""
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"image and value text embeddings must have the same dimension; got {x.shape[1]} and "
            f"{w.shape[1]}"
        )
    labels = _labels(factors, len(x))
    if factor not in labels:
        raise ValueError(
            f"unknown factor {factor!r}; the labels have {', '.join(labels)}"
        )
    unknown = [name for name in keep if name not in labels]
    if unknown or factor in keep:
        raise ValueError(
            f"keep must name other factors of the labels; got {list(keep)!r}"
        )
    if query not in QUERIES:
        raise ValueError(f"query must be one of {', '.join(QUERIES)}; got {query!r}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive ranks; got {ks!r}")
    value = as_labels(labels[factor], len(x), len(w), name=f"{factor} labels")

    return labels, value, ks


def arithmetic_accuracy(
    img,
    factors: Mapping,
    factor: str,
    value_text,
    *,
    keep: Sequence[str] = (),
    ks: Sequence[int] = (1, 5),
    query: str = "image+text",
    lam: float = 1.0,
    per_image: bool = False,
) -> dict:
    """Top-k accuracy of the queries "image with value a, plus text(b) minus text(a)", over every image and
    every value b other than its own.

    ``img``: (n, d) gallery embeddings (normalised here), which are also the query images; ``factors``: factor
    name -> (n,) integer codes; ``value_text``: (values of ``factor``, d) text embeddings, one per value
    (normalised here); ``keep``: factors a target must share with the query image; ``query``: one of
    :data:`QUERIES`. Returns ``{"top-1": ..., "top-5": ..., "queries": n, "skipped": m}``; with ``per_image``
    also ``"image queries"`` and ``"image top-k"``: per query image, its number of answered queries and of
    hits, so that a bootstrap can resample images.

    Examples
    --------
    Red or blue (axes 0, 1), circle or square (axis 2); "red circle + blue - red" must find the blue circle:

    >>> import numpy as np
    >>> from gaplab.metrics.arithmetic import QUERIES, arithmetic_accuracy
    >>> img = np.array([[1.0, 0, 0.3], [0, 1.0, 0.3], [1.0, 0, -0.3], [0, 1.0, -0.3]])
    >>> factors = {"colour": np.array([0, 1, 0, 1]), "shape": np.array([0, 0, 1, 1])}
    >>> words = np.eye(3)[:2]  # "red", "blue"
    >>> {q: arithmetic_accuracy(img, factors, "colour", words, keep=["shape"], query=q)["top-1"]
    ...  for q in QUERIES}  # the image alone finds the red square; the word ties both blue images
    {'image+text': 1.0, 'image': 0.0, 'text': 0.0}
    """
    x = as_embeddings(img, "image embeddings", min_rows=2)
    w = as_embeddings(value_text, "value text embeddings", min_rows=2)
    labels, value, ks = _checked_query(x, w, factors, factor, keep, ks, query)

    n = len(x)
    # rows that agree on every kept factor (the image itself excluded)
    same = ~np.eye(n, dtype=bool)
    for name in keep:
        same &= labels[name][:, None] == labels[name][None, :]
    gram = x @ x.T
    text = w @ x.T  # (values, n): each word's dot product with every gallery image
    hits = {k: np.zeros(n, dtype=np.int64) for k in ks}
    asked_by_image = np.zeros(n, dtype=np.int64)
    skipped = 0
    for b in range(len(w)):
        rows = np.flatnonzero(value != b)
        if query == "image+text":
            scores = gram[rows] + lam * (text[b][None, :] - text[value[rows]])
        elif query == "image":
            scores = gram[rows]
        else:
            scores = np.broadcast_to(text[b], (len(rows), n))
        target = same[rows] & (value == b)[None, :]
        found = target.any(axis=1)
        skipped += int((~found).sum())
        scores, target, own = scores[found], target[found], rows[found]
        best = np.where(target, scores, -np.inf).max(axis=1)
        rival = (scores >= best[:, None] - TIE_TOLERANCE) & ~target
        rival[np.arange(len(own)), own] = False  # the query image is never retrieved
        ahead = rival.sum(axis=1)
        asked_by_image += np.bincount(own, minlength=n)
        for k in ks:
            hits[k] += np.bincount(own, weights=ahead < k, minlength=n).astype(np.int64)
    asked = int(asked_by_image.sum())
    # accuracies and counts, and with per_image the per-image arrays
    out: dict[str, float | np.ndarray] = {
        f"top-{k}": (int(hits[k].sum()) / asked if asked else float("nan")) for k in ks
    }
    out.update(queries=asked, skipped=skipped)
    if per_image:
        out["image queries"] = asked_by_image
        out.update({f"image top-{k}": hits[k] for k in ks})
    return out
