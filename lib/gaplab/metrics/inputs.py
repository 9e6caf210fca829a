"""Input checking shared by the metrics, and by experiments and zoo code that take embeddings the same way:
every metric accepts numpy arrays or torch tensors of shape (N, d)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_embeddings",
    "as_pair",
    "as_pairs",
    "as_labels",
    "check_matrix_shape",
    "unit_rows",
]


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        # a torch tensor, told without importing torch; widened first, since numpy has no bfloat16
        x = x.detach().cpu().double().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a numeric array of shape (N, d): {exc}"
        ) from None
    return arr


def check_matrix_shape(shape, name: str, min_rows: int) -> None:
    """Raise ValueError unless ``shape`` is (N, d) with N >= ``min_rows`` and d >= 1."""
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(
            f"{name} must have shape (N, d); got an array with shape {shape}"
        )
    if shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows; got {shape[0]}")
    if shape[1] < 1:
        raise ValueError(f"{name} has no columns (shape {shape})")


def as_embeddings(
    x, name: str = "embeddings", *, min_rows: int = 2, normalise: bool = True
) -> np.ndarray:
    """Return ``x`` as a float64 (N, d) array with unit rows, or raise ValueError saying what is wrong.

    Computing in float64 keeps the O(N*d) closed forms equal to the direct pairwise formulas.
    """
    arr = _to_numpy(x, name)
    check_matrix_shape(arr.shape, name, min_rows)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        kind = "NaN" if np.isnan(arr).any() else "infinite"
        raise ValueError(
            f"{name} holds {kind} values (in {rows.size} rows, first row {rows[0]})"
        )
    if not normalise:
        return arr
    return unit_rows(
        arr,
        lambda zero: (
            f"{name} has {zero.size} all-zero rows (first row {zero[0]}); they have no direction"
        ),
    )


def unit_rows(arr: np.ndarray, zero_rows_message) -> np.ndarray:
    """``arr`` with each row scaled to length 1; an all-zero row has no direction, so it raises ValueError
    with ``zero_rows_message(indices of the zero rows)``."""
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    zero = np.nonzero(norms[:, 0] == 0)[0]
    if zero.size:
        raise ValueError(zero_rows_message(zero))
    return arr / norms


def as_pair(
    img, txt, *, same_rows: bool = False, min_rows: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Check two embedding matrices that live in one space (same d); optionally the same number of rows."""
    x = as_embeddings(img, "image embeddings", min_rows=min_rows)
    y = as_embeddings(txt, "text embeddings", min_rows=min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"image and text embeddings must have the same dimension; got {x.shape[1]} and {y.shape[1]}"
        )
    if same_rows and x.shape[0] != y.shape[0]:
        raise ValueError(
            f"image and text embeddings must have the same number of rows (row i of each is a pair); "
            f"got {x.shape[0]} and {y.shape[0]}"
        )
    return x, y


def as_pairs(pairs, n_img: int, n_txt: int) -> np.ndarray:
    """Matched (image row, text row) index pairs as a (P, 2) int64 array; ``None`` pairs row i with row i."""
    if pairs is None:
        if n_img != n_txt:
            raise ValueError(
                f"without `pairs`, row i of the image embeddings is matched with row i of the text embeddings, "
                f"so both need the same number of rows; got {n_img} and {n_txt}. Pass pairs=(P, 2) indices."
            )
        idx = np.arange(n_img, dtype=np.int64)
        return np.stack([idx, idx], axis=1)
    if hasattr(pairs, "detach"):
        pairs = pairs.detach().cpu().numpy()
    arr = np.asarray(pairs)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"pairs must have shape (P, 2) of (image row, text row); got shape {arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(
            "pairs is empty; give at least one matched (image row, text row)"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("pairs must hold integer row indices")
    arr = arr.astype(np.int64)
    for col, n, side in ((0, n_img, "image"), (1, n_txt, "text")):
        lo, hi = arr[:, col].min(), arr[:, col].max()
        if lo < 0 or hi >= n:
            raise ValueError(
                f"pairs refers to {side} row {lo if lo < 0 else hi}, outside 0..{n - 1}"
            )
    return arr


def as_labels(labels, n: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Integer class labels of length ``n`` with values in 0..n_classes-1."""
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},); got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_classes:
        raise ValueError(
            f"{name} must lie in 0..{n_classes - 1}; got values {arr.min()}..{arr.max()}"
        )
    return arr.astype(np.int64)
