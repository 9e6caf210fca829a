"""Liang et al.'s (2022) temperature and shift experiments on MAD models.

* :func:`temperature_runs`: the MAD recipe with the logit scale frozen at each of :data:`LOGIT_SCALES`
  (a low temperature is a high logit scale);
* :func:`zero_shot_under_shift`: zero-shot digit accuracy of a trained model after moving its image embeddings
  and class prompts towards each other along the gap vector.
"""

from __future__ import annotations

import numpy as np

from gaplab import metrics as M
from gaplab.runs import get_or_train, mad_config
from gaplab.tokenizer import MADTokenizer
from gaplab.train import TrainResult, class_prompts

__all__ = ["LOGIT_SCALES", "temperature_config", "temperature_runs", "zero_shot_under_shift"]

#: frozen logit scales of the temperature experiment (1/temperature); CLIP's learnable one is capped at 100
LOGIT_SCALES: tuple[float, ...] = (1.0, 10.0, 20.0, 30.0, 50.0, 100.0)


def temperature_config(profile="auto", logit_scale: float = 30.0, *, k: int = 2, seed: int = 0, **overrides):
    """The MAD recipe with the logit scale frozen at ``logit_scale``."""
    return mad_config(profile, k=k, seed=seed, temperature=float(logit_scale), **overrides)


def temperature_runs(profile="auto", scales=LOGIT_SCALES, *, progress: bool = True, **overrides) -> dict[float, TrainResult]:
    """``{logit_scale: run}`` for each frozen scale."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(scales), desc="temperature runs", unit="run")
    out = {}
    for s in scales:
        out[float(s)] = get_or_train(temperature_config(profile, s, **overrides), progress=progress)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _shift(z: np.ndarray, step: np.ndarray) -> np.ndarray:
    z = z + step
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def zero_shot_under_shift(result: TrainResult, lambdas, factor: str = "digit") -> list[float]:
    """Zero-shot accuracy for ``factor`` after the shift x' = normalise(x - lam*delta) of the image embeddings and
    y' = normalise(y + lam*delta) of the class prompts, for each ``lam``.

    ``delta`` is the gap vector of the run's held-out pairs (mean image embedding minus mean caption
    embedding), as in :func:`gaplab.geometry.shift_along_gap`; the class prompts move with the captions.
    """
    cfg = result.config
    device = next(result.model.parameters()).device
    prompts = class_prompts(result.model, factor, MADTokenizer(), device, k=cfg.k, object_factor=cfg.object_factor)
    img = M._inputs.as_embeddings(result.eval_image, "image embeddings")
    txt = M._inputs.as_embeddings(result.eval_text, "text embeddings")
    delta = img.mean(axis=0) - txt.mean(axis=0)
    labels = result.eval_factors[factor]
    out = []
    for lam in lambdas:
        lam = float(lam)
        if not np.isfinite(lam):
            raise ValueError(f"lambda must be finite; got {lam}")
        out.append(M.zero_shot_accuracy(_shift(img, -lam * delta), _shift(prompts, lam * delta), labels))
    return out
