"""Object bias: Schrodi et al.'s (2025) MOAD and the similarity contrast it is built from.

A representation is biased towards the object when samples that share the object are much more alike than
samples that do not, while sharing an attribute (a colour, a size) makes little difference.
"""

from __future__ import annotations

import numpy as np

from gaplab.metrics._rows import as_rows, class_sums

__all__ = ["similarity_contrast", "moad"]


def _labels(labels, n: int, name: str) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{name} must be a 1-D array of length {n} (one label per embedding row); got shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite labels")
    # any hashable label values (ints, strings) define the classes
    return np.unique(arr, return_inverse=True)[1].reshape(-1)


def _contrast(sums: np.ndarray, codes: np.ndarray, name: str) -> float:
    """From the (C, d) class sums of normalised rows: mean cosine over pairs of distinct rows of one class
    minus the mean over pairs of different classes."""
    n = codes.shape[0]
    counts = np.bincount(codes).astype(np.float64)
    # rows are unit vectors, so the sum over ordered pairs i != j of a class is |S_c|^2 - n_c
    same = float((sums * sums).sum()) - n
    total_all = sums.sum(axis=0)
    total = float(total_all @ total_all) - n
    n_same = float((counts * (counts - 1)).sum())
    n_diff = float(n * (n - 1) - n_same)
    if n_same == 0:
        raise ValueError(
            f"{name}: no two samples share a value, so the same-value similarity is undefined"
        )
    if n_diff == 0:
        raise ValueError(
            f"{name}: every sample has the same value, so the different-value similarity is undefined"
        )
    return same / n_same - (total - same) / n_diff


def similarity_contrast(emb, labels, *, name: str = "labels") -> float:
    """Mean cosine over pairs of distinct samples with equal labels minus the mean over pairs with different
    labels. Lies in [-2, 2]; 0 when the label leaves no trace in the geometry. O(N*d) from class sums.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1.0, 0.0, 0.1], [0.9, 0.1, 0.0], [0.0, 1.0, 0.1], [0.1, 0.9, 0.0]])
    >>> objects = np.array([0, 0, 1, 1])
    >>> colours = np.array([0, 1, 0, 1])
    >>> from gaplab.metrics import similarity_contrast
    >>> round(similarity_contrast(emb, objects), 4)
    0.8767
    >>> round(similarity_contrast(emb, colours), 4)
    -0.4347
    """
    x, inv = as_rows(emb, "embeddings")
    codes = _labels(labels, x.shape[0], name)
    return _contrast(class_sums(x, inv, [codes])[0], codes, name)


def moad(emb, objects, attributes) -> float:
    """MOAD = (sim_o - sim_no) - (sim_a - sim_na) (Schrodi et al., 2025).

    ``sim_o``/``sim_no``: mean cosine over pairs of distinct samples with the same/different object;
    ``sim_a``/``sim_na`` likewise for an attribute. ``attributes`` is one label per sample, shape (N,), or
    one column per attribute factor, shape (N, F), in which case the result is the mean of the F per-factor
    MOADs. Positive means the embeddings are organised more by object than by attribute.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1.0, 0.0, 0.1], [0.9, 0.1, 0.0], [0.0, 1.0, 0.1], [0.1, 0.9, 0.0]])
    >>> objects = np.array([0, 0, 1, 1])
    >>> colours = np.array([0, 1, 0, 1])
    >>> from gaplab.metrics import moad
    >>> round(moad(emb, objects, colours), 4)  # 0.8767 - (-0.4347)
    1.3114
    """
    x, inv = as_rows(emb, "embeddings")
    n = x.shape[0]
    objects = _labels(objects, n, "objects")
    if hasattr(attributes, "detach"):
        attributes = attributes.detach().cpu().numpy()
    attrs = np.asarray(attributes)
    if attrs.ndim == 1:
        attrs = attrs[:, None]
    if attrs.ndim != 2 or attrs.shape[0] != n or attrs.shape[1] == 0:
        raise ValueError(
            f"attributes must have shape ({n},) or ({n}, F) with F >= 1 (one column per attribute factor); "
            f"got shape {np.asarray(attributes).shape}"
        )
    names = [f"attributes[:, {f}]" for f in range(attrs.shape[1])]
    codes = [_labels(attrs[:, f], n, names[f]) for f in range(attrs.shape[1])]
    # every labelling's class sums from one pass over the embeddings
    sums = class_sums(x, inv, [objects, *codes])
    obj = _contrast(sums[0], objects, "objects")
    per_factor = [_contrast(s, c, name) for s, c, name in zip(sums[1:], codes, names)]
    return float(obj - np.mean(per_factor))
