"""Post-hoc remedies of the modality gap: maps applied to finished embeddings, each modality moved by its own
statistics, and a measure of where the gap vector lies relative to each modality's spread.

The three remedies share one form. With ``u`` the unit-normalised rows of one modality and ``(m, s)`` a shift
and a per-dimension scale fitted for that modality, the output row is ``(u - m) / s``, renormalised to length 1
unless ``renormalise=False``:

* :func:`center`: ``m`` is the modality's mean embedding, ``s = 1``. This is the "Collapse" step of C^3
  (Zhang, Sui and Yeung-Levy, "Connect, Collapse, Corrupt", ICLR 2024, arXiv 2401.08567), which removes the
  gap by subtracting each modality's embedding mean. The step is cited by its name: the copy of the paper the
  book could read holds its abstract and introduction, not its numbered method section. The details follow
  the authors' released code (yuhui-zh15/C3): the means are taken of L2-normalised embeddings
  (``image_captioning/src/parse_data/compute_embed_means.py``), and the embeddings are normalised, centred
  and normalised again (the flags ``--normalize_prefix --remove_mean --re_normalize_prefix`` of their run
  scripts).
* :func:`standardise`: ``m`` the mean, ``s`` the per-dimension standard deviation of the modality (population
  form, ddof = 0). This is meant as I0T's post-hoc embedding standardisation, I0T_post (An, Kim, Thorne and
  Shim, "I0T: Embedding Standardization Method Towards Zero Modality Gap", ACL 2025, arXiv 2412.14384; the
  method is named in the abstract). Where the book may differ, and why: the paper's method section was not
  available to the book, and the authors' released code (``remove_artifact_features`` in src/features.py of
  xfactlab/I0T) subtracts stored per-modality means of the normalised embeddings and renormalises, with no
  division by a standard deviation. The book follows the method's name and divides by the standard
  deviation, so ``standardise`` and :func:`center` differ by exactly that division. ddof = 0 is the book's
  choice: the statistics describe the fitted set itself, as a normalisation layer's do at evaluation.
* :func:`remove_gap_vector`: ``m = +delta / 2`` for the images and ``-delta / 2`` for the texts, with
  ``delta`` the image mean minus the text mean, ``s = 1``: Liang et al.'s (2022) shift along the gap at
  ``lam = 1/2``, where the two means meet before renormalising. It equals
  :func:`gaplab.metrics.geometry.shift_along_gap` with ``lam=0.5`` and that ``delta`` (the tests check it); it
  is written here on the shared form so that it keeps the input's backend and offers ``fit`` and
  ``renormalise`` like the other two.

Statistics are fitted on ``fit=(img_fit, txt_fit)`` when given (the remedy fitted on one set and applied to
another, e.g. a training split), else on the inputs themselves. Each side of ``fit`` needs at least 2 rows;
the rows to transform may then be a single row.

Backends: numpy in, numpy out; torch in, torch out on the input's device (when one side is a tensor, both
become tensors on its device, as everywhere in :mod:`gaplab.metrics`). The output keeps the input's float
precision; the statistics are computed in float64 and returned (by :func:`modality_means`) as float64 numpy
arrays. torch is never imported for numpy inputs.
"""

from __future__ import annotations

import math

import numpy as np

from gaplab.metrics._rows import as_rows, is_tensor, same_device, unit_sum

__all__ = [
    "modality_means",
    "center",
    "standardise",
    "remove_gap_vector",
    "gap_statistics",
    "ZERO_STD",
    "VARIANCE_SHARE",
]

#: a dimension whose standard deviation over unit rows is below this is constant up to rounding (the entries
#: of a unit row are at most 1 in size), so :func:`standardise` refuses to divide by it
ZERO_STD = 1e-12
#: the share of a modality's variance its principal subspace explains in :func:`gap_statistics`
VARIANCE_SHARE = 0.9


# --- shared steps --------------------------------------------------------------------------------------------


def _rows_pair(img, txt, what: str, min_rows: int):
    x, ix = as_rows(img, f"image {what}", min_rows=min_rows)
    y, iy = as_rows(txt, f"text {what}", min_rows=min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"image and text {what} must have the same dimension; got {x.shape[1]} and {y.shape[1]}"
        )
    return same_device(x, ix, y, iy)


def _unit(t, inv):
    """The rows scaled to length 1, in ``t``'s backend and precision (a new array; the input is untouched)."""
    if is_tensor(t):
        return t * inv.to(t.dtype)[:, None]
    return t * inv.astype(t.dtype)[:, None]


def _column_stats(u, with_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Each column's mean and, if asked, its population standard deviation: float64 numpy."""
    if is_tensor(u):
        wide = u.double()
        mean = wide.mean(dim=0).cpu().numpy()
        std = wide.std(dim=0, correction=0).cpu().numpy() if with_std else None
        return mean, std
    mean = u.mean(axis=0, dtype=np.float64)
    return mean, (u.std(axis=0, dtype=np.float64) if with_std else None)


def _fit_rows(fit, d: int):
    """The unit rows of the ``fit`` pair, each side in its own backend."""
    if not isinstance(fit, (tuple, list)) or len(fit) != 2:
        raise ValueError(
            "fit must be a pair (image embeddings, text embeddings) to take the statistics from; "
            f"got {type(fit).__name__}"
            + (f" of length {len(fit)}" if isinstance(fit, (tuple, list)) else "")
        )
    x, ix, y, iy = _rows_pair(fit[0], fit[1], "fit embeddings", 2)
    if x.shape[1] != d:
        raise ValueError(
            f"the fit embeddings have dimension {x.shape[1]}, the embeddings to transform {d}"
        )
    return _unit(x, ix), _unit(y, iy)


def _prepare(img, txt, fit, with_std: bool):
    """The unit rows of the inputs and the (mean, std) of each modality's fitting rows."""
    x, ix, y, iy = _rows_pair(img, txt, "embeddings", 2 if fit is None else 1)
    ux, uy = _unit(x, ix), _unit(y, iy)
    fx, fy = (ux, uy) if fit is None else _fit_rows(fit, x.shape[1])
    return ux, uy, _column_stats(fx, with_std), _column_stats(fy, with_std)


def _like(v: np.ndarray, u):
    """A float64 statistic in ``u``'s backend, device and precision."""
    if is_tensor(u):
        import torch  # u is a tensor, so torch is installed and already loaded

        return torch.as_tensor(v, dtype=u.dtype, device=u.device)
    return v.astype(u.dtype)


def _apply(u, shift, scale, renormalise: bool, side: str, remedy: str):
    out = u - _like(shift, u)
    if scale is not None:
        out = out / _like(scale, u)
    if not renormalise:
        return out
    if is_tensor(out):
        import torch  # out is a tensor, so torch is loaded

        norms = torch.linalg.vector_norm(out, dim=1)
        zero = torch.nonzero(norms == 0).flatten().cpu().numpy()
    else:
        norms = np.linalg.norm(out, axis=1)
        zero = np.nonzero(norms == 0)[0]
    if zero.size:
        # a row equal to the statistic it is moved by has no direction left
        raise ValueError(
            f"{remedy} sends {zero.size} {side} rows to zero (first row {zero[0]}); "
            "they have no direction to renormalise (pass renormalise=False to keep them)"
        )
    return out / norms[:, None]


# --- public --------------------------------------------------------------------------------------------------


def modality_means(img, txt) -> tuple[np.ndarray, np.ndarray]:
    """Each modality's mean embedding: the means of the unit-normalised image rows and of the text rows,
    float64 numpy arrays of shape (d,). Their difference is the gap vector, whose length is L2M.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics import l2m
    >>> from gaplab.metrics.remedies import modality_means
    >>> img = np.array([[3.0, 0.0], [0.0, 2.0]])
    >>> txt = np.array([[-1.0, 0.0], [0.0, -5.0]])
    >>> mean_img, mean_txt = modality_means(img, txt)
    >>> mean_img, mean_txt
    (array([0.5, 0.5]), array([-0.5, -0.5]))
    >>> bool(np.isclose(np.linalg.norm(mean_img - mean_txt), l2m(img, txt)))
    True
    """
    x, ix, y, iy = _rows_pair(img, txt, "embeddings", 2)
    return unit_sum(x, ix) / x.shape[0], unit_sum(y, iy) / y.shape[0]


def center(img, txt, *, fit=None, renormalise: bool = True):
    """C^3's collapse: subtract each modality's mean embedding from its unit-normalised rows, then
    renormalise. Returns ``(img_out, txt_out)`` in the inputs' backend and precision.

    ``fit=(img_fit, txt_fit)``: take the means from these rows instead of the inputs. With
    ``renormalise=False`` both outputs have mean 0 over the fitted rows, so the gap vector between them is 0.
    See the module's notes for the paper and code followed.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics import l2m
    >>> from gaplab.metrics.remedies import center
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> img_c, txt_c = center(img, txt, renormalise=False)
    >>> bool(np.allclose(img_c.mean(axis=0), 0) and np.allclose(txt_c.mean(axis=0), 0))
    True
    >>> img_c, txt_c = center(img, txt)  # renormalised: rows of length 1 again
    >>> np.linalg.norm(img_c, axis=1).round(12)
    array([1., 1., 1.])
    >>> l2m(img, txt) > 1.0 > l2m(img_c, txt_c)
    True
    """
    ux, uy, (mx, _), (my, _) = _prepare(img, txt, fit, with_std=False)
    return (
        _apply(ux, mx, None, renormalise, "image", "center"),
        _apply(uy, my, None, renormalise, "text", "center"),
    )


def standardise(img, txt, *, fit=None, renormalise: bool = True):
    """I0T's post-hoc standardisation: per modality, subtract the mean of the unit-normalised rows and divide
    each dimension by their standard deviation (ddof = 0), then renormalise. Returns ``(img_out, txt_out)``
    in the inputs' backend and precision.

    ``fit=(img_fit, txt_fit)``: take the means and deviations from these rows instead. A dimension whose
    deviation is below :data:`ZERO_STD` in the fitted rows of a modality raises ValueError, naming how many
    there are. See the module's notes for where the book's version differs from the authors' code.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.remedies import ZERO_STD, standardise
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> img_s, txt_s = standardise(img, txt, renormalise=False)
    >>> img_s.mean(axis=0).round(12) + 0, img_s.std(axis=0).round(12)
    (array([0., 0.]), array([1., 1.]))
    >>> standardise(img, [[0.0, 1.0], [0.0, -1.0]])  # every text has 0 in dimension 0
    Traceback (most recent call last):
    ...
    ValueError: standardise: 1 of the 2 dimensions of the text embeddings have zero variance (first: dimension 0); the standard deviation to divide by is zero
    >>> ZERO_STD  # a deviation below this counts as none
    1e-12
    """
    ux, uy, (mx, sx), (my, sy) = _prepare(img, txt, fit, with_std=True)
    source = "embeddings" if fit is None else "fit embeddings"
    for side, std in (("image", sx), ("text", sy)):
        flat = np.nonzero(std < ZERO_STD)[0]
        if flat.size:
            raise ValueError(
                f"standardise: {flat.size} of the {std.size} dimensions of the {side} {source} have zero "
                f"variance (first: dimension {flat[0]}); the standard deviation to divide by is zero"
            )
    return (
        _apply(ux, mx, sx, renormalise, "image", "standardise"),
        _apply(uy, my, sy, renormalise, "text", "standardise"),
    )


def remove_gap_vector(img, txt, *, fit=None, renormalise: bool = True):
    """Move each modality half the gap vector towards the other: with ``delta`` the image mean minus the text
    mean (of unit rows), images become ``u - delta / 2`` and texts ``u + delta / 2``, then renormalised.
    Returns ``(img_out, txt_out)`` in the inputs' backend and precision.

    Liang et al.'s (2022) shift at ``lam = 1/2`` (:func:`gaplab.metrics.geometry.shift_along_gap`); with
    ``renormalise=False`` the two modalities' means coincide (at the midpoint of the fitted means). Unlike
    :func:`center`, it keeps what the two means share.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.remedies import remove_gap_vector
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> img_r, txt_r = remove_gap_vector(img, txt, renormalise=False)
    >>> bool(np.allclose(img_r.mean(axis=0), txt_r.mean(axis=0)))
    True
    """
    ux, uy, (mx, _), (my, _) = _prepare(img, txt, fit, with_std=False)
    half = (mx - my) / 2.0
    return (
        _apply(ux, half, None, renormalise, "image", "remove_gap_vector"),
        _apply(uy, -half, None, renormalise, "text", "remove_gap_vector"),
    )


def _covariance(u, mean: np.ndarray) -> np.ndarray:
    """The (d, d) population covariance of the rows, float64 numpy (the small matrix leaves the device)."""
    if is_tensor(u):
        c = u.double() - _like(mean, u.double())
        return (c.T @ c / u.shape[0]).cpu().numpy()
    c = u.astype(np.float64) - mean
    return c.T @ c / u.shape[0]


def gap_statistics(img, txt, *, variance: float = VARIANCE_SHARE) -> dict:
    """Where the gap vector lies: its length and the share of it inside each modality's principal subspace.

    C^3 (Zhang et al., 2024) describes the difference of a matched pair as a constant gap vector orthogonal
    to both modalities' spans plus noise (their ``e_x - e_y = c_perp + eps``). This measures how far that
    holds for given embeddings. For each modality, the
    principal subspace is spanned by the fewest principal directions of its centred unit rows that explain at
    least ``variance`` of its variance (``rank`` of them); the share is the part of the gap vector's squared
    length inside that subspace, in [0, 1]. Near 0: the gap points away from everything the modality varies
    along; ``chance = rank / d`` is the share a direction drawn uniformly at random would have on average.

    Returns ``{"gap_norm", "variance", "image_rank", "image_share", "image_chance", "text_rank",
    "text_share", "text_chance"}``. ``gap_norm`` is L2M. When the two means coincide there is no gap to
    place and both shares are NaN; a modality whose rows all coincide has rank 0 and share 0.

    Examples
    --------
    Images spread along axis 0, texts along axis 1, the gap along axis 2:

    >>> import numpy as np
    >>> from gaplab.metrics.remedies import VARIANCE_SHARE, gap_statistics
    >>> s = np.array([-0.5, 0.5, -0.3, 0.3])
    >>> img = np.stack([s, 0 * s, 0 * s + 1.0], axis=1)
    >>> txt = np.stack([0 * s, s, 0 * s - 1.0], axis=1)
    >>> stats = gap_statistics(img, txt)
    >>> stats["image_rank"], stats["text_rank"], stats["image_chance"]
    (1, 1, 0.3333333333333333)
    >>> round(stats["image_share"], 12), round(stats["text_share"], 12)
    (0.0, 0.0)
    >>> stats["variance"] == VARIANCE_SHARE  # the default share of each modality's variance kept
    True
    """
    if isinstance(variance, bool) or not isinstance(
        variance, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"variance must be a number in (0, 1]; got {variance!r}")
    if not (math.isfinite(variance) and 0.0 < variance <= 1.0):
        raise ValueError(f"variance must lie in (0, 1]; got {variance}")
    x, ix, y, iy = _rows_pair(img, txt, "embeddings", 2)
    ux, uy = _unit(x, ix), _unit(y, iy)
    (mx, _), (my, _) = _column_stats(ux, False), _column_stats(uy, False)
    gap = mx - my
    norm = float(np.linalg.norm(gap))
    out: dict = {"gap_norm": norm, "variance": float(variance)}
    for side, u, mean in (("image", ux, mx), ("text", uy, my)):
        values, vectors = np.linalg.eigh(_covariance(u, mean))
        values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
        total = values.sum()
        # rounding can leave the full sum a hair below `variance` = 1
        rank = (
            int(np.argmax(np.cumsum(values) / total >= variance - 1e-12)) + 1
            if total > 0
            else 0
        )
        inside = float(np.sum((vectors[:, :rank].T @ gap) ** 2))
        out[f"{side}_rank"] = rank
        out[f"{side}_share"] = inside / norm**2 if norm > 0 else float("nan")
        out[f"{side}_chance"] = rank / len(gap)
    return out
