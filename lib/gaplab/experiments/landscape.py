"""Liang et al.'s (2022, Fig. 3b-d) loss landscape: the CLIP loss as both modalities slide along the gap.

With ĝ the unit gap direction (mean image embedding minus mean caption embedding, normalised), a shift by the
distance ``d`` moves every caption by ``+d/2 ĝ`` and every image by ``-d/2 ĝ`` and renormalises both: ``d = 0``
is the embeddings as they are, positive ``d`` moves the two sides towards each other (their means cross a
little beyond ``d`` = the gap), negative ``d`` pushes them apart. At each ``d`` the contrastive loss is taken
over fixed batches of pairs at a given logit scale. Where the curve has its minimum says which gap the loss
prefers at that temperature.

Where this follows the authors' ``plot_optimization_exp.ipynb``: the shift (half each side, then
renormalise), batches of 50 consecutive pairs, the loss averaged over batches, the logit scales 1 to 100, and
the x axis of their plots, the signed distance between the two means after the shift. Where it differs: the
notebook's "symmetric" loss passes the image-to-text logits twice (``logits_per_text.T`` is
``logits_per_image``), so it is the image-to-text loss alone; :func:`batched_clip_loss` takes both
directions, as CLIP is trained, and ``directions="i2t"`` reproduces the notebook's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gaplab import metrics as M
from gaplab.data.mad import FACTORS
from gaplab.experiments.organisation import class_text
from gaplab.metrics.geometry import shift_along_gap, unit_gap
from gaplab.metrics.inputs import as_pair

__all__ = [
    "LIANG_LOGIT_SCALES",
    "LIANG_SHIFTS",
    "unit_gap",
    "shift_pairs",
    "signed_centroid_distance",
    "batched_clip_loss",
    "loss_landscape",
    "landscape_minima",
    "shift_effects",
    "zero_shot_under_shift",
]

#: the notebook's temperatures, as logit scales
LIANG_LOGIT_SCALES = (1.0, 10.0, 20.0, 30.0, 50.0, 100.0)
#: the notebook's shift grid, np.arange(-5, 5, 0.25)
LIANG_SHIFTS = tuple(float(v) for v in np.arange(-5.0, 5.0, 0.25))


def shift_pairs(
    img, txt, distance: float, direction=None
) -> tuple[np.ndarray, np.ndarray]:
    """``(normalise(x - d/2 ĝ), normalise(y + d/2 ĝ))``; ``direction`` defaults to :func:`unit_gap`. The two
    sides may have different numbers of rows (images and class prompts). This is
    :func:`gaplab.metrics.geometry.shift_along_gap` with the unit direction and ``lam = d/2``: a distance, not a multiple
    of the gap, so models with different gaps move alike."""
    d = float(distance)
    if not np.isfinite(d):
        raise ValueError(f"distance must be finite; got {distance!r}")
    x, y = as_pair(img, txt)
    g = unit_gap(x, y) if direction is None else np.asarray(direction, dtype=np.float64)
    return shift_along_gap(x, y, 0.5 * d, delta=g)


def signed_centroid_distance(x, y, direction) -> float:
    """‖mean x - mean y‖, negative once the image mean has passed the text mean along ``direction``."""
    diff = np.asarray(x).mean(axis=0) - np.asarray(y).mean(axis=0)
    return float(
        np.linalg.norm(diff) * (1.0 if diff @ np.asarray(direction) >= 0 else -1.0)
    )


def _log_softmax_diag(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return np.diagonal(logits) - lse


def batched_clip_loss(
    img, txt, logit_scale: float, *, batch: int = 50, directions: str = "both"
) -> float:
    """The CLIP loss over consecutive batches of ``batch`` pairs (a remainder is left out, as in the notebook),
    averaged over batches. ``directions``: "both" (the mean of image-to-text and text-to-image), "i2t" or
    "t2i"."""
    if directions not in ("both", "i2t", "t2i"):
        raise ValueError(
            f"directions must be 'both', 'i2t' or 't2i'; got {directions!r}"
        )
    if not (np.isfinite(logit_scale) and logit_scale > 0):
        raise ValueError(f"logit_scale must be a positive number; got {logit_scale!r}")
    x, y = as_pair(img, txt, same_rows=True)
    if (
        isinstance(batch, bool)
        or not isinstance(batch, int)
        or not 2 <= batch <= len(x)
    ):
        raise ValueError(
            f"batch must be an integer in 2..{len(x)} (the number of pairs); got {batch!r}"
        )
    losses = []
    for s in range(0, len(x) - batch + 1, batch):
        logits = logit_scale * x[s : s + batch] @ y[s : s + batch].T
        i2t, t2i = (
            -_log_softmax_diag(logits).mean(),
            -_log_softmax_diag(logits.T).mean(),
        )
        losses.append({"both": (i2t + t2i) / 2, "i2t": i2t, "t2i": t2i}[directions])
    return float(np.mean(losses))


def loss_landscape(
    img,
    txt,
    *,
    logit_scales=LIANG_LOGIT_SCALES,
    shifts=LIANG_SHIFTS,
    batch: int = 50,
    directions: str = "both",
) -> pd.DataFrame:
    """One row per (logit scale, shift): the shift distance, the signed distance of the means after it, L2M
    (unsigned) and the loss."""
    x, y = as_pair(img, txt, same_rows=True)
    g = unit_gap(x, y)
    rows = []
    for d in shifts:
        xs, ys = shift_pairs(x, y, d, g)
        centre = signed_centroid_distance(xs, ys, g)
        for scale in logit_scales:
            rows.append(
                {
                    "logit scale": float(scale),
                    "shift": float(d),
                    "centroid distance": centre,
                    "loss": batched_clip_loss(
                        xs, ys, float(scale), batch=batch, directions=directions
                    ),
                }
            )
    return pd.DataFrame(rows)


def landscape_minima(frame: pd.DataFrame) -> pd.DataFrame:
    """Per logit scale, the row of :func:`loss_landscape` where the loss is lowest (the first, on ties)."""
    idx = frame.groupby("logit scale")["loss"].idxmin()
    return frame.loc[idx].sort_values("logit scale").reset_index(drop=True)


def shift_effects(img, txt, shifts=LIANG_SHIFTS) -> pd.DataFrame:
    """Retrieval as the pairs are shifted: per shift distance, the signed distance of the means, L2M and
    recall@1 in both directions (rows of ``img`` and ``txt`` are pairs)."""
    x, y = as_pair(img, txt, same_rows=True)
    g = unit_gap(x, y)
    rows = []
    for d in shifts:
        xs, ys = shift_pairs(x, y, d, g)
        rows.append(
            {
                "shift": float(d),
                "centroid distance": signed_centroid_distance(xs, ys, g),
                "l2m": M.l2m(xs, ys),
                "i2t R@1": M.recall_at_k(xs, ys, k=1, direction="i2t"),
                "t2i R@1": M.recall_at_k(xs, ys, k=1, direction="t2i"),
            }
        )
    return pd.DataFrame(rows)


def zero_shot_under_shift(result, shifts=LIANG_SHIFTS, factors=None) -> pd.DataFrame:
    """Zero-shot accuracy of a MAD run per factor as its images move by ``-d/2 ĝ`` and its class prompts, like
    captions, by ``+d/2 ĝ`` (ĝ from the run's held-out pairs); one row per (shift, factor)."""
    g = unit_gap(result.eval_image, result.eval_text)
    x = np.asarray(result.eval_image, dtype=np.float64)
    rows = []
    for factor in list(FACTORS) if factors is None else list(factors):
        prompts = class_text(result, factor)
        labels = result.eval_factors[factor]
        for d in shifts:
            xs, ps = shift_pairs(x, prompts, d, g)
            rows.append(
                {
                    "shift": float(d),
                    "factor": factor,
                    "accuracy": M.zero_shot_accuracy(xs, ps, labels),
                }
            )
    return pd.DataFrame(rows)
