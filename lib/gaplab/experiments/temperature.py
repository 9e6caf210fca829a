"""Liang et al.'s (2022) temperature experiment on MAD models.

:func:`temperature_runs` trains the MAD recipe with the logit scale frozen at each of :data:`LOGIT_SCALES` (a low
temperature is a high logit scale). The shift experiments live in :mod:`gaplab.experiments.landscape`.
"""

from __future__ import annotations

from gaplab.runs import get_or_train_all, mad_config
from gaplab.training.train import TrainResult

__all__ = ["LOGIT_SCALES", "temperature_config", "temperature_runs"]

#: frozen logit scales of the temperature experiment (1/temperature); CLIP's learnable one is capped at 100
LOGIT_SCALES: tuple[float, ...] = (1.0, 10.0, 20.0, 30.0, 50.0, 100.0)


def temperature_config(
    profile="auto", logit_scale: float = 30.0, *, k: int = 2, seed: int = 0, **overrides
):
    """The MAD recipe with the logit scale frozen at ``logit_scale``."""
    return mad_config(
        profile, k=k, seed=seed, temperature=float(logit_scale), **overrides
    )


def temperature_runs(
    profile="auto", scales=LOGIT_SCALES, *, progress: bool = True, **overrides
) -> dict[float, TrainResult]:
    """``{logit_scale: run}`` for each frozen scale."""
    configs = {float(s): temperature_config(profile, s, **overrides) for s in scales}
    return get_or_train_all(configs, desc="temperature runs", progress=progress)
