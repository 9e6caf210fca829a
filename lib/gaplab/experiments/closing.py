"""Closing the gap on MAD: does it help attributes more than objects? (Schrodi et al. 2025, Table 5.)

For one trained MAD model and each factor (the digit, each attribute), zero-shot accuracy on the held-out
images four ways:

``class prompts``
    the book's usual zero-shot rule: cosine with a prompt ensemble per class (64 captions drawn as in
    training, each containing the class word; :func:`gaplab.train.class_prompts`);
``gap subtracted``
    the same prompts, with the mean gap vector (mean image minus mean caption embedding of the held-out
    pairs) subtracted from every image before renormalising: the images moved over to the text side;
``ideal words``
    the authors' construction (``analysis/gap_ideal_words.py``, after Trager et al. 2023): the class vector is
    the mean of the *normalised* embeddings of the compositional captions that contain the class word, left
    unnormalised, and images go to the class of largest dot product;
``ideal words - u0``
    the same with ``u0`` subtracted, the component every caption shares: the mean over all compositions,
    which equals the mean of the factor's ideal words when every class has the same number of captions.
    Removing u0 removes the text side's offset: this is the paper's "closing the gap".

On the image side the same construction gives ideal images (mean normalised image per class, and their
overall mean); the cosine between each ideal image and its ideal word, before and after removing the two u0s,
says how far the construction brings the two sides into line, as the authors report.

Where MAD differs from the authors' data: their compositions are every attribute-object prompt
"an image of a {attr} {obj}."; MAD's are captions as drawn in training (the object, the class word and
``k - 1`` more attributes, or ``k`` when the class is the object), ``n_prompts`` per class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gaplab import metrics as M
from gaplab.data.mad import FACTORS
from gaplab.geometry import subtract_gap
from gaplab.metrics.closing import dot_accuracy
from gaplab.tokenizer import MADTokenizer
from gaplab.train import class_prompt_embeddings

__all__ = [
    "VARIANTS",
    "prompt_embeddings",
    "ideal_words_for",
    "closing_by_factor",
    "closing_over_runs",
    "closing_summary",
    "gain_test",
]

VARIANTS = ("class prompts", "gap subtracted", "ideal words", "ideal words - u0")


def prompt_embeddings(
    model,
    factor: str,
    *,
    k: int,
    object_factor: str = "digit",
    n_prompts: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """(classes, n_prompts, d) float64: the normalised embeddings of the captions behind each class's prompt
    ensemble (:func:`gaplab.train.class_prompt_embeddings`), whose normalised means are
    :func:`gaplab.train.class_prompts`."""
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; MAD has {', '.join(FACTORS)}")
    device = next(model.parameters()).device
    emb = class_prompt_embeddings(
        model,
        factor,
        MADTokenizer(),
        device,
        k=k,
        object_factor=object_factor,
        n_prompts=n_prompts,
        seed=seed,
    )
    return emb.cpu().numpy().astype(np.float64)


def ideal_words_for(prompts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ideal words (C, d), u0 (d,)) from :func:`prompt_embeddings`' (C, n, d) normalised caption embeddings."""
    p = np.asarray(prompts, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] < 2 or p.shape[1] < 1:
        raise ValueError(
            f"prompts must have shape (classes >= 2, captions >= 1, d); got {p.shape}"
        )
    words = p.mean(axis=1)
    return words, words.mean(axis=0)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def closing_by_factor(
    result, *, n_prompts: int = 64, seed: int = 0, factors=None
) -> pd.DataFrame:
    """One row per factor of a finished run: accuracy under each of :data:`VARIANTS`, chance, and the cosine of
    ideal images with ideal words before and after removing u0."""
    cfg = result.config
    img, txt = (
        np.asarray(result.eval_image, np.float64),
        np.asarray(result.eval_text, np.float64),
    )
    moved = subtract_gap(img, txt)
    rows = []
    for factor in list(FACTORS) if factors is None else list(factors):
        labels = np.asarray(result.eval_factors[factor])
        prompts = prompt_embeddings(
            result.model,
            factor,
            k=cfg.k,
            object_factor=cfg.object_factor,
            n_prompts=n_prompts,
            seed=seed,
        )
        words, u0 = ideal_words_for(prompts)
        classes = _unit(words)  # = class_prompts(...): the normalised ensemble means
        images = np.stack([img[labels == c].mean(axis=0) for c in range(len(words))])
        u0_img = img.mean(axis=0)
        rows.append(
            {
                "k": cfg.k,
                "seed": cfg.seed,
                "factor": factor,
                "role": "object" if factor == cfg.object_factor else "attribute",
                "class prompts": M.zero_shot_accuracy(img, classes, labels),
                "gap subtracted": M.zero_shot_accuracy(moved, classes, labels),
                "ideal words": dot_accuracy(img, words, labels),
                "ideal words - u0": dot_accuracy(img, words - u0, labels),
                "chance": 1.0 / len(words),
                "cos ideal (with u0)": float(
                    np.mean(np.sum(_unit(images) * _unit(words), axis=1))
                ),
                "cos ideal (u0 removed)": float(
                    np.mean(np.sum(_unit(images - u0_img) * _unit(words - u0), axis=1))
                ),
            }
        )
    return pd.DataFrame(rows)


def closing_over_runs(runs: dict, **kwargs) -> pd.DataFrame:
    """:func:`closing_by_factor` for every run of a ``{(k, seed): TrainResult}`` grid, stacked."""
    return pd.concat(
        [closing_by_factor(r, **kwargs) for _, r in sorted(runs.items())],
        ignore_index=True,
    )


def closing_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per k: object and mean attribute accuracy under each variant (means over seeds), and the gains of
    closing the gap (``ideal words - u0`` against ``class prompts``)."""
    rows = []
    for k, part in table.groupby("k"):
        row = {"k": int(k)}
        for role in ("object", "attribute"):
            sub = part[part["role"] == role]
            for v in VARIANTS:
                row[f"{role} {v}"] = float(sub.groupby("seed")[v].mean().mean())
            row[f"{role} gain"] = (
                row[f"{role} ideal words - u0"] - row[f"{role} class prompts"]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def gain_test(table: pd.DataFrame, *, min_k: int = 1) -> dict:
    """Does closing the gap (``ideal words - u0`` against ``class prompts``) help attributes, and more than the
    object? One gain per run with ``k >= min_k`` (mean over its attribute factors, and the object's), tested with
    one-sided one-sample t-tests: ``p_attr`` for attribute gain > 0, ``p_more`` for attribute gain > object gain.
    Also the mean gains and the number of runs."""
    from scipy import stats

    part = table[table["k"] >= min_k]
    gains = part.assign(gain=part["ideal words - u0"] - part["class prompts"])
    per_run = gains.groupby(["k", "seed", "role"])["gain"].mean().unstack("role")
    if len(per_run) < 2:
        raise ValueError(
            f"the test needs at least two runs with k >= {min_k}; got {len(per_run)}"
        )
    diff = per_run["attribute"] - per_run["object"]
    return {
        "runs": len(per_run),
        "attribute_gain": float(per_run["attribute"].mean()),
        "object_gain": float(per_run["object"].mean()),
        "p_attr": float(
            stats.ttest_1samp(per_run["attribute"], 0.0, alternative="greater").pvalue
        ),
        "p_more": float(stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue),
    }
