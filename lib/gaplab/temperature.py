"""Liang et al.'s (2022) temperature and shift experiments on MAD models.

* :func:`temperature_runs`: the MAD recipe with the logit scale frozen at each of :data:`LOGIT_SCALES`
  (a low temperature is a high logit scale);
* :func:`zero_shot_under_shift`: zero-shot digit accuracy of a trained model after moving its image embeddings
  and class prompts towards each other along the gap vector.
"""

from __future__ import annotations

from gaplab import metrics as M
from gaplab.geometry import shift_along_gap
from gaplab.runs import get_or_train_all, mad_config
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
    configs = {float(s): temperature_config(profile, s, **overrides) for s in scales}
    return get_or_train_all(configs, desc="temperature runs", progress=progress)


def zero_shot_under_shift(result: TrainResult, lambdas, factor: str = "digit") -> list[float]:
    """Zero-shot accuracy for ``factor`` after the shift x' = normalise(x - lam*delta) of the image embeddings and
    y' = normalise(y + lam*delta) of the class prompts, for each ``lam``.

    ``delta`` is the gap vector of the run's held-out pairs (mean image embedding minus mean caption
    embedding), as in :func:`gaplab.geometry.shift_along_gap`; the class prompts move with the captions.
    """
    cfg = result.config
    device = next(result.model.parameters()).device
    prompts = class_prompts(result.model, factor, MADTokenizer(), device, k=cfg.k, object_factor=cfg.object_factor)
    delta = M.mean_differences(result.eval_image, result.eval_text)
    labels = result.eval_factors[factor]
    out = []
    for lam in lambdas:
        img, cls = shift_along_gap(result.eval_image, prompts, lam, delta=delta)
        out.append(M.zero_shot_accuracy(img, cls, labels))
    return out
