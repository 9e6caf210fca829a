"""What determines a MAD training run: its configuration (and so its cache key), built from a profile, and its result.

:class:`MADRecipe` holds the settings every MAD run has (data, model preset, optimiser schedule, evaluation) and
builds them from a profile (:meth:`MADRecipe.from_profile`); :class:`TrainConfig` adds what a CLIP on images and
captions varies (caption attributes ``k``, loss terms, fine-tuning), and the same-modality control
(:class:`gaplab.experiments.samemodality.SameModalityConfig`) adds its two towers' settings to the same recipe.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gaplab.data.mad import FACTORS, GLYPH_SOURCES
from gaplab.profiles import resolve_profile
from gaplab.training.models import MAD_PRESETS, check_temperature

__all__ = [
    "FinalEvaluation",
    "MADRecipe",
    "TrainConfig",
    "TrainResult",
    "check_positive_ints",
]


def check_positive_ints(cfg, names) -> None:
    """Raise ValueError naming the first of ``names`` that is not a positive integer on ``cfg``."""
    for name in names:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(
                f"{name}={v!r} is not allowed; it must be a positive integer"
            )


def _bad(cfg, name, allowed):
    raise ValueError(f"{name}={getattr(cfg, name)!r} is not allowed; {allowed}")


@dataclass(frozen=True)
class MADRecipe:
    """The settings every MAD training run has: data, model preset, optimiser schedule and evaluation."""

    n_train: int = 30_000
    data_seed: int = 0
    glyphs: str = "procedural"
    preset: str = "mad-cnn"
    #: "learnable", or a logit scale to freeze at
    temperature: float | str = "learnable"
    steps: int = 400
    batch_size: int = 256
    lr: float = 1e-3
    #: the logit scale's learning rate as a multiple of ``lr``. CLIP's temperature settles over ~10^5 steps;
    #: a run of a few hundred steps needs a faster one to reach where the data would take it
    temperature_lr_mult: float = 1.0
    weight_decay: float = 0.05
    warmup: int = 50
    seed: int = 0
    eval_n: int = 2000
    eval_every: int = 50

    def __post_init__(self):
        check_positive_ints(
            self, ("n_train", "steps", "batch_size", "eval_n", "eval_every")
        )
        if self.glyphs not in GLYPH_SOURCES:
            _bad(self, "glyphs", f"choose one of {', '.join(GLYPH_SOURCES)}")
        if self.preset not in MAD_PRESETS:
            _bad(self, "preset", f"choose one of {', '.join(MAD_PRESETS)}")
        check_temperature(self.temperature)
        if self.batch_size > self.n_train:
            _bad(self, "batch_size", f"it cannot exceed n_train={self.n_train}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.warmup >= 0):
            raise ValueError(
                "lr must be positive, weight_decay and warmup non-negative"
            )
        if not (
            isinstance(self.temperature_lr_mult, (int, float))
            and self.temperature_lr_mult > 0
            and math.isfinite(self.temperature_lr_mult)
        ):
            _bad(self, "temperature_lr_mult", "it must be a positive finite number")

    @classmethod
    def from_profile(cls, profile="auto", **overrides):
        """The MAD recipe of a profile (data size, steps, batch, warmup, evaluation, glyphs), with any field
        overridden (e.g. ``TrainConfig.from_profile("cpu", k=3)``)."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = set(overrides) - set(names)
        if unknown:
            raise ValueError(
                f"unknown settings {sorted(unknown)}; {cls.__name__} has {', '.join(names)}"
            )
        prof = resolve_profile(profile)
        base = dict(
            n_train=prof.mad_n_train,
            steps=prof.mad_steps,
            batch_size=prof.mad_batch,
            eval_n=prof.mad_eval_n,
            eval_every=prof.mad_eval_every,
            warmup=prof.mad_warmup,
            glyphs=prof.mad_glyphs,
        )
        return cls(**{**base, **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainConfig(MADRecipe):
    """Everything that determines a run (and so its cache key): the recipe, and what the captions and loss are."""

    k: int = 2
    object_factor: str = "digit"
    uniformity_weight: float = 0.0
    alignment_weight: float = 0.0
    cross_uniformity_weight: float = 0.0
    #: optional weights to start from: ``"run:<key>"`` (a cached run, found wherever the cache search path has
    #: it, so the key does not depend on where a cache lives) or a path to a ``final.pt``; fine-tuning
    init_from: str | None = None
    #: the joint embedding size; None keeps the preset's (Fahim et al. sweep 128, 64 and 32)
    embed_dim: int | None = None
    #: close the gap at initialisation as Liang et al. (2022, Sec. 4.4) do: an orthogonal map of the text
    #: embeddings onto their images', folded into the text projection before the first step
    align_init: bool = False

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.k, int) or not 0 <= self.k <= 5:
            _bad(self, "k", "k must be an integer in 0..5")
        if self.object_factor not in FACTORS:
            _bad(self, "object_factor", f"choose one of {', '.join(FACTORS)}")
        if self.init_from is not None and (
            not isinstance(self.init_from, str) or not self.init_from.strip()
        ):
            _bad(self, "init_from", "give 'run:<key>' or a path to a final.pt")
        if self.embed_dim is not None and (
            isinstance(self.embed_dim, bool)
            or not isinstance(self.embed_dim, int)
            or self.embed_dim < 2
        ):
            _bad(
                self,
                "embed_dim",
                "it must be an integer of at least 2, or None for the preset's",
            )
        if not isinstance(self.align_init, bool):
            _bad(self, "align_init", "it must be True or False")
        if self.align_init and self.init_from:
            _bad(
                self,
                "align_init",
                "a fine-tuning run starts from trained weights; aligning them is not this experiment",
            )


class FinalEvaluation:
    """``final``: a trained run's last evaluation by name (``result.final["l2m"]``), what its chapter reports;
    for any result that keeps its evaluations in ``history``."""

    history: list

    @property
    def final(self) -> dict:
        if not self.history:
            raise ValueError(
                "this run has no evaluation yet: its history is empty (was it trained?)"
            )
        return dict(self.history[-1])


@dataclass
class TrainResult(FinalEvaluation):
    config: TrainConfig
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    #: embeddings of the held-out evaluation set after training, with its factors and caption tokens
    eval_image: np.ndarray | None = None
    eval_text: np.ndarray | None = None
    eval_factors: dict | None = None
    seconds: float = 0.0
    #: the autocast precision the run trained in ("float32" on the CPU; see gaplab.training.precision)
    precision: str = "float32"
