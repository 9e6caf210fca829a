"""Execution profiles, defined once for every chapter.

``smoke`` runs in seconds (tests), ``cpu`` in minutes on two CPU cores (what the book build runs), ``long``
five times longer on the same cores (hours: recorded in the background, never built), ``paper`` at the
papers' scale on a GPU. ``auto`` picks ``paper`` when CUDA is available, else ``cpu``. In this order they
are the rungs of the scale ladder (:mod:`gaplab.book.ladder`).
Chapters read their knobs from the resolved :class:`Profile`, never from numbers of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Profile", "PROFILES", "PROFILE_NAMES", "resolve_profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    #: whether the papers' claims are expected to hold at this scale, so chapters assert them
    check_claims: bool
    #: repeats of the random-dimension control in the dimension-ablation chapter
    ablation_random_repeats: int
    #: largest number of dimensions ablated in the dimension-ablation chapter
    ablation_max_k: int
    #: neighbourhood size when comparing how the two modalities organise their samples
    neighbour_k: int
    #: MAD training runs (gaplab.runs.mad_config): training images, optimiser steps, batch size, evaluation set
    mad_n_train: int = 30_000
    mad_steps: int = 400
    mad_batch: int = 256
    mad_eval_n: int = 2_000
    mad_eval_every: int = 50
    mad_warmup: int = 50
    #: "auto" uses MNIST when it can be had; the book build stays with procedural glyphs so its numbers do not
    #: depend on what a machine happens to have downloaded
    mad_glyphs: str = "procedural"
    #: seeds per k in the imbalance experiments
    imbalance_seeds: int = 2
    #: also train the imbalance grid with the temperature frozen at its initial value (a second recipe, for
    #: the GPU: it doubles the chapter's training); smoke runs it so that its code is tested
    imbalance_frozen_recipe: bool = False
    #: steps of each fine-tuning run in the entropy intervention, and how much faster its learnable
    #: temperature moves than the other weights
    finetune_steps: int = 200
    finetune_temperature_lr_mult: float = 50.0
    #: the imbalance levels (caption attributes k) and seeds of the remedies chapter's runs: the plain run and
    #: one per training-time remedy at each; k = 1 is a strong imbalance, k = 4 a weak one
    remedy_ks: tuple[int, ...] = (1,)
    remedy_seeds: int = 1
    #: optimiser steps of the free-point toys (Liang et al.'s mismatched pairs), which take ~1 s per 1,000
    toy_steps: int = 1_000


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        check_claims=False,
        ablation_random_repeats=3,
        ablation_max_k=20,
        neighbour_k=10,
        mad_n_train=1_000,
        mad_steps=20,
        mad_batch=64,
        mad_eval_n=256,
        mad_eval_every=5,
        mad_warmup=5,
        finetune_steps=8,
        toy_steps=100,
        imbalance_frozen_recipe=True,
        remedy_ks=(1, 4),
    ),
    "cpu": Profile(
        "cpu",
        check_claims=True,
        ablation_random_repeats=30,
        ablation_max_k=20,
        neighbour_k=10,
    ),
    # chosen by measurement (2026-12-04, two cores): one run of 2,000 steps of 256 took 6.5 min on the book's
    # machine, so its 55 runs take about six hours there (CI's machines train about 1.7 times faster). The
    # learnable logit scale (k = 2, seed 0) ends at 24.4 against 17.1 at cpu and changes by 1.0 % of its final
    # value over the last fifth of training (cpu: 0.7 %), under the 5 % the profile was chosen by; but that is
    # the cosine schedule's doing: in that fifth the scale still moves at about half the largest rate its
    # optimiser allows (gaplab.experiments.temperature.settling), so it is held, not at rest
    "long": Profile(
        "long",
        check_claims=True,
        ablation_random_repeats=100,
        ablation_max_k=20,
        neighbour_k=10,
        mad_n_train=60_000,
        mad_steps=2_000,
        mad_batch=256,
        mad_eval_n=4_000,
        mad_eval_every=100,
        mad_warmup=250,
        imbalance_frozen_recipe=True,
        finetune_steps=1_000,
        toy_steps=5_000,
    ),
    "paper": Profile(
        "paper",
        check_claims=True,
        ablation_random_repeats=100,
        ablation_max_k=20,
        neighbour_k=10,
        mad_n_train=100_000,
        mad_steps=5_000,
        mad_batch=512,
        mad_eval_n=5_000,
        mad_eval_every=250,
        mad_warmup=250,
        mad_glyphs="auto",
        imbalance_seeds=3,
        imbalance_frozen_recipe=True,
        finetune_steps=2_500,
        remedy_ks=(1, 4),
        remedy_seeds=3,
    ),
}
PROFILE_NAMES = (*PROFILES, "auto")


def _has_cuda() -> bool:
    try:
        import torch  # heavy and optional: only "auto" asks
    except ImportError:  # the metrics work without torch; so does profile resolution
        return False
    return bool(torch.cuda.is_available())


def resolve_profile(name: str | Profile) -> Profile:
    """Return the :class:`Profile` called ``name``; ``"auto"`` means ``paper`` on a GPU, else ``cpu``."""
    if isinstance(name, Profile):
        return name
    if not isinstance(name, str):
        raise TypeError(f"profile must be a name (str), got {type(name).__name__}")
    key = name.strip().lower()
    if key == "auto":
        key = "paper" if _has_cuda() else "cpu"
    if key not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}"
        )
    return PROFILES[key]
