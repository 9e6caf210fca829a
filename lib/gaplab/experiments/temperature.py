"""Liang et al.'s (2022) temperature experiment on MAD models.

:func:`temperature_runs` trains the MAD recipe with the logit scale frozen at each of :data:`LOGIT_SCALES` (a low
temperature is a high logit scale) and :func:`temperature_table` reads them. :func:`align_init_runs` is Liang et
al.'s (Sec. 4.4) "closing the gap at initialisation": the k = 2 run with its gap closed before the first step,
beside the same run without, at logit scale 100 and with the learnable temperature; :func:`align_init_summary`
reads them. The shift experiments live in :mod:`gaplab.experiments.landscape`. :func:`chapter_runs` lists every
run the cone_temperature chapter trains, under the run catalogue's names.
"""

from __future__ import annotations

import math

import pandas as pd

from gaplab.experiments import imbalance
from gaplab.profiles import resolve_profile
from gaplab.runs import get_or_train, get_or_train_all, mad_config, resolve_glyphs
from gaplab.training.train import TrainResult, lr_at

__all__ = [
    "LOGIT_SCALES",
    "temperature_config",
    "temperature_configs",
    "temperature_runs",
    "temperature_table",
    "ALIGN_INIT_LABELS",
    "align_init_configs",
    "align_init_runs",
    "align_init_summary",
    "chapter_runs",
    "settling",
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


def temperature_table(runs: dict) -> pd.DataFrame:
    """One row per ``{logit_scale: run}`` of :func:`temperature_runs`, in the dict's order: the gap (L2M, RMG),
    zero-shot digit accuracy and entropy after training, and the L2M at step 0."""
    rows = [
        {
            "logit scale": s,
            "l2m": r.final["l2m"],
            "rmg": r.final["rmg"],
            "zero-shot digit accuracy": r.final["zero_shot_digit_acc"],
            "entropy": r.final["entropy"],
            "l2m at init": r.history[0]["l2m"],
        }
        for s, r in runs.items()
    ]
    return pd.DataFrame(rows)


#: the runs of :func:`align_init_configs`, as the chapter's chart names them
ALIGN_INIT_LABELS = {
    "plain": "logit scale 100, as initialised",
    "aligned": "logit scale 100, gap closed at init",
    "learnable_plain": "learnable, as initialised",
    "learnable_aligned": "learnable, gap closed at init",
}


def align_init_configs(profile="auto") -> dict:
    """``{key: config}`` of the k = 2, seed 0 run with and without its gap closed at initialisation
    (``align_init=True``), at logit scale 100 (Liang et al.'s temperature; "plain" is the temperature run at
    100) and learnable ("learnable_plain" is the imbalance grid's run); keys as in :data:`ALIGN_INIT_LABELS`."""
    prof = resolve_profile(profile)
    return {
        "plain": temperature_config(prof, 100.0),
        "aligned": imbalance.imbalance_config(
            prof, 2, 0, align_init=True, temperature=100.0
        ),
        "learnable_plain": imbalance.imbalance_config(prof, 2, 0),
        "learnable_aligned": imbalance.imbalance_config(prof, 2, 0, align_init=True),
    }


def align_init_runs(profile="auto", *, progress: bool = True) -> dict[str, TrainResult]:
    """``{key: run}`` of :func:`align_init_configs`, each from the run cache (trained one by one when missing)."""
    configs = align_init_configs(profile)
    return {key: get_or_train(c, progress=progress) for key, c in configs.items()}


def align_init_summary(runs: dict) -> tuple[dict, dict]:
    """What :func:`align_init_runs` shows: ``(per_run, overall)``.

    ``per_run``: ``{key: {"l2m_start", "l2m_end", "acc_end"}}`` (L2M at step 0 and after training, zero-shot
    digit accuracy after training). ``overall``: the share of the gap that returns (aligned over plain L2M after
    training) at logit scale 100 (``share``) and learnable (``learnable_share``), and the learnable aligned
    run's highest L2M (``learnable_peak``), the step it is reached at and its final logit scale.
    """
    per_run = {
        key: {
            "l2m_start": run.history[0]["l2m"],
            "l2m_end": run.final["l2m"],
            "acc_end": run.final["zero_shot_digit_acc"],
        }
        for key, run in runs.items()
    }
    learnable = runs["learnable_aligned"]
    peak = max(learnable.history, key=lambda h: h["l2m"])
    overall = {
        "share": runs["aligned"].final["l2m"] / runs["plain"].final["l2m"],
        "learnable_share": learnable.final["l2m"]
        / runs["learnable_plain"].final["l2m"],
        "learnable_peak": peak["l2m"],
        "learnable_peak_step": int(peak["step"]),
        "learnable_scale": learnable.final["logit_scale"],
    }
    return per_run, overall


def chapter_runs(profile="auto", chapter="cone_temperature", *, resolve=resolve_glyphs):
    """``{name: config}`` of every run the cone_temperature chapter trains: the frozen scales, the learnable
    k = 2 run, and that run with the gap closed at initialisation, learnable and at logit scale 100.
    (``resolve`` is accepted for the catalogue's sake; no key is needed here.)"""
    if chapter != "cone_temperature":
        raise ValueError(f"the temperature experiment trains no runs for {chapter!r}")
    prof = resolve_profile(profile)
    out = {f"logit scale {s:g}": c for s, c in temperature_configs(prof).items()}
    aligned = align_init_configs(prof)
    out["k=2 seed 0"] = aligned["learnable_plain"]
    closed = "k=2 seed 0, gap closed at initialisation"
    out[f"{closed}, learnable"] = aligned["learnable_aligned"]
    out[f"{closed}, logit scale 100"] = aligned["aligned"]
    return out


def settling(result: TrainResult, fraction: float = 0.2) -> dict:
    """How far a run's learnable logit scale has come to rest by its end, over its last ``fraction`` of steps.

    ``change``: the scale's change over that stretch as a share of its final value. With a cosine schedule
    this is small at any length, since the learning rate itself runs out, so it is read beside ``drive``: the
    change of the log-scale (the parameter CLIP learns) as a share of the largest change its optimiser could
    have made there, the sum of the learning rates over those steps (Adam moves a parameter by about its rate
    per step at most, when every gradient points one way). A drive near 1 is a scale still pushed one way at
    full speed, held only by its learning rate; near 0, one whose gradient has turned: at rest.
    Also ``start``/``end`` (the scale at both ends of the stretch) and ``steps`` (the stretch's first and last).
    """
    cfg = result.config
    if cfg.temperature != "learnable" or cfg.temperature_param != "exp":
        raise ValueError(
            "settling reads a learnable temperature parameterised as CLIP's (exp); this run has "
            f"temperature={cfg.temperature!r}, temperature_param={cfg.temperature_param!r}"
        )
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    rows = [r for r in result.history if "logit_scale" in r]
    first = cfg.steps * (1 - fraction)
    before = [r for r in rows if r["step"] <= first]
    if not before or rows[-1]["step"] <= before[-1]["step"]:
        raise ValueError(
            f"the run's history has no evaluation before and after step {first:g}; "
            "evaluate more often (eval_every)"
        )
    a, b = before[-1], rows[-1]
    budget = sum(
        lr_at(s, cfg) * cfg.temperature_lr_mult for s in range(a["step"], b["step"])
    )
    moved = math.log(b["logit_scale"]) - math.log(a["logit_scale"])
    return {
        "start": a["logit_scale"],
        "end": b["logit_scale"],
        "steps": (a["step"], b["step"]),
        "change": (b["logit_scale"] - a["logit_scale"]) / b["logit_scale"],
        "drive": moved / budget if budget > 0 else float("nan"),
    }
