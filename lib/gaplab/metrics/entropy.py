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

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[1.0, 0.1], [0.9, 0.3], [1.0, -0.2]])
    >>> txt = np.array([[0.2, 1.0], [0.4, 0.9], [-0.1, 1.0]])
    >>> from gaplab.metrics import logits_entropy
    >>> round(logits_entropy(img, txt, logit_scale=10.0), 4)
    0.4048
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
