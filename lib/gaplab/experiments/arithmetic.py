"""Multimodal arithmetic on MAD: change one attribute of a digit by adding the difference of two value words to
its image embedding, and look for an image of the same digit with the new value among the held-out images of
the run. (Fahim et al. 2024 score such arithmetic on SIMAT; their abstract reports that it improves, their
``tests/simat_score.ipynb`` holds the scores.)

The value words are each run's own zero-shot class embeddings (:func:`gaplab.training.train.class_prompts`: prompt
ensembles of training-like captions containing the value word), so a model is asked in the language it
was trained on. The gallery is the run's held-out set; the digit must stay (``keep=("digit",)``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from gaplab.data.mad import FACTORS
from gaplab.experiments.organisation import class_text
from gaplab.metrics.arithmetic import QUERIES, arithmetic_accuracy
from gaplab.metrics.geometry import subtract_gap

__all__ = [
    "ATTRIBUTES",
    "arithmetic_by_attribute",
    "arithmetic_over_runs",
    "arithmetic_summary",
    "bootstrap_difference",
    "SETTINGS",
    "TARGETS",
]

#: every factor but the object
ATTRIBUTES = tuple(name for name in FACTORS if name != "digit")


#: which images count as the transformed digit: the same digit with the new value, or also every other
#: factor unchanged (fewer queries have such an image in the gallery; the others are skipped)
TARGETS = {"same digit": ("digit",), "all else unchanged": None}


def _keep(targets: str, attribute: str) -> tuple[str, ...]:
    if targets not in TARGETS:
        raise ValueError(
            f"targets must be one of {', '.join(TARGETS)}; got {targets!r}"
        )
    keep = TARGETS[targets]
    return tuple(f for f in FACTORS if f != attribute) if keep is None else keep


def _labels(result) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(result.eval_factors[name]).astype(np.int64) for name in FACTORS
    }


def _per_attribute(
    result, attributes, targets: str, queries, close_gap: bool = False, **kwargs
):
    """(attribute, query, :func:`arithmetic_accuracy` result) for a run; ``kwargs`` go to it."""
    img = np.asarray(result.eval_image, dtype=np.float64)
    if close_gap:
        img = subtract_gap(img, result.eval_text)
    labels = _labels(result)
    for attribute in attributes:
        words = class_text(result, attribute)
        for query in queries:
            yield (
                attribute,
                query,
                arithmetic_accuracy(
                    img,
                    labels,
                    attribute,
                    words,
                    keep=_keep(targets, attribute),
                    query=query,
                    **kwargs,
                ),
            )


def arithmetic_by_attribute(
    result,
    *,
    attributes=ATTRIBUTES,
    queries=QUERIES,
    close_gap: bool = False,
    targets: str = "same digit",
    ks=(1, 5),
) -> pd.DataFrame:
    """One row per (attribute, query) for a trained MAD run: top-k accuracies and the number of queries.

    ``close_gap``: first move the images by minus the mean gap vector (mean held-out image minus mean caption
    embedding) and renormalise, as the closing chapter does. ``targets``: a key of :data:`TARGETS`.
    """
    return pd.DataFrame(
        [
            {"attribute": attribute, "query": query, **res}
            for attribute, query, res in _per_attribute(
                result, attributes, targets, queries, close_gap, ks=ks
            )
        ]
    )


#: the settings :func:`arithmetic_over_runs` measures: (gap, targets)
SETTINGS = (
    ("as trained", "same digit"),
    ("closed", "same digit"),
    ("as trained", "all else unchanged"),
)


def arithmetic_over_runs(runs: Mapping, *, settings=SETTINGS, **kwargs) -> pd.DataFrame:
    """:func:`arithmetic_by_attribute` for every run (name -> result) and setting (gap as trained or closed,
    which images are targets), stacked with the columns ``model``, ``gap`` and ``targets``."""
    frames = []
    for name, result in runs.items():
        for gap, targets in settings:
            frame = arithmetic_by_attribute(
                result, close_gap=gap == "closed", targets=targets, **kwargs
            )
            frames.append(frame.assign(model=name, gap=gap, targets=targets))
    return pd.concat(frames, ignore_index=True)


def arithmetic_summary(frame: pd.DataFrame, measure: str = "top-1") -> pd.DataFrame:
    """The mean over attributes of ``measure`` (each attribute weighs alike), per model, gap and query."""
    return (
        frame.groupby(["model", "targets", "gap", "query"], sort=False)[measure]
        .mean()
        .unstack("query")
        .reindex(columns=[q for q in QUERIES if q in set(frame["query"])])
    )


def _image_hits(
    result, attributes, k: int, query: str, targets: str
) -> tuple[np.ndarray, np.ndarray]:
    """(attributes, n) answered queries and top-k hits of each held-out image."""
    per = [
        res
        for _, _, res in _per_attribute(
            result, attributes, targets, (query,), ks=(k,), per_image=True
        )
    ]
    return np.array([r["image queries"] for r in per]), np.array(
        [r[f"image top-{k}"] for r in per]
    )


def bootstrap_difference(
    a,
    b,
    *,
    attributes=ATTRIBUTES,
    k: int = 1,
    query: str = "image+text",
    targets: str = "same digit",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Top-k accuracy of run ``b`` minus run ``a`` (mean over attributes), with a 95% bootstrap interval that
    resamples the held-out images (both runs answer the same queries, so the resampling is paired) and the
    share of resamples in which ``b`` is not better. Seed-to-seed variation of training is not included."""
    same = all(
        np.array_equal(np.asarray(a.eval_factors[f]), np.asarray(b.eval_factors[f]))
        for f in FACTORS
    )
    if not same:
        raise ValueError(
            "the two runs were evaluated on different held-out images; a paired bootstrap needs "
            "the same ones (train both on the same data seed)"
        )
    asked_a, hits_a = _image_hits(a, attributes, k, query, targets)
    asked_b, hits_b = _image_hits(b, attributes, k, query, targets)
    if not np.array_equal(asked_a, asked_b):
        raise ValueError("the two runs answered different queries")
    rng = np.random.default_rng(seed)
    n = asked_a.shape[1]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(
        np.float64
    )  # (n_boot, n)

    def mean_accuracy(hits, weights):
        return ((weights @ hits.T) / (weights @ asked_a.T)).mean(axis=-1)

    diff = float(mean_accuracy(hits_b, np.ones(n)) - mean_accuracy(hits_a, np.ones(n)))
    boot = mean_accuracy(hits_b, counts) - mean_accuracy(hits_a, counts)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return {
        "difference": diff,
        "low": float(lo),
        "high": float(hi),
        "share not better": float((boot <= 0).mean()),
        "n_boot": int(n_boot),
    }
