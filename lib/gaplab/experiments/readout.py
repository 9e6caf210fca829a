"""What a trained MAD model knows: zero-shot accuracy per factor, linear probes, object bias, the gap.

Everything is measured on the run's held-out evaluation set (its images, and captions drawn as in training).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gaplab import metrics as M
from gaplab.data.mad import FACTORS
from gaplab.metrics.inputs import as_embeddings
from gaplab.training.tokenizer import MADTokenizer
from gaplab.training.train import TrainResult, class_prompts

__all__ = [
    "chance",
    "zero_shot_by_factor",
    "linear_probe",
    "attribute_readout",
    "run_summary",
    "factor_contrasts",
    "contrast_table",
    "zero_shot_table",
    "moad_towards",
]


def chance(factor: str) -> float:
    """Accuracy of guessing one value of ``factor`` (all values are equally frequent in MAD)."""
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; MAD has {', '.join(FACTORS)}")
    return 1.0 / len(FACTORS[factor])


def _device(model) -> torch.device:
    return next(model.parameters()).device


def zero_shot_by_factor(result: TrainResult, factors=None) -> dict[str, float]:
    """Zero-shot accuracy of the run's images for each factor, with prompts drawn as in its training."""
    cfg = result.config
    factors = list(FACTORS) if factors is None else list(factors)
    tok = MADTokenizer()
    out = {}
    for f in factors:
        chance(f)  # names an unknown factor
        prompts = class_prompts(
            result.model,
            f,
            tok,
            _device(result.model),
            k=cfg.k,
            object_factor=cfg.object_factor,
        )
        out[f] = M.zero_shot_accuracy(
            result.eval_image, prompts, result.eval_factors[f]
        )
    return out


def linear_probe(emb, labels, *, seed: int = 0, test_fraction: float = 0.3) -> float:
    """Held-out accuracy of a logistic regression from embeddings to labels: whether the information is there
    at all, whatever the text side makes of it."""
    # heavy: sklearn only for the probe
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split  # heavy: as above

    x = as_embeddings(emb, "embeddings")
    y = np.asarray(labels)
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},); got {y.shape}")
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(xtr, ytr)
    return float(clf.score(xte, yte))


def attribute_readout(result: TrainResult):
    """Per attribute factor of a run: linear-probe accuracy on its image embeddings, zero-shot accuracy, chance."""
    zs = zero_shot_by_factor(result)
    rows = [
        {
            "k": result.config.k,
            "factor": name,
            "linear probe": linear_probe(result.eval_image, result.eval_factors[name]),
            "zero-shot": zs[name],
            "chance": chance(name),
        }
        for name in FACTORS
        if name != result.config.object_factor
    ]
    return pd.DataFrame(rows)


def factor_contrasts(emb, factors: dict) -> dict[str, float]:
    """Per factor: mean cosine of pairs sharing its value minus pairs that do not (the parts of MOAD)."""
    return {f: M.similarity_contrast(emb, v, name=f) for f, v in factors.items()}


def contrast_table(embeddings: dict, by: str) -> pd.DataFrame:
    """:func:`factor_contrasts` of several embedding sets in one long frame for a grouped bar chart.

    ``embeddings`` maps a label to ``(emb, factors)``, ``factors`` a run's ``eval_factors`` (only MAD's
    :data:`FACTORS` are read, in that order). Columns: ``factor``, ``by`` (the label), ``similarity contrast``.
    """
    rows = [
        {"factor": name, by: label, "similarity contrast": value}
        for label, (emb, factors) in embeddings.items()
        for name, value in factor_contrasts(
            emb, {n: factors[n] for n in FACTORS}
        ).items()
    ]
    return pd.DataFrame(rows)


def zero_shot_table(result: TrainResult) -> pd.DataFrame:
    """:func:`zero_shot_by_factor` of a run beside each factor's :func:`chance`, as one long frame (columns
    ``factor``, ``which``: "zero-shot accuracy" or "chance", ``accuracy``), the accuracies first."""
    acc = zero_shot_by_factor(result)
    rows = [
        {"factor": n, "which": "zero-shot accuracy", "accuracy": a}
        for n, a in acc.items()
    ] + [{"factor": n, "which": "chance", "accuracy": chance(n)} for n in acc]
    return pd.DataFrame(rows)


def moad_towards(result: TrainResult, factor: str, side: str = "image") -> float:
    """MOAD of a run's held-out embeddings with ``factor`` as the object and every other factor as an attribute."""
    chance(factor)
    if side not in ("image", "text"):
        raise ValueError(f"side must be 'image' or 'text'; got {side!r}")
    emb = result.eval_image if side == "image" else result.eval_text
    f = result.eval_factors
    return M.moad(
        emb, f[factor], np.stack([f[n] for n in FACTORS if n != factor], axis=1)
    )


def run_summary(result: TrainResult) -> dict:
    """The numbers the imbalance chapters compare across runs, from one finished run."""
    cfg = result.config
    f = result.eval_factors
    obj = cfg.object_factor
    attributes = [name for name in FACTORS if name != obj]
    attrs = np.stack([f[a] for a in attributes], axis=1)
    acc = zero_shot_by_factor(result)
    last = result.history[-1]
    return {
        "k": cfg.k,
        "seed": cfg.seed,
        "object_factor": obj,
        "rmg": M.rmg(result.eval_image, result.eval_text),
        "l2m": M.l2m(result.eval_image, result.eval_text),
        "moad_img": M.moad(result.eval_image, f[obj], attrs),
        "moad_txt": M.moad(result.eval_text, f[obj], attrs),
        "entropy": last["entropy"],
        "logit_scale": last["logit_scale"],
        "object_acc": acc[obj],
        "attribute_acc": float(np.mean([acc[a] for a in attributes])),
        "attribute_chance": float(np.mean([chance(a) for a in attributes])),
        **{f"acc_{name}": v for name, v in acc.items()},
    }
