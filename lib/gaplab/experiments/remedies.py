"""Remedies of the modality gap proposed after the three papers, measured on one testbed: MAD, where the
information imbalance is a knob (``k``, the attributes each caption names).

Two kinds of remedy:

* **training-time** (:data:`TRAINING_REMEDIES`): a MAD run of the profile's recipe with one option of the trainer
  changed (a temperature schedule, a fixed temperature, the softplus temperature, modality swapping, SigLIP's
  sigmoid loss, a normalisation layer per encoder, Fahim et al.'s uniformity and alignment terms), beside the
  plain CLIP run of the same ``k`` and seed, which the imbalance chapters train anyway;
* **post-hoc** (:data:`POSTHOC_REMEDIES`): a map of :mod:`gaplab.metrics.remedies` applied to the plain run's
  held-out embeddings, fitted on those embeddings, and to its zero-shot prompts with the statistics of its
  texts, so that images and every text live in the same remedied space.

Every row of :func:`remedy_table` carries the same measures (:data:`MEASURES`), computed the same way from
embeddings by :func:`embedding_measures`: the gap (L2M, RMG), the entropy of the logits at the run's logit scale,
zero-shot object and attribute accuracy, retrieval R@1 in both directions, MOAD on both sides and the multimodal
arithmetic score. :func:`entropy_prediction` tests the book's own prediction across the training-time remedies:
if the gap is one of the model's ways of setting the entropy of its logits (Schrodi et al. 2025, abstract), a
remedy that moves the gap must move the entropy (or the temperature) with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch
from scipy import stats

from gaplab import metrics as M
from gaplab.data.embeddings import EMBEDDING_MODELS, load_embeddings
from gaplab.data.mad import FACTORS
from gaplab.experiments.arithmetic import ATTRIBUTES
from gaplab.experiments.organisation import class_text
from gaplab.metrics import remedies as R
from gaplab.metrics.arithmetic import arithmetic_accuracy
from gaplab.profiles import resolve_profile
from gaplab.runs import get_or_train_all, mad_config, resolve_glyphs
from gaplab.training.evaluate import eval_set
from gaplab.training.tokenizer import MADTokenizer
from gaplab.training.train import TrainResult

__all__ = [
    "PLAIN",
    "slug",
    "TRAINING_REMEDIES",
    "POSTHOC_REMEDIES",
    "SETTINGS",
    "MEASURES",
    "remedy_config",
    "remedy_configs",
    "remedy_runs",
    "caption_pairs",
    "embedding_measures",
    "run_measures",
    "remedy_table",
    "remedy_summary",
    "changes",
    "entropy_prediction",
    "best_for",
    "real_posthoc_table",
    "chapter_runs",
]

#: the baseline every remedy is compared with: the profile's MAD recipe, CLIP's loss, learnable temperature
PLAIN = "CLIP (plain)"
#: label -> TrainConfig overrides of each training-time remedy (settings and sources: :data:`SETTINGS`)
TRAINING_REMEDIES: dict[str, dict] = {
    PLAIN: {},
    "temperature schedule": {"temperature": 100.0, "temperature_end": 20.0},
    "fixed temperature": {"temperature": 20.0},
    "softplus temperature": {"temperature_param": "softplus"},
    "modality swapping": {"swap_prob": 0.5, "swap_mode": "hard"},
    "sigmoid loss": {"loss": "sigmoid"},
    "normalisation layer": {"embed_norm": True},
    "uniformity + alignment": {"uniformity_weight": 1.0, "alignment_weight": 1.0},
}
#: label -> function of (img, txt, fit=...) of each post-hoc remedy (:mod:`gaplab.metrics.remedies`)
POSTHOC_REMEDIES: dict[str, Callable] = {
    "mean subtraction": R.center,
    "standardisation": R.standardise,
    "gap vector": R.remove_gap_vector,
}
#: label -> (paper, the setting as the book runs it, where the setting comes from)
SETTINGS: dict[str, tuple[str, str, str]] = {
    PLAIN: (
        "Radford et al. 2021",
        "softmax loss both ways, logit scale learned from 1/0.07",
        "the book's recipe",
    ),
    "temperature schedule": (
        "Yaras et al. 2025",
        "temperature 0.01 -> 0.05 linearly over the run (logit scale 100 -> 20)",
        "the scheduling rows of their Table 2 (end values 0.02-0.05; the book takes 0.05)",
    ),
    "fixed temperature": (
        "Yaras et al. 2025",
        "temperature frozen at 0.05 (logit scale 20), the schedule's end value from the start",
        "the book's control for the schedule: same end value, no schedule",
    ),
    "softplus temperature": (
        "Yaras et al. 2025",
        "logit scale = softplus(v), learned, from 1/0.07",
        "the softplus row of their Table 2",
    ),
    "modality swapping": (
        "Yaras et al. 2025",
        "hard swapping: half the steps exchange each embedding entry with probability 1/2",
        "hard swapping of their Table 2 (rate 1e-3 on MSCOCO) and Table 5 (rates up to 1); "
        "0.5 is the book's choice for a 400-step run",
    ),
    "sigmoid loss": (
        "Zhai et al. 2023",
        "open_clip's SigLipLoss, logit scale 10 and bias -10 at the start, both learned",
        "Sec. 3.2 and Algorithm 1 of SigLIP",
    ),
    "normalisation layer": (
        "An et al. 2025",
        "BatchNorm1d after each encoder's projection, trained from the start",
        "I0T's trainable variant (the authors' bn_final layers); I0T fine-tunes it on a pretrained CLIP",
    ),
    "uniformity + alignment": (
        "Fahim et al. 2024",
        "CLIP loss + in-modality uniformity + alignment, weights 1",
        "their CUA loss, as in the contrastive-gap chapter",
    ),
    "mean subtraction": (
        "Zhang et al. 2024 (C^3)",
        "each modality's mean subtracted, renormalised",
        "the collapse step",
    ),
    "standardisation": (
        "An et al. 2025 (I0T)",
        "each modality's mean subtracted, divided by its std, renormalised",
        "I0T_post",
    ),
    "gap vector": (
        "Liang et al. 2022",
        "each modality moved half the gap vector towards the other",
        "their shift at lambda 1/2",
    ),
}
#: the columns every row of :func:`remedy_table` measures
MEASURES = (
    "l2m",
    "rmg",
    "entropy",
    "logit_scale",
    "object_acc",
    "attribute_acc",
    "i2t_r1",
    "t2i_r1",
    "moad_img",
    "moad_txt",
    "arithmetic",
)


def slug(remedy: str) -> str:
    """A remedy's label as a name a glued value can carry: "CLIP (plain)" -> "CLIP_plain"."""
    out = re.sub(r"\W+", "_", remedy).strip("_")
    if not out:
        raise ValueError(f"{remedy!r} has no letters or digits to name it by")
    return out


def _check_remedy(remedy: str) -> str:
    if remedy not in TRAINING_REMEDIES:
        raise ValueError(
            f"unknown training-time remedy {remedy!r}; choose one of {', '.join(TRAINING_REMEDIES)}"
        )
    return remedy


def remedy_config(profile="auto", remedy: str = PLAIN, *, k: int = 1, seed: int = 0):
    """The MAD run of ``remedy`` at ``k`` and ``seed``: the profile's recipe with the remedy's overrides. The plain
    run is the imbalance grid's run of the same k and seed, so the cache shares it."""
    return mad_config(
        profile, k=k, seed=seed, **TRAINING_REMEDIES[_check_remedy(remedy)]
    )


def _grid(profile, ks, seeds):
    prof = resolve_profile(profile)
    ks = tuple(prof.remedy_ks) if ks is None else tuple(ks)
    seeds = tuple(range(prof.remedy_seeds)) if seeds is None else tuple(seeds)
    if not ks or not seeds:
        raise ValueError("give at least one k and one seed")
    return prof, ks, seeds


def remedy_configs(profile="auto", ks=None, seeds=None, remedies=None) -> dict:
    """``{(remedy, k, seed): config}`` for every training-time remedy (plain included), k and seed; ``ks`` and
    ``seeds`` default to the profile's ``remedy_ks`` and ``remedy_seeds``."""
    prof, ks, seeds = _grid(profile, ks, seeds)
    names = tuple(TRAINING_REMEDIES) if remedies is None else tuple(remedies)
    return {
        (r, k, s): remedy_config(prof, r, k=k, seed=s)
        for s in seeds
        for k in ks
        for r in names
    }


def remedy_runs(
    profile="auto", ks=None, seeds=None, *, remedies=None, progress: bool = True
) -> dict[tuple[str, int, int], TrainResult]:
    """``{(remedy, k, seed): run}``: :func:`remedy_configs`, trained or loaded from the run cache."""
    configs = remedy_configs(profile, ks, seeds, remedies)
    return get_or_train_all(configs, desc="remedy runs", progress=progress)


def caption_pairs(result: TrainResult) -> np.ndarray:
    """(P, 2) (image row, text row) of the held-out set whose captions are the same words.

    MAD captions repeat (at k = 1 a caption names a digit and one attribute value), and identical captions have
    identical embeddings, so retrieval that counts only a pair's own caption as right would count its twins as
    rivals tied with it. Any caption with the image's own words is a match instead."""
    cfg = result.config
    tokens = eval_set(cfg, MADTokenizer(), torch.device("cpu"))["tokens"].numpy()
    if len(tokens) != len(result.eval_image):
        raise ValueError(
            f"the run was evaluated on {len(result.eval_image)} pairs, its configuration draws {len(tokens)}"
        )
    _, group = np.unique(tokens, axis=0, return_inverse=True)
    group = group.reshape(-1)
    return np.argwhere(group[:, None] == group[None, :])


def _arithmetic(img, prompts: Mapping, labels: Mapping) -> float:
    """Mean over the attributes of the top-1 accuracy of "image + text(b) - text(a)" finding the same digit with
    value b (:func:`gaplab.metrics.arithmetic.arithmetic_accuracy`)."""
    scores = [
        arithmetic_accuracy(img, labels, a, prompts[a], keep=("digit",), ks=(1,))[
            "top-1"
        ]
        for a in ATTRIBUTES
    ]
    return float(np.mean(scores))


def embedding_measures(
    img,
    txt,
    prompts: Mapping,
    factors: Mapping,
    *,
    logit_scale: float,
    pairs=None,
    object_factor: str = "digit",
) -> dict[str, float]:
    """Every measure of :data:`MEASURES` from finished embeddings.

    ``img``/``txt``: the held-out pairs (rows match); ``prompts``: factor -> (values, d) zero-shot class
    embeddings; ``factors``: factor -> (n,) value codes of the images; ``logit_scale``: the scale the entropy is
    taken at; ``pairs``: which captions count as an image's own in retrieval (default: row i with row i)."""
    labels = {f: np.asarray(factors[f]).astype(np.int64) for f in FACTORS}
    attributes = [f for f in FACTORS if f != object_factor]
    acc = {f: M.zero_shot_accuracy(img, prompts[f], labels[f]) for f in FACTORS}
    attrs = np.stack([labels[a] for a in attributes], axis=1)
    out = {
        "l2m": M.l2m(img, txt),
        "rmg": M.rmg(img, txt),
        "entropy": M.logits_entropy(img, txt, logit_scale),
        "logit_scale": float(logit_scale),
        "object_acc": acc[object_factor],
        "attribute_acc": float(np.mean([acc[a] for a in attributes])),
        "i2t_r1": M.recall_at_k(img, txt, 1, "i2t", pairs=pairs),
        "t2i_r1": M.recall_at_k(img, txt, 1, "t2i", pairs=pairs),
        "moad_img": M.moad(img, labels[object_factor], attrs),
        "moad_txt": M.moad(txt, labels[object_factor], attrs),
        "arithmetic": _arithmetic(img, prompts, labels)
        if object_factor == "digit"
        else float("nan"),
    }
    return out


def _prompts(result: TrainResult) -> dict[str, np.ndarray]:
    return {f: np.asarray(class_text(result, f), dtype=np.float64) for f in FACTORS}


def run_measures(
    result: TrainResult, posthoc: str | None = None, *, pairs=None, prompts=None
) -> dict:
    """:func:`embedding_measures` of a run's held-out set, as trained or after the post-hoc remedy ``posthoc``
    (a key of :data:`POSTHOC_REMEDIES`), which is fitted on the held-out images and captions and moves the
    zero-shot prompts with the captions' statistics. The entropy is taken at the run's own logit scale.
    ``pairs`` (:func:`caption_pairs`) and ``prompts`` (factor -> class embeddings as trained) may be passed
    when already known: a run measured several ways encodes them once."""
    img = np.asarray(result.eval_image, dtype=np.float64)
    txt = np.asarray(result.eval_text, dtype=np.float64)
    if prompts is None:
        prompts = _prompts(result)
    if posthoc is not None:
        if posthoc not in POSTHOC_REMEDIES:
            raise ValueError(
                f"unknown post-hoc remedy {posthoc!r}; choose one of {', '.join(POSTHOC_REMEDIES)}"
            )
        remedy = POSTHOC_REMEDIES[posthoc]
        fit = (img, txt)
        prompts = {f: remedy(img, p, fit=fit)[1] for f, p in prompts.items()}
        img, txt = remedy(img, txt)
    if pairs is None:
        pairs = caption_pairs(result)
    return embedding_measures(
        img,
        txt,
        prompts,
        result.eval_factors,
        logit_scale=float(result.final["logit_scale"]),
        pairs=pairs,
        object_factor=result.config.object_factor,
    )


def remedy_table(runs: Mapping, *, posthoc=tuple(POSTHOC_REMEDIES)) -> pd.DataFrame:
    """One row per run of :func:`remedy_runs` (``kind`` "training") and, for each plain run, one per post-hoc
    remedy (``kind`` "post-hoc"), with the columns ``remedy``, ``kind``, ``k``, ``seed`` and :data:`MEASURES`."""
    rows = []
    for (remedy, k, seed), result in runs.items():
        known = {"pairs": caption_pairs(result), "prompts": _prompts(result)}
        base = {"remedy": remedy, "kind": "training", "k": k, "seed": seed}
        rows.append({**base, **run_measures(result, **known)})
        if remedy == PLAIN:
            for name in posthoc:
                measured = run_measures(result, name, **known)
                rows.append({**base, "remedy": name, "kind": "post-hoc", **measured})
    if not rows:
        raise ValueError("no runs to measure")
    order = {r: i for i, r in enumerate([*TRAINING_REMEDIES, *POSTHOC_REMEDIES])}
    table = pd.DataFrame(rows)
    return (
        table.assign(_o=table["remedy"].map(order))
        .sort_values(["k", "_o", "seed"])
        .drop(columns="_o")
        .reset_index(drop=True)
    )


def remedy_summary(table: pd.DataFrame, measures=MEASURES) -> pd.DataFrame:
    """Seed mean and standard deviation (ddof 1; NaN with one seed) of each measure, one row per (k, remedy)."""
    g = table.groupby(["k", "remedy", "kind"], sort=False)[list(measures)]
    out = pd.concat({"mean": g.mean(), "std": g.std(ddof=1)}, axis=1)
    out = out.swaplevel(axis=1)[[(m, s) for m in measures for s in ("mean", "std")]]
    out["n_seeds"] = g.size()
    return out


def changes(table: pd.DataFrame, measures=MEASURES) -> pd.DataFrame:
    """Each remedy's row minus the plain run of the same k and seed (training-time and post-hoc remedies),
    with the columns ``remedy``, ``kind``, ``k``, ``seed`` and one per measure."""
    plain = table[table["remedy"] == PLAIN].set_index(["k", "seed"])[list(measures)]
    if plain.empty:
        raise ValueError(f"the table has no {PLAIN!r} rows to compare with")
    others = table[table["remedy"] != PLAIN]
    base = plain.loc[list(zip(others["k"], others["seed"]))].to_numpy()
    diff = others[list(measures)].to_numpy() - base
    out = others[["remedy", "kind", "k", "seed"]].reset_index(drop=True)
    return pd.concat([out, pd.DataFrame(diff, columns=list(measures))], axis=1)


def entropy_prediction(table: pd.DataFrame, gap: str = "l2m") -> dict:
    """The book's test across the training-time remedies (one point per remedy, k and seed): Spearman's rank
    correlation of the change in the gap (against the plain run) with the change in the logits' entropy, and
    with the change in the logit scale, each with its two-sided p-value (scipy.stats.spearmanr).

    If the gap is one of the model's ways of setting its entropy, a remedy that closes the gap must lower the
    entropy with it (a positive correlation), unless the temperature takes over (a negative correlation of the
    gap with the logit scale: a remedy that closes the gap raises the scale to keep the entropy)."""
    diff = changes(table)
    diff = diff[diff["kind"] == "training"]
    if len(diff) < 3:
        raise ValueError(
            f"the test needs at least 3 training-time remedy runs; the table has {len(diff)}"
        )
    ent = stats.spearmanr(diff[gap], diff["entropy"])
    scale = stats.spearmanr(diff[gap], diff["logit_scale"])
    return {
        "n": int(len(diff)),
        "rho_entropy": float(ent.statistic),
        "p_entropy": float(ent.pvalue),
        "rho_scale": float(scale.statistic),
        "p_scale": float(scale.pvalue),
    }


#: the tasks :func:`best_for` ranks the remedies on: (measure, whether lower is better, label)
TASKS = (
    ("l2m", True, "closing the gap (L2M)"),
    ("i2t_r1", False, "image -> text retrieval R@1"),
    ("object_acc", False, "zero-shot object accuracy"),
    ("attribute_acc", False, "zero-shot attribute accuracy"),
    ("arithmetic", False, "multimodal arithmetic"),
)


def best_for(summary: pd.DataFrame, tasks=TASKS) -> pd.DataFrame:
    """For each task and k: the remedy with the best seed mean (plain included), its value, the plain value and
    the difference; ties go to the first in the table's order."""
    rows = []
    for k in summary.index.get_level_values("k").unique():
        at_k = summary.xs(k, level="k")
        for measure, lower, label in tasks:
            mean = at_k[(measure, "mean")].droplevel("kind")
            best = mean.idxmin() if lower else mean.idxmax()
            rows.append(
                {
                    "k": int(k),
                    "task": label,
                    "best remedy": best,
                    "best": float(mean[best]),
                    "plain": float(mean[PLAIN]),
                    "difference": float(mean[best] - mean[PLAIN]),
                }
            )
    return pd.DataFrame(rows)


def real_posthoc_table(names=None) -> pd.DataFrame:
    """Each post-hoc remedy on the shipped embeddings of real models (:data:`EMBEDDING_MODELS`), fitted on the
    pairs themselves: L2M, RMG and retrieval R@1 both ways, before ("none") and after."""
    rows = []
    for name in names or EMBEDDING_MODELS:
        img, txt = load_embeddings(name)
        for remedy, fn in {"none": None, **POSTHOC_REMEDIES}.items():
            x, y = (img, txt) if fn is None else fn(img, txt)
            rows.append(
                {
                    "model": name,
                    "remedy": remedy,
                    "l2m": M.l2m(x, y),
                    "rmg": M.rmg(x, y),
                    "i2t_r1": M.recall_at_k(x, y, 1, "i2t"),
                    "t2i_r1": M.recall_at_k(x, y, 1, "t2i"),
                }
            )
    return pd.DataFrame(rows)


def chapter_runs(profile="auto", chapter="remedies", *, resolve=resolve_glyphs) -> dict:
    """``{name: config}`` of every run the remedies chapter trains at ``profile`` (for the run catalogue)."""
    if chapter != "remedies":
        raise ValueError(f"the remedies experiments train no runs for {chapter!r}")
    # the catalogue resolves glyphs with its own ``resolve``; the names are what `cache list` shows
    return {
        f"{r}, k={k} seed {s}": cfg
        for (r, k, s), cfg in remedy_configs(profile).items()
    }
