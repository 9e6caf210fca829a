"""What determines a MAD training run: its configuration (and so its cache key), built from a profile, and its result.

:class:`MADRecipe` holds the settings every MAD run has (data, model preset, optimiser schedule, evaluation) and
builds them from a profile (:meth:`MADRecipe.from_profile`); :class:`TrainConfig` adds what a CLIP on images and
captions varies (caption attributes ``k``, loss terms, fine-tuning, the training-time remedies of the gap), and the
same-modality control (:class:`gaplab.experiments.samemodality.SameModalityConfig`) adds its two towers' settings
to the same recipe.

The remedies' defaults (no schedule, ``exp``, no swapping, CLIP's loss, no normalisation layer) train exactly as
the trainer did before they existed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gaplab.data.mad import FACTORS, GLYPH_SOURCES
from gaplab.profiles import resolve_profile
from gaplab.training.models import MAD_PRESETS, TEMPERATURE_PARAMS, check_temperature
from gaplab.training.precision import check_cpu_precision, cpu_precision_default

__all__ = [
    "FinalEvaluation",
    "MADRecipe",
    "TrainConfig",
    "TrainResult",
    "check_positive_ints",
    "LOSSES",
    "SWAP_MODES",
]

#: the contrastive losses a MAD run trains with: CLIP's softmax loss, or SigLIP's sigmoid loss (Zhai et al. 2023)
LOSSES = ("clip", "sigmoid")
#: Yaras et al.'s two ways of swapping between the modalities' embeddings (see :func:`gaplab.training.step.swap_modalities`)
SWAP_MODES = ("hard", "soft")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


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
        if "cpu_precision" in names:
            base["cpu_precision"] = cpu_precision_default()
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
    #: Yaras et al.'s three remedies below: their method section could not be read offline, so the forms follow
    #: a secondary summary of the paper (and the softplus of a project that implements it) and are the book's
    #: reading until checked against the paper.
    #: temperature scheduling (Yaras et al. 2025, the scheduling rows of their Table 2): instead of being learned,
    #: the temperature 1/scale goes linearly from 1/``temperature`` (a number: the start's logit scale) to
    #: 1/``temperature_end`` over the run's steps (see :func:`gaplab.training.step.scheduled_logit_scale`).
    #: None: no schedule
    temperature_end: float | None = None
    #: how a learnable logit scale is parameterised: "exp" (CLIP) or "softplus" (Yaras et al.'s
    #: reparameterisation; see :data:`gaplab.training.models.TEMPERATURE_PARAMS`)
    temperature_param: str = "exp"
    #: modality swapping (Yaras et al. 2025): the probability that a training step swaps entries between the
    #: image and text embeddings of its pairs before the loss (:func:`gaplab.training.step.swap_modalities`)
    swap_prob: float = 0.0
    #: "hard" (entries exchanged, each with probability 1/2) or "soft" (entries mixed with uniform weights)
    swap_mode: str = "hard"
    #: "clip" (softmax cross-entropy both ways) or "sigmoid" (SigLIP, with a learnable logit bias)
    loss: str = "clip"
    #: a normalisation layer on each encoder's embedding, as in I0T's trainable variant (An et al. 2025; see
    #: :func:`gaplab.training.models.add_embedding_norm`)
    embed_norm: bool = False
    #: "float32", or "bfloat16" autocast where the processor has bfloat16 instructions: what the run trains
    #: in on the CPU (a GPU's precision follows its hardware; see :mod:`gaplab.training.precision`). Part of the
    #: key, so a bfloat16 run is never served in place of a float32 one. Default ``$GAPLAB_CPU_PRECISION``
    #: (float32) when built from a profile
    cpu_precision: str = "float32"

    def __post_init__(self):
        super().__post_init__()
        check_cpu_precision(self.cpu_precision)
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
        self._check_remedies()

    def _check_remedies(self) -> None:
        if self.temperature_end is not None:
            if not (_is_number(self.temperature_end) and self.temperature_end > 0):
                _bad(
                    self,
                    "temperature_end",
                    "it must be a positive logit scale to end the schedule at, or None",
                )
            if self.temperature == "learnable":
                _bad(
                    self,
                    "temperature_end",
                    "a schedule replaces the learned temperature: give temperature=<the logit scale it "
                    "starts at> (a number), not 'learnable'",
                )
            if self.temperature_param != "exp":
                _bad(
                    self,
                    "temperature_end",
                    f"a scheduled temperature is not learned, so temperature_param="
                    f"{self.temperature_param!r} would change nothing; leave it 'exp'",
                )
        if self.temperature_param not in TEMPERATURE_PARAMS:
            _bad(
                self,
                "temperature_param",
                f"choose one of {', '.join(TEMPERATURE_PARAMS)}",
            )
        if self.temperature_param != "exp" and self.temperature != "learnable":
            _bad(
                self,
                "temperature_param",
                "a reparameterisation changes how a learned temperature moves; a frozen one "
                f"(temperature={self.temperature!r}) does not move: use temperature='learnable'",
            )
        if not (_is_number(self.swap_prob) and 0.0 <= self.swap_prob <= 1.0):
            _bad(self, "swap_prob", "it must be a probability in [0, 1]")
        if self.swap_mode not in SWAP_MODES:
            _bad(self, "swap_mode", f"choose one of {', '.join(SWAP_MODES)}")
        if self.swap_mode != "hard" and not self.swap_prob:
            _bad(
                self,
                "swap_mode",
                "it has no effect without swapping: give swap_prob > 0, or leave swap_mode 'hard'",
            )
        if self.loss not in LOSSES:
            _bad(self, "loss", f"choose one of {', '.join(LOSSES)}")
        if not isinstance(self.embed_norm, bool):
            _bad(self, "embed_norm", "it must be True or False")
        if self.embed_norm and self.align_init:
            _bad(
                self,
                "embed_norm",
                "align_init folds a rotation into the text projection, and the normalisation layer after "
                "the projection (per coordinate) does not keep a rotation; choose one of the two",
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
