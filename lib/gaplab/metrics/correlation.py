"""Rank correlation across models, with the significance test Schrodi et al. (2025) use.

Their cross-model tables (gap against performance; object bias against attribute accuracy) report Kendall's
tau (``scipy.stats.kendalltau``, tau-b) and mark it significant when a permutation test over the pairings,
``scipy.stats.permutation_test(..., permutation_type="pairings")``, gives p < 0.05
(analysis/gap_vs_performance.py in lmb-freiburg/two-effects-one-trigger). Fewer than nine models are tested
exactly (all pairings), more by resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["KendallResult", "kendall", "kendall_by_group"]


@dataclass(frozen=True)
class KendallResult:
    tau: float
    #: two-sided permutation p-value (nan when tau is undefined)
    p: float
    n: int

    @property
    def significant(self) -> bool:
        return bool(self.p < 0.05)


def _vector(v, name: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be one value per model (1-D); got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _seeded(seed: int) -> dict:
    # scipy 1.15 renamed random_state to rng; Colab's scipy may be older
    import inspect

    name = (
        "rng"
        if "rng" in inspect.signature(stats.permutation_test).parameters
        else "random_state"
    )
    return {name: np.random.default_rng(seed)}


def _tau_b(x_batch: np.ndarray, sy: np.ndarray, ties_y: float) -> np.ndarray:
    """Kendall's tau-b of each row of ``x_batch`` (..., n) against a fixed y given by its sign matrix ``sy``.

    tau-b = (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y)) over the n0 = n(n-1)/2 pairs;
    the same number as scipy.stats.kendalltau, for a whole batch of permutations at once.
    """
    n = x_batch.shape[-1]
    sx = np.sign(x_batch[..., :, None] - x_batch[..., None, :])
    n0 = n * (n - 1) / 2
    ties_x = ((sx == 0).sum(axis=(-1, -2)) - n) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx * sy).sum(axis=(-1, -2)) / 2 / np.sqrt((n0 - ties_x) * (n0 - ties_y))


def kendall(x, y, *, n_resamples: int = 9999, seed: int = 0) -> KendallResult:
    """Kendall's tau-b of ``x`` against ``y`` with a permutation p-value (pairings of y shuffled against x).

    The permutations are scored in batches (every pairing scored as scipy.stats.kendalltau scores it), so ten
    thousand resamples take milliseconds rather than a scipy call each."""
    a, b = _vector(x, "x"), _vector(y, "y")
    if a.shape != b.shape:
        raise ValueError(
            f"x and y must have one value per model each; got {a.size} and {b.size}"
        )
    if a.size < 3:
        raise ValueError(f"a rank correlation needs at least 3 models; got {a.size}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return KendallResult(float("nan"), float("nan"), int(a.size))
    tau = float(stats.kendalltau(a, b).statistic)
    sy = np.sign(b[:, None] - b[None, :])
    ties_y = ((sy == 0).sum() - b.size) / 2
    test = stats.permutation_test(
        (a,),
        lambda u, axis=-1: _tau_b(np.moveaxis(u, axis, -1), sy, ties_y),
        permutation_type="pairings",
        vectorized=True,
        batch=2000,
        n_resamples=n_resamples,
        alternative="two-sided",
        **_seeded(seed),
    )
    return KendallResult(tau, float(test.pvalue), int(a.size))


def kendall_by_group(x, y, groups, *, min_size: int = 3, **kwargs) -> dict:
    """:func:`kendall` within each group of models (the paper conditions on the training data set); groups
    with fewer than ``min_size`` models are left out."""
    a, b = _vector(x, "x"), _vector(y, "y")
    g = np.asarray(groups)
    if g.shape != a.shape or a.shape != b.shape:
        raise ValueError("x, y and groups must have one entry per model each")
    out = {}
    for value in sorted(set(g.tolist()), key=str):
        mask = g == value
        if mask.sum() >= min_size:
            out[value] = kendall(a[mask], b[mask], **kwargs)
    return out
