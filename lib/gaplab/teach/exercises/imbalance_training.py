"""Self-checks of the exercises of the chapter imbalance_training."""

import numbers

import numpy as np

from gaplab.experiments import imbalance
from gaplab.teach.selfcheck import Exercise


def _rho_without(ns) -> dict:
    """k -> Spearman of the other ks with their seed-mean RMG."""
    rmg = ns["table"].groupby("k")["rmg"].mean()
    ks = [int(k) for k in rmg.index]
    return {
        drop: imbalance.spearman(
            [k for k in ks if k != drop], rmg.drop(drop).to_numpy()
        )
        for drop in ks
    }


def _drop_one_k(answer, ns) -> bool:
    try:
        k, rho = answer
    except (TypeError, ValueError):
        raise ValueError("store a pair: (the k you drop, the Spearman without it)")
    rhos = _rho_without(ns)
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or k not in rhos:
        raise ValueError(f"the k you drop should be one of {sorted(rhos)}")
    if isinstance(rho, (str, bool)) or not np.isfinite(float(rho)):
        raise ValueError("the Spearman correlation should be a finite number")
    best = min(rhos.values())
    mine = rhos[int(k)]
    return bool(mine <= best + 1e-9 and np.isclose(float(rho), mine, atol=1e-6))


def _within_two_std(ns) -> set:
    summary = imbalance.by_k(ns["table"])
    mean = summary.xs("mean", axis=1, level=1)
    std = summary.xs("std", axis=1, level=1)
    d = mean.iloc[-1] - mean.iloc[-2]
    s = std.iloc[-2:].max()
    return {str(name) for name in mean.columns if abs(d[name]) < 2 * s[name]}


def _metrics_within_noise(answer, ns) -> bool:
    names = [answer] if isinstance(answer, str) else answer
    if not isinstance(names, (list, tuple, set)) or not all(
        isinstance(n, str) for n in names
    ):
        raise ValueError("store a list of metric names (strings)")
    known = set(imbalance.SUMMARY_METRICS)
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(
            f"{unknown} are not metrics of the table; choose from {sorted(known)}"
        )
    return set(names) == _within_two_std(ns)


EXERCISES = [
    Exercise(
        "imbalance_training-ex1",
        variable="drop_k_and_rho",
        task="(the k you drop, Spearman of the other ks with their mean RMG).",
        accept=_drop_one_k,
        hint="try each k in turn: leave its point out and compute `imbalance.spearman` "
        'of the other ks with `mean["rmg"]` at those ks; the trend falls with k.',
        worked="ks_all = list(imbalance.IMBALANCE_KS)\n"
        "rhos = {}\n"
        "for drop in ks_all:\n"
        "    rest = [kk for kk in ks_all if kk != drop]\n"
        '    rhos[drop] = imbalance.spearman(rest, mean["rmg"].loc[rest])\n'
        "best = min(rhos, key=rhos.get)\n"
        "drop_k_and_rho = (best, rhos[best])",
    ),
    Exercise(
        "imbalance_training-ex2",
        variable="within_noise",
        task="columns of `mean` whose k = 4 to 5 change is < 2 seed std, as a list.",
        accept=_metrics_within_noise,
        hint="take the difference of the last two rows of `mean`, and compare its size "
        "with twice the larger of the two seed standard deviations of each column.",
        worked='std = summary.xs("std", axis=1, level=1)\n'
        "d = mean.iloc[-1] - mean.iloc[-2]\n"
        "s = std.iloc[-2:].max()\n"
        "within_noise = [name for name in mean.columns if abs(d[name]) < 2 * s[name]]",
    ),
]
