"""Sums of unit-normalised rows in a single pass, in numpy or in torch, where the data already are.

The gap and bias measures need only sums of normalised rows (per modality, per class) and the cosine of each
matched pair. Normalising first would write a second copy of the data; instead each row's inverse length
weights it inside one matrix product, so the data are read about twice (lengths, then sums) and never
copied: a float32 array on the host or a tensor on a GPU stays as it is.

Two backends sit behind the same functions. numpy arrays (and lists) are computed in numpy, so the metrics
never need torch; torch tensors are computed in torch on their own device, so a GPU tensor is measured where it
lies. torch is imported only when a caller passes a tensor (which means torch is installed and loaded). When
one input is a tensor and the other an array, both go to torch on the tensor's device. Either way the results
come back as small float64 numpy arrays (d, C x d or N values), so the measures built on them are
backend-free.

Accuracy: products run in the data's precision over blocks of :data:`BLOCK` rows; the block sums are added in
float64. With float32 data this keeps the measures within about 1e-7 of an all-float64 computation (the
tests check 1e-6 at N = 8,000).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gaplab.metrics.inputs import check_matrix_shape

__all__ = [
    "BLOCK",
    "as_rows",
    "is_tensor",
    "unit_sum",
    "class_sums",
    "pair_cosines",
    "pair_distances",
    "same_device",
]

#: rows per block: small enough that a block's float32 sum loses nothing that matters, large enough that
#: the batched product runs at full speed
BLOCK = 256

#: blocks per numpy product: bounds the (blocks, C, d) partial sums held at once, whatever N is
_GROUP = 64

#: a matched pair closer than this is measured as the length of a difference, not as sqrt(2 - 2 cos)
_CLOSE = 0.1

#: rows as either backend holds them: a float32 or float64 (N, d) numpy array or torch tensor
Rows = Any


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a torch tensor (or a subclass of one), told without importing torch."""
    return any(c.__module__.split(".")[0] == "torch" for c in type(x).__mro__)


def as_rows(x, name: str = "embeddings", *, min_rows: int = 2) -> tuple[Rows, Rows]:
    """``x`` as a float32 or float64 (N, d) array (numpy input) or tensor (torch input, on its device), and
    the inverse length of each row; raise ValueError naming the problem (shape, too few rows, NaN or
    infinite values, all-zero rows)."""
    if is_tensor(x):
        return _torch_rows(x, name, min_rows)
    return _numpy_rows(x, name, min_rows)


def same_device(
    x: Rows, inv_x: Rows, y: Rows, inv_y: Rows
) -> tuple[Rows, Rows, Rows, Rows]:
    """Two sets of rows (with their inverse lengths) ready to be used together: two numpy arrays stay as they
    are; if either is a tensor, both become tensors on the device of the first tensor, in the wider of the
    two precisions."""
    if not (is_tensor(x) or is_tensor(y)):
        return x, inv_x, y, inv_y
    import torch  # the caller passed a tensor, so torch is installed and already loaded

    device = (x if is_tensor(x) else y).device
    x, inv_x, y, inv_y = (_on_torch(a, device) for a in (x, inv_x, y, inv_y))
    dtype = torch.promote_types(x.dtype, y.dtype)
    return x.to(dtype), inv_x, y.to(dtype), inv_y


def unit_sum(t: Rows, inv: Rows) -> np.ndarray:
    """The sum of the normalised rows, (d,) float64."""
    if is_tensor(t):
        return _to_numpy(_torch_blocked(inv[:, None].to(t.dtype), t.contiguous())[0])
    return _numpy_blocked(inv[:, None].astype(t.dtype), t)[0]


def class_sums(t: Rows, inv: Rows, codes: list[np.ndarray]) -> list[np.ndarray]:
    """For each labelling (codes 0..C-1 per row), the (C, d) float64 sums of the normalised rows of each class,
    all from one pass over ``t``."""
    sizes = [int(c.max()) + 1 for c in codes]
    offsets = np.cumsum([0, *sizes[:-1]])
    if is_tensor(t):
        sums = _to_numpy(
            _torch_blocked(
                _torch_weights(t, inv, codes, offsets, sum(sizes)), t.contiguous()
            )
        )
    else:
        weights = np.zeros((t.shape[0], sum(sizes)), dtype=t.dtype)
        rows = np.arange(t.shape[0])
        for c, off in zip(codes, offsets):
            weights[rows, c + off] = inv
        sums = _numpy_blocked(weights, t)
    return np.split(sums, np.cumsum(sizes)[:-1])


def pair_cosines(
    x: Rows, inv_x: Rows, y: Rows, inv_y: Rows, pairs: np.ndarray | None
) -> np.ndarray:
    """Cosine of each matched pair (row i with row i, or the (P, 2) ``pairs``), float64."""
    if is_tensor(x):
        return _to_numpy(_torch_cosines(x, inv_x, y, inv_y, pairs))
    if pairs is not None:
        i, j = pairs[:, 0], pairs[:, 1]
        x, inv_x, y, inv_y = x[i], inv_x[i], y[j], inv_y[j]
    return _row_dots(x, y).astype(np.float64) * inv_x * inv_y


def pair_distances(
    x: Rows, inv_x: Rows, y: Rows, inv_y: Rows, pairs: np.ndarray | None
) -> np.ndarray:
    """Euclidean distance between the normalised rows of each matched pair, float64.

    ``sqrt(2 - 2 cos)`` loses digits when a pair nearly coincides (below :data:`_CLOSE`), so those pairs are
    measured as the length of their difference instead."""
    if is_tensor(x):
        return _to_numpy(_torch_distances(x, inv_x, y, inv_y, pairs))
    dist = np.sqrt(
        np.clip(2.0 - 2.0 * pair_cosines(x, inv_x, y, inv_y, pairs), 0.0, None)
    )
    close = np.nonzero(dist < _CLOSE)[0]
    if close.size:
        i = close if pairs is None else pairs[close, 0]
        j = close if pairs is None else pairs[close, 1]
        diff = (
            x[i].astype(np.float64) * inv_x[i, None]
            - y[j].astype(np.float64) * inv_y[j, None]
        )
        dist[close] = np.linalg.norm(diff, axis=1)
    return dist


# --- numpy ---------------------------------------------------------------------------------------------------


def _numpy_array(x, name: str) -> np.ndarray:
    """``x`` as a float32 or float64 array: those two are taken as they are (no copy, any strides), anything
    else numeric is converted to float64."""
    try:
        arr = np.asarray(x)
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a numeric array of shape (N, d): {exc}"
        ) from None
    return arr


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dot product of each row of ``a`` with the same row of ``b``, in the data's precision, without the
    (N, d) temporary of ``(a * b).sum(1)``."""
    # numpy 2's vecdot runs one SIMD dot per row, faster than einsum; numpy 1 has only einsum
    vecdot = getattr(np, "vecdot", None)
    if vecdot is None:
        return np.einsum("ij,ij->i", a, b)
    # a square that overflows float32 is caught by the caller, which remeasures in float64
    with np.errstate(over="ignore"):
        return vecdot(a, b)


def _numpy_rows(x, name: str, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    arr = _numpy_array(x, name)
    check_matrix_shape(arr.shape, name, min_rows)
    squares = _row_dots(arr, arr)
    if not np.isfinite(squares).all():
        bad = ~np.isfinite(arr)
        if bad.any():
            rows = np.nonzero(bad.any(axis=1))[0]
            kind = "NaN" if np.isnan(arr).any() else "infinite"
            raise ValueError(
                f"{name} holds {kind} values (in {rows.size} rows, first row {rows[0]})"
            )
        # finite values whose squares overflow float32: measure in float64 instead
        arr = arr.astype(np.float64)
        squares = _row_dots(arr, arr)
    zero = np.nonzero(squares == 0)[0]
    if zero.size:
        raise ValueError(
            f"{name} has {zero.size} all-zero rows (first row {zero[0]}); they have no direction"
        )
    return arr, 1.0 / np.sqrt(squares.astype(np.float64))


def _numpy_blocked(weights: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``weights.T @ t`` for (N, C) weights in ``t``'s precision, summed block by block: (C, d) float64.

    Groups of :data:`_GROUP` blocks run as one batched product, so the partial sums held at once stay small
    and a non-contiguous ``t`` is copied one group at a time, never whole."""
    n, d = t.shape
    out = np.zeros((weights.shape[1], d))
    step = _GROUP * BLOCK
    for start in range(0, n, step):
        stop = min(start + step, n)
        k = (stop - start) // BLOCK
        mid = start + k * BLOCK
        if k:
            head = weights[start:mid].reshape(k, BLOCK, -1).transpose(0, 2, 1)
            out += np.matmul(head, t[start:mid].reshape(k, BLOCK, d)).sum(
                axis=0, dtype=np.float64
            )
        if stop > mid:
            out += weights[mid:stop].T @ t[mid:stop]
    return out


# --- torch: reached only with tensors, so torch is loaded whenever these run ---------------------------------


def _torch_rows(x, name: str, min_rows: int):
    import torch  # x is a tensor, so torch is installed and already loaded

    t = x.detach()
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32 if t.is_floating_point() else torch.float64)
    check_matrix_shape(t.shape, name, min_rows)
    norms = torch.linalg.vector_norm(t, dim=1)
    if not bool(torch.isfinite(norms).all()):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            rows = torch.nonzero(bad.any(dim=1)).flatten()
            kind = "NaN" if bool(torch.isnan(t).any()) else "infinite"
            raise ValueError(
                f"{name} holds {kind} values (in {rows.numel()} rows, first row {int(rows[0])})"
            )
        # finite values whose squares overflow float32: measure the lengths in float64 instead
        t = t.double()
        norms = torch.linalg.vector_norm(t, dim=1)
    zero = torch.nonzero(norms == 0).flatten()
    if zero.numel():
        raise ValueError(
            f"{name} has {zero.numel()} all-zero rows (first row {int(zero[0])}); they have no direction"
        )
    return t, norms.reciprocal()


def _on_torch(a, device):
    """A tensor on ``device``: a numpy array is wrapped without a copy where its strides allow."""
    import torch  # called only when the caller passed a tensor, so torch is loaded

    if not is_tensor(a):
        a = torch.from_numpy(
            a if all(s >= 0 for s in a.strides) else np.ascontiguousarray(a)
        )
    return a.to(device)


def _to_numpy(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _torch_blocked(weights, t):
    """``weights.T @ t`` for (N, C) weights, summed block by block: (C, d) float64."""
    import torch  # t is a tensor, so torch is loaded

    n, d = t.shape
    k = n // BLOCK
    out = torch.zeros(weights.shape[1], d, dtype=torch.float64, device=t.device)
    if k:
        head = weights[: k * BLOCK].reshape(k, BLOCK, -1).transpose(1, 2)
        out += torch.bmm(head, t[: k * BLOCK].reshape(k, BLOCK, d)).sum(
            dim=0, dtype=torch.float64
        )
    if n > k * BLOCK:
        out += (weights[k * BLOCK :].T @ t[k * BLOCK :]).double()
    return out


def _torch_weights(t, inv, codes: list[np.ndarray], offsets: np.ndarray, width: int):
    """(N, width) weights on ``t``'s device: row i holds its inverse length in the column of its class in
    each labelling."""
    import torch  # t is a tensor, so torch is loaded

    weights = torch.zeros(t.shape[0], width, dtype=t.dtype, device=t.device)
    rows = torch.arange(t.shape[0], device=t.device)
    for c, off in zip(codes, offsets):
        weights[rows, torch.as_tensor(c + off, device=t.device)] = inv.to(t.dtype)
    return weights


def _torch_pairs(x, inv_x, y, inv_y, pairs: np.ndarray | None):
    import torch  # x is a tensor, so torch is loaded

    if pairs is None:
        return x, inv_x, y, inv_y
    i = torch.as_tensor(pairs[:, 0], device=x.device)
    j = torch.as_tensor(pairs[:, 1], device=x.device)
    return x[i], inv_x[i], y[j], inv_y[j]


def _torch_cosines(x, inv_x, y, inv_y, pairs: np.ndarray | None):
    import torch  # x is a tensor, so torch is loaded

    x, inv_x, y, inv_y = _torch_pairs(x, inv_x, y, inv_y, pairs)
    dots = torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).flatten()
    return dots.double() * inv_x.double() * inv_y.double()


def _torch_distances(x, inv_x, y, inv_y, pairs: np.ndarray | None):
    import torch  # x is a tensor, so torch is loaded

    x, inv_x, y, inv_y = _torch_pairs(x, inv_x, y, inv_y, pairs)
    dist = torch.sqrt(
        torch.clamp(2.0 - 2.0 * _torch_cosines(x, inv_x, y, inv_y, None), min=0.0)
    )
    close = torch.nonzero(dist < _CLOSE).flatten()
    if close.numel():
        diff = (
            x[close].double() * inv_x[close, None].double()
            - y[close].double() * inv_y[close, None].double()
        )
        dist[close] = torch.linalg.vector_norm(diff, dim=1)
    return dist
