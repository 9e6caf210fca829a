"""Rank correlation across models, with the significance test Schrodi et al. (2025) use.

Their cross-model tables (gap against performance; object bias against attribute accuracy) report Kendall's
tau (``scipy.stats.kendalltau``, tau-b) and mark it significant when a permutation test over the pairings,
``scipy.stats.permutation_test(..., permutation_type="pairings")`` with SciPy's default 9,999 resamples, gives
p < 0.05 (analysis/gap_vs_performance.py in lmb-freiburg/two-effects-one-trigger). SciPy tries every pairing
only when ``n_resamples >= n!`` (its documentation of ``permutation_test``), so with those defaults their test
is exact up to 7 models and resampled above.

:func:`kendall` computes the same two-sided p-value, exactly wherever it can:

- without ties, over all n! pairings at any n, by counting them (the number of pairings with a given number of
  discordant pairs is a Mahonian number);
- with ties, by scoring every pairing, up to ``max_enumerated`` models (10 by default: 3,628,800 pairings in a
  few seconds on one core);
- otherwise from ``n_resamples`` random pairings, as SciPy does, with the Monte-Carlo standard error.

:attr:`KendallResult.method` says which was done, in words a page can print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

__all__ = ["KendallResult", "kendall", "kendall_by_group", "mahonian"]

#: pairings scored per batch when resampling (memory stays near 10 MB at n = 20)
_BATCH = 50_000
#: the most models whose pairings are all scored: 10 take about 1 s on one core (3,628,800 pairings, 36 MB),
#: 11 would take eleven times as long and 0.45 GB
_MAX_ENUMERATED = 10


@dataclass(frozen=True)
class KendallResult:
    """What :func:`kendall` returns: tau-b, its permutation p-value and how that p-value was found.

    Examples
    --------
    >>> from gaplab.metrics.correlation import KendallResult
    >>> result = KendallResult(tau=-0.8667, p=0.0167, n=6, exact=True, n_pairings=720, se=0.0)
    >>> result.significant
    True
    >>> result.method
    'exact over all 720 pairings'
    >>> KendallResult(tau=0.64, p=0.135, n=6, n_pairings=2000, se=0.0076).method
    'from 2,000 resamples, MC s.e. 0.0076'
    """

    tau: float
    #: two-sided permutation p-value (nan when tau is undefined)
    p: float
    n: int
    #: True when p counts every one of the n! pairings
    exact: bool = False
    #: pairings the p-value rests on: n! when exact, else the number of random resamples
    n_pairings: int = 0
    #: Monte-Carlo standard error sqrt(p (1 - p) / R) of a resampled p; 0 when exact, nan when undefined
    se: float = float("nan")

    @property
    def significant(self) -> bool:
        return bool(self.p < 0.05)

    @property
    def method(self) -> str:
        """How p was found, e.g. "exact over all 3,628,800 pairings" or "from 99,999 resamples, MC s.e. 0.001"."""
        if math.isnan(self.p):
            return "undefined (one variable is constant)"
        if self.exact:
            return f"exact over all {self.n_pairings:,} pairings"
        return f"from {self.n_pairings:,} resamples, MC s.e. {self.se:.3g}"


def _vector(v, name: str) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be one value per model (1-D); got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value}")
    return int(value)


@lru_cache(maxsize=64)
def mahonian(n: int) -> tuple[int, ...]:
    """How many permutations of n items have exactly d inversions, for d = 0 .. n(n-1)/2 (exact integers).

    Built one item at a time: the new item adds 0 .. m inversions to a permutation of m items.

    Examples
    --------
    >>> from gaplab.metrics.correlation import mahonian
    >>> mahonian(3)  # 123; 213, 132; 231, 312; 321
    (1, 2, 2, 1)
    >>> mahonian(4)
    (1, 3, 5, 6, 5, 3, 1)
    """
    counts = [1]
    for m in range(1, n):
        longer = [0] * (len(counts) + m)
        for d, c in enumerate(counts):
            for extra in range(m + 1):
                longer[d + extra] += c
        counts = longer
    return tuple(counts)


def _signs(v: np.ndarray) -> np.ndarray:
    return np.sign(v[:, None] - v[None, :]).astype(np.int8)


def _scores(perms: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """S = sum over i < j of sign(x_i - x_j) sign(y_p(i) - y_p(j)) for each row p of ``perms``.

    tau-b of a pairing is S over sqrt((n0 - ties in x) (n0 - ties in y)); re-pairing changes neither tie count,
    so S orders the pairings as tau-b does, and in integers no two equal scores can differ by rounding."""
    n = sx.shape[0]
    flat = sy.reshape(-1)
    total = np.zeros(len(perms), dtype=np.int32)
    for i in range(n - 1):
        left = perms[:, i].astype(np.int32) * n
        for j in range(i + 1, n):
            if sx[i, j]:
                total += sx[i, j] * flat[left + perms[:, j]]
    return total


def _all_permutations(n: int) -> np.ndarray:
    """Every permutation of range(n) as rows (n! x n, int8), built by inserting item m into each place."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for m in range(n):
        rows = []
        for place in range(m + 1):
            new = np.full((len(perms), m + 1), m, dtype=np.int8)
            new[:, :place] = perms[:, :place]
            new[:, place + 1 :] = perms[:, place:]
            rows.append(new)
        perms = np.concatenate(rows)
    return perms


def _two_sided(at_most: int, at_least: int, total: int, adjustment: int) -> float:
    # SciPy's two-sided p: twice the smaller tail, capped at 1; a resampled tail counts the observed pairing
    tail = min(at_most, at_least) + adjustment
    return min(1.0, 2.0 * tail / (total + adjustment))


def _p_mahonian(s_obs: int, n: int) -> float:
    n0 = n * (n - 1) // 2
    counts = mahonian(n)
    # without ties S = n0 - 2 * (discordant pairs), and the discordant pairs of a random pairing are the
    # inversions of a random permutation
    d_obs = (n0 - s_obs) // 2
    at_least = sum(counts[: d_obs + 1])  # S >= s_obs
    at_most = sum(counts[d_obs:])  # S <= s_obs
    return _two_sided(at_most, at_least, math.factorial(n), 0)


def _p_enumerated(s_obs: int, sx, sy) -> float:
    n = sx.shape[0]
    perms = _all_permutations(n)
    at_most = at_least = 0
    for start in range(0, len(perms), 20 * _BATCH):
        s = _scores(perms[start : start + 20 * _BATCH], sx, sy)
        at_most += int(np.count_nonzero(s <= s_obs))
        at_least += int(np.count_nonzero(s >= s_obs))
    return _two_sided(at_most, at_least, len(perms), 0)


def _p_resampled(s_obs: int, sx, sy, n_resamples: int, seed: int) -> float:
    n = sx.shape[0]
    rng = np.random.default_rng(seed)
    at_most = at_least = 0
    for start in range(0, n_resamples, _BATCH):
        size = min(_BATCH, n_resamples - start)
        perms = rng.permuted(np.tile(np.arange(n, dtype=np.int8), (size, 1)), axis=1)
        s = _scores(perms, sx, sy)
        at_most += int(np.count_nonzero(s <= s_obs))
        at_least += int(np.count_nonzero(s >= s_obs))
    return _two_sided(at_most, at_least, n_resamples, 1)


def kendall(
    x,
    y,
    *,
    n_resamples: int = 99_999,
    seed: int = 0,
    max_enumerated: int = 10,
) -> KendallResult:
    """Kendall's tau-b of ``x`` against ``y`` with a two-sided permutation p-value (pairings of y against x).

    p is exact (every pairing counted) when neither variable has ties, or when there are ties and at most
    ``max_enumerated`` models; otherwise it comes from ``n_resamples`` random pairings drawn with ``seed``, and
    the result carries its Monte-Carlo standard error. Either way it is the p-value SciPy's
    ``permutation_test(..., permutation_type="pairings")`` defines for the same pairings.

    Examples
    --------
    Six models' gap against their accuracy; no ties, so p counts all 720 pairings:

    >>> from gaplab.metrics.correlation import kendall
    >>> gap = [0.31, 0.42, 0.38, 0.55, 0.47, 0.60]
    >>> accuracy = [0.71, 0.64, 0.69, 0.52, 0.58, 0.55]
    >>> result = kendall(gap, accuracy)
    >>> round(result.tau, 4), round(result.p, 4), result.significant
    (-0.8667, 0.0167, True)
    >>> result.method
    'exact over all 720 pairings'

    With ties and more than ``max_enumerated`` models, p comes from random pairings:

    >>> result = kendall([1, 2, 2, 3, 4, 5], [2, 1, 3, 3, 5, 4], max_enumerated=5, n_resamples=2000)
    >>> round(result.tau, 4), result.exact, result.n_pairings
    (0.6429, False, 2000)
    >>> kendall([1, 1, 1], [1, 2, 3]).method
    'undefined (one variable is constant)'
    """
    n_resamples = _positive_int(n_resamples, "n_resamples")
    max_enumerated = _positive_int(max_enumerated, "max_enumerated")
    if max_enumerated > _MAX_ENUMERATED:
        raise ValueError(
            f"max_enumerated can be at most {_MAX_ENUMERATED} (11 models would hold "
            f"{math.factorial(11):,} pairings, about 0.45 GB); got {max_enumerated}"
        )
    a, b = _vector(x, "x"), _vector(y, "y")
    if a.shape != b.shape:
        raise ValueError(
            f"x and y must have one value per model each; got {a.size} and {b.size}"
        )
    n = int(a.size)
    if n < 3:
        raise ValueError(f"a rank correlation needs at least 3 models; got {n}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return KendallResult(float("nan"), float("nan"), n)
    tau = float(stats.kendalltau(a, b).statistic)
    sx, sy = _signs(a), _signs(b)
    s_obs = int(np.triu(sx.astype(np.int32) * sy, k=1).sum())
    ties = len(np.unique(a)) < n or len(np.unique(b)) < n
    if not ties:
        return KendallResult(
            tau, _p_mahonian(s_obs, n), n, True, math.factorial(n), 0.0
        )
    if n <= max_enumerated:
        p = _p_enumerated(s_obs, sx, sy)
        return KendallResult(tau, p, n, True, math.factorial(n), 0.0)
    p = _p_resampled(s_obs, sx, sy, n_resamples, seed)
    se = math.sqrt(p * (1.0 - p) / n_resamples)
    return KendallResult(tau, p, n, False, n_resamples, se)


def kendall_by_group(x, y, groups, *, min_size: int = 3, **kwargs) -> dict:
    """:func:`kendall` within each group of models (the paper conditions on the training data set); groups
    with fewer than ``min_size`` models are left out.

    Examples
    --------
    >>> from gaplab.metrics.correlation import kendall_by_group
    >>> gap = [0.31, 0.42, 0.38, 0.55, 0.47, 0.60, 0.50]
    >>> accuracy = [0.71, 0.64, 0.69, 0.52, 0.58, 0.55, 0.60]
    >>> data = ["laion", "laion", "laion", "cc12m", "cc12m", "cc12m", "yfcc"]
    >>> by_data = kendall_by_group(gap, accuracy, data)
    >>> {name: round(r.tau, 4) for name, r in by_data.items()}  # yfcc has one model: left out
    {'cc12m': -0.3333, 'laion': -1.0}
    >>> round(by_data["laion"].p, 4)
    0.3333
    """
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
