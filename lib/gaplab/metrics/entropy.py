"""Entropy of CLIP's logits (Schrodi et al., 2025, link the gap to it)."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from gaplab.metrics.inputs import as_pair

__all__ = ["logits_entropy"]


def logits_entropy(img, txt, logit_scale: float) -> float:
    """Mean over image rows of the Shannon entropy (nats) of softmax(logit_scale * img @ txt.T).

    Rows are L2-normalised first. Computed with log-softmax, so large scales do not overflow. Lies in
    [0, log(number of texts)].
    """
    x, y = as_pair(img, txt)
    scale = float(logit_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(
            f"logit_scale must be a positive finite number; got {logit_scale!r}"
        )
    logp = log_softmax(scale * (x @ y.T), axis=1)
    p = np.exp(logp)
    return float(-(p * logp).sum(axis=1).mean())
