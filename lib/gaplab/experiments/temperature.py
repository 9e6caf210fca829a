"""Liang et al.'s (2022) temperature experiment on MAD models.

:func:`temperature_runs` trains the MAD recipe with the logit scale frozen at each of :data:`LOGIT_SCALES` (a low
temperature is a high logit scale). The shift experiments live in :mod:`gaplab.experiments.landscape`.
:func:`chapter_runs` lists every run the cone_temperature chapter trains, under the run catalogue's names.
"""

from __future__ import annotations

from gaplab.experiments import imbalance
from gaplab.profiles import resolve_profile
from gaplab.runs import get_or_train_all, mad_config, resolve_glyphs
from gaplab.training.train import TrainResult

__all__ = [
    "LOGIT_SCALES",
    "temperature_config",
    "temperature_configs",
    "temperature_runs",
    "chapter_runs",
]

#: frozen logit scales of the temperature experiment (1/temperature); CLIP's learnable one is capped at 100
LOGIT_SCALES: tuple[float, ...] = (1.0, 10.0, 20.0, 30.0, 50.0, 100.0)


def temperature_config(
    profile="auto", logit_scale: float = 30.0, *, k: int = 2, seed: int = 0, **overrides
):
    """The MAD recipe with the logit scale frozen at ``logit_scale``."""
    return mad_config(
        profile, k=k, seed=seed, temperature=float(logit_scale), **overrides
    )


def temperature_configs(profile="auto", scales=LOGIT_SCALES, **overrides) -> dict:
    """``{logit_scale: config}`` for each frozen scale: what :func:`temperature_runs` trains."""
    return {float(s): temperature_config(profile, s, **overrides) for s in scales}


def temperature_runs(
    profile="auto", scales=LOGIT_SCALES, *, progress: bool = True, **overrides
) -> dict[float, TrainResult]:
    """``{logit_scale: run}`` for each frozen scale."""
    configs = temperature_configs(profile, scales, **overrides)
    return get_or_train_all(configs, desc="temperature runs", progress=progress)


def chapter_runs(profile="auto", chapter="cone_temperature", *, resolve=resolve_glyphs):
    """``{name: config}`` of every run the cone_temperature chapter trains: the frozen scales, the learnable
    k = 2 run, and that run with the gap closed at initialisation, learnable and at logit scale 100.
    (``resolve`` is accepted for the catalogue's sake; no key is needed here.)"""
    if chapter != "cone_temperature":
        raise ValueError(f"the temperature experiment trains no runs for {chapter!r}")
    prof = resolve_profile(profile)
    out = {f"logit scale {s:g}": c for s, c in temperature_configs(prof).items()}
    out["k=2 seed 0"] = imbalance.imbalance_config(prof, 2, 0)
    for label, extra in (
        ("learnable", {}),
        ("logit scale 100", {"temperature": 100.0}),
    ):
        out[f"k=2 seed 0, gap closed at initialisation, {label}"] = (
            imbalance.imbalance_config(prof, 2, 0, align_init=True, **extra)
        )
    return out
