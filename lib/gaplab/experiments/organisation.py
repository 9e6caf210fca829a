"""The organisation test (Schrodi et al. 2025, Table 2) on the MAD grid, with its controls.

For each run and each factor (the digit's ten values, each attribute's values), the classes are ranked by
image-side and by text-side similarity (:mod:`gaplab.metrics.organisation`), with the prompt ensembles of
:func:`gaplab.training.train.class_prompts` as the class text embeddings. Two controls put the number in scale:

- *seeds*: the image-side rankings of two runs that differ only in their seed, and likewise the text-side
  rankings: how much of the image-text disagreement would two copies of one modality show anyway?
- *shuffled labels*: the images' class labels permuted at random, so the image side ranks noise: the distance
  that means "no shared organisation at all" (near 0.5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gaplab.data.mad import FACTORS
from gaplab.metrics.organisation import (
    class_similarities,
    organisation_test,
    row_distances,
)
from gaplab.training.tokenizer import MADTokenizer
from gaplab.training.train import class_prompts

__all__ = [
    "class_text",
    "organisation_by_factor",
    "organisation_over_runs",
    "seed_agreement",
    "organisation_summary",
]


def class_text(result, factor: str) -> np.ndarray:
    """The run's class embeddings for ``factor``: the prompt ensembles its own zero-shot evaluation uses."""
    cfg = result.config
    device = next(result.model.parameters()).device
    return class_prompts(
        result.model,
        factor,
        MADTokenizer(),
        device,
        k=cfg.k,
        object_factor=cfg.object_factor,
    )


def organisation_by_factor(
    result, *, factors=None, shuffle_seed: int = 0, include_self: bool = True
) -> pd.DataFrame:
    """One row per factor: the image-text Kendall distance and tau (standard definition), the authors'
    script's distance, and both distances with shuffled image labels."""
    cfg = result.config
    rng = np.random.default_rng(shuffle_seed)
    rows = []
    for factor in list(FACTORS) if factors is None else list(factors):
        labels = np.asarray(result.eval_factors[factor])
        text = class_text(result, factor)
        test = organisation_test(
            result.eval_image, labels, text, include_self=include_self
        )
        script = organisation_test(
            result.eval_image,
            labels,
            text,
            include_self=include_self,
            definition="script",
        )
        permuted = rng.permutation(labels)
        shuffled = organisation_test(
            result.eval_image, permuted, text, include_self=include_self
        )
        script_shuffled = organisation_test(
            result.eval_image,
            permuted,
            text,
            include_self=include_self,
            definition="script",
        )
        rows.append(
            {
                "k": cfg.k,
                "seed": cfg.seed,
                "factor": factor,
                "classes": test["classes"],
                "role": "object" if factor == cfg.object_factor else "attribute",
                "distance": test["distance"],
                "tau": test["tau"],
                "script distance": script["distance"],
                "shuffled labels": shuffled["distance"],
                "script, shuffled labels": script_shuffled["distance"],
            }
        )
    return pd.DataFrame(rows)


def organisation_over_runs(runs: dict, **kwargs) -> pd.DataFrame:
    """:func:`organisation_by_factor` for every run of a ``{(k, seed): TrainResult}`` grid, stacked."""
    return pd.concat(
        [organisation_by_factor(r, **kwargs) for _, r in sorted(runs.items())],
        ignore_index=True,
    )


def seed_agreement(
    run_a, run_b, *, factors=None, include_self: bool = True
) -> pd.DataFrame:
    """Per factor, the Kendall distance between two runs' image-side rankings and between their text-side
    rankings (mean over classes). The two runs must be measured on the same held-out images."""
    if not np.array_equal(run_a.eval_factors["digit"], run_b.eval_factors["digit"]):
        raise ValueError(
            "the two runs were evaluated on different images; their image sides cannot be compared"
        )
    rows = []
    for factor in list(FACTORS) if factors is None else list(factors):
        labels = np.asarray(run_a.eval_factors[factor])
        img_a, txt_a = class_similarities(
            run_a.eval_image, labels, class_text(run_a, factor)
        )
        img_b, txt_b = class_similarities(
            run_b.eval_image, labels, class_text(run_b, factor)
        )
        rows.append(
            {
                "k": run_a.config.k,
                "factor": factor,
                "role": "object"
                if factor == run_a.config.object_factor
                else "attribute",
                "image vs image": float(
                    row_distances(img_a, img_b, include_self=include_self).mean()
                ),
                "text vs text": float(
                    row_distances(txt_a, txt_b, include_self=include_self).mean()
                ),
            }
        )
    return pd.DataFrame(rows)


def organisation_summary(
    table: pd.DataFrame, seeds: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per k and role (object, attribute): mean distance, tau, script distance and shuffled-label distance over
    factors and seeds; with ``seeds`` (stacked :func:`seed_agreement` rows), the two seed controls too."""
    cols = [
        "distance",
        "tau",
        "script distance",
        "shuffled labels",
        "script, shuffled labels",
    ]
    out = table.groupby(["k", "role"])[cols].mean()
    if seeds is not None and len(seeds):
        out = out.join(
            seeds.groupby(["k", "role"])[["image vs image", "text vs text"]].mean()
        )
    return out.reset_index()
