"""The information-imbalance experiments of Schrodi et al. (2025) on MAD, shared by three chapters.

* :func:`imbalance_runs`: one model per number ``k`` of attributes in each caption (k = 0: the digit only,
  k = 5: everything the image shows) and per seed, all from the profile's MAD recipe;
* :func:`imbalance_table` / :func:`by_k`: their gap, object bias, entropy and zero-shot numbers, per run and
  as seed means with spread;
* :func:`finetune_experiment`: the entropy intervention. A model trained with little imbalance is fine-tuned
  on more imbalanced captions twice, once with its temperature frozen and once learnable;
* :func:`chapter_runs`: the runs each of the chapters this module serves trains (mad_training, object_bias,
  imbalance_training, entropy_link, closing_gap), under the names the run catalogue gives them.

Every run goes through :func:`gaplab.runs.get_or_train`, so the chapters share trained models through the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from gaplab.experiments.readout import run_summary
from gaplab.profiles import resolve_profile
from gaplab.runs import (
    get_or_train,
    get_or_train_all,
    mad_config,
    resolve_glyphs,
    run_key,
    store,
)
from gaplab.training.train import TrainResult

__all__ = [
    "IMBALANCE_KS",
    "SUMMARY_METRICS",
    "imbalance_config",
    "grid_configs",
    "imbalance_runs",
    "imbalance_table",
    "by_k",
    "spearman",
    "finetune_source_config",
    "finetune_configs",
    "finetune_experiment",
    "frozen_runs",
    "trends",
    "trend_table",
    "FROZEN_LOGIT_SCALE",
    "AwaitingRun",
    "finetune_runs",
    "chapter_runs",
]

IMBALANCE_KS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
#: the per-run numbers the chapters average over seeds
SUMMARY_METRICS = (
    "rmg",
    "l2m",
    "moad_img",
    "moad_txt",
    "entropy",
    "logit_scale",
    "object_acc",
    "attribute_acc",
)


def imbalance_config(profile="auto", k: int = 2, seed: int = 0, **overrides):
    """The MAD run with ``k`` attributes per caption: the profile's recipe, nothing else changed."""
    return mad_config(profile, k=k, seed=seed, **overrides)


def grid_configs(profile="auto", ks=IMBALANCE_KS, seeds=None, **overrides) -> dict:
    """``{(k, seed): config}`` of the imbalance grid, seed by seed (seeds default to the profile's
    ``imbalance_seeds``): what :func:`imbalance_runs` trains and :func:`chapter_runs` lists."""
    prof = resolve_profile(profile)
    seeds = tuple(range(prof.imbalance_seeds)) if seeds is None else tuple(seeds)
    return {
        (k, s): imbalance_config(prof, k, s, **overrides) for s in seeds for k in ks
    }


def imbalance_runs(
    profile="auto", ks=IMBALANCE_KS, seeds=None, *, progress: bool = True, **overrides
) -> dict[tuple[int, int], TrainResult]:
    """``{(k, seed): run}`` for every k and seed (seeds default to the profile's ``imbalance_seeds``)."""
    configs = grid_configs(profile, ks, seeds, **overrides)
    return get_or_train_all(configs, desc="imbalance runs", progress=progress)


def imbalance_table(runs: dict) -> pd.DataFrame:
    """One row per run with :func:`gaplab.experiments.readout.run_summary`'s numbers, sorted by k and seed."""
    rows = [run_summary(r) for r in runs.values()]
    return pd.DataFrame(rows).sort_values(["k", "seed"]).reset_index(drop=True)


def by_k(table: pd.DataFrame, metrics=SUMMARY_METRICS) -> pd.DataFrame:
    """Seed mean and standard deviation (ddof=1; NaN for one seed) of each metric, one row per k."""
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise ValueError(
            f"the table has no column {missing}; it has {list(table.columns)}"
        )
    g = table.groupby("k")[list(metrics)]
    mean, std = g.mean(), g.std(ddof=1)
    out = (
        pd.concat({"mean": mean, "std": std}, axis=1)
        .swaplevel(axis=1)
        .sort_index(axis=1, level=0)
    )
    out["n_seeds"] = table.groupby("k").size()
    return out


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (average ranks for ties)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 3:
        raise ValueError(
            f"spearman needs two 1-D sequences of equal length >= 3; got shapes {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("spearman got NaN or infinite values")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise ValueError("spearman is undefined when one sequence is constant")
    return float(stats.spearmanr(a, b).statistic)


#: the frozen recipe's logit scale: CLIP's initial 1/0.07, where the learnable recipe starts
FROZEN_LOGIT_SCALE = 1 / 0.07
#: the measures whose trend with k (Spearman of k with the seed means) the chapters report
TREND_METRICS = ("rmg", "l2m", "moad_img", "moad_txt", "entropy")


def frozen_runs(
    profile="auto", ks=IMBALANCE_KS, seeds=None, *, progress: bool = True
) -> dict[tuple[int, int], TrainResult]:
    """The imbalance grid with the temperature frozen at :data:`FROZEN_LOGIT_SCALE` (the learnable recipe's
    starting value), everything else as :func:`imbalance_runs`."""
    return imbalance_runs(
        profile, ks, seeds, progress=progress, temperature=FROZEN_LOGIT_SCALE
    )


def trends(summary: pd.DataFrame) -> dict[str, float]:
    """Spearman correlation of k with the seed mean of each of :data:`TREND_METRICS` (a :func:`by_k` table)."""
    ks = list(summary.index)
    mean = summary.xs("mean", axis=1, level=1)
    return {m: spearman(ks, mean[m]) for m in TREND_METRICS}


def trend_table(recipes: dict[str, dict]) -> pd.DataFrame:
    """``{recipe: trends(...)}`` as a table: one row per measure, one column per recipe."""
    return pd.DataFrame(recipes).rename_axis("Spearman of k with")


def finetune_source_config(profile="auto", k: int = 5, seed: int = 0):
    """The model the intervention starts from: the imbalance recipe at ``k``, except that its logit scale learns
    ``finetune_temperature_lr_mult`` times faster, so that the temperature has settled where this k wants it.
    (At the base rate it stays near its initial value in a short run; then freezing it would block nothing.)"""
    prof = resolve_profile(profile)
    return imbalance_config(
        prof, k, seed, temperature_lr_mult=prof.finetune_temperature_lr_mult
    )


def finetune_configs(
    profile="auto",
    *,
    source_scale: float,
    source_k: int = 5,
    target_k: int = 1,
    seed: int = 0,
    source=None,
) -> dict:
    """The intervention's runs: ``source`` (the imbalance run with ``source_k`` attributes), then ``frozen`` and
    ``learnable``, which start from its weights and train on captions with ``target_k`` attributes.

    The frozen run keeps the logit scale the source ended with (``source_scale``); the learnable one starts
    there. Both last the profile's ``finetune_steps``; in the learnable run the logit scale learns
    ``finetune_temperature_lr_mult`` times faster than the other weights, so that within a short run it can
    move as far as the data asks (at the base rate a few hundred steps move it by at most ~0.3 in log scale).
    ``source`` gives the source's configuration when it is already known (its glyphs resolved).
    """
    prof = resolve_profile(profile)
    if not (0 <= target_k < source_k <= 5):
        raise ValueError(
            f"fine-tuning must add imbalance: need 0 <= target_k < source_k <= 5; got {target_k}, {source_k}"
        )
    if source is None:
        source = resolve_glyphs(finetune_source_config(prof, source_k, seed))
    # by key, not by path: the source may sit in a course's read-only cache or in the student's own
    common = dict(
        k=target_k,
        seed=seed,
        init_from=f"run:{run_key(source)}",
        steps=prof.finetune_steps,
        warmup=max(1, prof.finetune_steps // 10),
        eval_every=max(1, prof.finetune_steps // 8),
    )
    return {
        "source": source,
        "frozen": imbalance_config(
            prof, temperature=round(float(source_scale), 6), **common
        ),
        "learnable": imbalance_config(
            prof,
            temperature="learnable",
            temperature_lr_mult=prof.finetune_temperature_lr_mult,
            **common,
        ),
    }


def finetune_experiment(
    profile="auto",
    *,
    source_k: int = 5,
    target_k: int = 1,
    seed: int = 0,
    progress: bool = True,
    load=None,
) -> dict:
    """Run (or load) the intervention. Returns the runs and, per arm, the gap and entropy before and after.

    ``load(config)`` gets each run (default: :func:`gaplab.runs.get_or_train`); a caller that must not train,
    such as an exercise's self-check, passes a loader that only reads the cache.

    "Before" is the source model measured on the fine-tuning captions (step 0 of the fine-tuning run), so a
    change is what fine-tuning did, not what the new captions did to the measurement.
    """
    if load is None:

        def load(config):
            return get_or_train(config, progress=progress)

    source = load(resolve_glyphs(finetune_source_config(profile, source_k, seed)))
    scale = float(source.history[-1]["logit_scale"])
    cfgs = finetune_configs(
        profile, source_scale=scale, source_k=source_k, target_k=target_k, seed=seed
    )
    out = {"source": source, "source_logit_scale": scale}
    for arm in ("frozen", "learnable"):
        run = load(cfgs[arm])
        before, after = run.history[0], run.history[-1]
        out[arm] = run
        for name in ("rmg", "l2m", "entropy", "logit_scale"):
            out[f"{arm}_{name}_before"] = float(before[name])
            out[f"{arm}_{name}_after"] = float(after[name])
            out[f"{arm}_{name}_change"] = float(after[name] - before[name])
    return out


@dataclass(frozen=True)
class AwaitingRun:
    """A run whose configuration needs another run's result: known once the run ``key`` is stored (the frozen
    fine-tuning arm keeps the logit scale its source ended with)."""

    key: str


def _stored_logit_scale(key: str) -> float | None:
    """The logit scale the stored run ``key`` ended with, or None while it is not in the cache."""
    final = store.find_final(key)
    if final is None:
        return None
    return (store.read_meta(final.parent) or {}).get("summary", {}).get("logit_scale")


def finetune_runs(profile="auto", *, resolve=resolve_glyphs) -> dict:
    """The entropy chapter's fine-tuning runs by name: the source (k = 5) and both arms (k = 5 -> 1). The frozen
    arm is an :class:`AwaitingRun` until the source is stored; the learnable arm does not depend on the source's
    scale. ``resolve`` turns the source's ``glyphs="auto"`` into the source training would use."""
    source = resolve(finetune_source_config(profile, 5, 0))
    scale = _stored_logit_scale(run_key(source))
    cfgs = finetune_configs(
        profile,
        source_scale=scale if scale is not None else 1.0,
        source_k=5,
        target_k=1,
        source=source,
    )
    frozen = cfgs["frozen"] if scale is not None else AwaitingRun(run_key(source))
    return {
        "fine-tuning source k=5": source,
        "fine-tuning frozen k=5->1": frozen,
        "fine-tuning learnable k=5->1": cfgs["learnable"],
    }


def _named(grid: dict, suffix: str = "") -> dict:
    return {f"k={k} seed {s}{suffix}": cfg for (k, s), cfg in grid.items()}


def chapter_runs(
    profile="auto", chapter="imbalance_training", *, resolve=resolve_glyphs
):
    """``{name: config}`` of every run ``chapter`` trains at ``profile``, built by the functions the chapter
    calls: mad_training's one run, object_bias's grid at seed 0 and its colour run, and the full grid of
    imbalance_training (with the frozen-temperature grid where the profile has that recipe), entropy_link (with
    :func:`finetune_runs`) and closing_gap."""
    prof = resolve_profile(profile)
    if chapter == "mad_training":
        return {"k=2 seed 0": imbalance_config(prof, 2, 0)}
    if chapter == "object_bias":
        return {
            **_named(grid_configs(prof, seeds=(0,))),
            "colour as the object, k=2": imbalance_config(
                prof, 2, 0, object_factor="color"
            ),
        }
    if chapter not in ("imbalance_training", "entropy_link", "closing_gap"):
        raise ValueError(f"the imbalance experiments train no runs for {chapter!r}")
    out = _named(grid_configs(prof))
    if chapter == "imbalance_training" and prof.imbalance_frozen_recipe:
        frozen = grid_configs(prof, temperature=FROZEN_LOGIT_SCALE)
        out.update(_named(frozen, ", temperature frozen"))
    if chapter == "entropy_link":
        out.update(finetune_runs(prof, resolve=resolve))
    return out
