"""Fahim et al.'s (2024) fix for the contrastive gap: CLIP's loss plus uniformity and alignment terms, on MAD.

:data:`LOSS_VARIANTS` names the three losses compared (weights 1, as in the paper); :func:`variant_runs` trains
them with the MAD recipe and :func:`embedding_report` measures what the paper reports for each.
:func:`variant_table` and :func:`dimension_table` are the chapter's tables of them.
:func:`same_modality_setups` are the chapter's two-image-tower controls (:mod:`gaplab.experiments.samemodality`),
:func:`same_modality_table` and :func:`history_frame` what the chapter shows of them, and :func:`chapter_runs`
lists every run the contrastive_gap chapter trains, under the run catalogue's names.
"""

from __future__ import annotations

import pandas as pd

from gaplab import metrics as M
from gaplab.experiments import temperature
from gaplab.experiments.samemodality import SameModalityConfig
from gaplab.metrics.uniformity import cross_uniformity
from gaplab.profiles import resolve_profile
from gaplab.runs import get_or_train_all, mad_config, resolve_glyphs
from gaplab.training.train import TrainResult

__all__ = [
    "LOSS_VARIANTS",
    "variant_config",
    "variant_configs",
    "variant_runs",
    "embedding_report",
    "variant_table",
    "dimension_table",
    "CROP_SEEDS",
    "same_modality_setups",
    "same_modality_table",
    "history_frame",
    "chapter_runs",
]

#: label -> TrainConfig overrides. "CUA": CLIP + in-modality uniformity (mean of both sides) + alignment;
#: "CUA + cross-uniformity" adds uniformity across the modalities
LOSS_VARIANTS: dict[str, dict] = {
    "CLIP": {},
    "CUA": {"uniformity_weight": 1.0, "alignment_weight": 1.0},
    "CUA + cross-uniformity": {
        "uniformity_weight": 1.0,
        "alignment_weight": 1.0,
        "cross_uniformity_weight": 1.0,
    },
}


def variant_config(
    profile="auto", variant: str = "CUA", *, k: int = 2, seed: int = 0, **overrides
):
    """The MAD recipe with a loss variant's weights; ``overrides`` change other settings (e.g. ``embed_dim=32``)."""
    if variant not in LOSS_VARIANTS:
        raise ValueError(
            f"unknown loss variant {variant!r}; choose one of {', '.join(LOSS_VARIANTS)}"
        )
    return mad_config(
        profile, k=k, seed=seed, **{**overrides, **LOSS_VARIANTS[variant]}
    )


def variant_configs(profile="auto", variants=tuple(LOSS_VARIANTS), **kwargs) -> dict:
    """``{variant: config}``: what :func:`variant_runs` trains."""
    return {v: variant_config(profile, v, **kwargs) for v in variants}


def variant_runs(
    profile="auto", variants=tuple(LOSS_VARIANTS), *, progress: bool = True, **kwargs
) -> dict[str, TrainResult]:
    return get_or_train_all(
        variant_configs(profile, variants, **kwargs),
        desc="loss variants",
        progress=progress,
    )


def embedding_report(img, txt) -> dict[str, float]:
    """Gap, separability, uniformity and alignment of matched embeddings (rows of ``img``/``txt`` pair up).

    The uniformity keys follow Fahim et al.'s ``Evaluator.get_mscoco_uniformity`` (src/evaluator.py in
    abrar-fahim/contrastive-gap): each modality's own, their mean (``uniformity``, their "total"), and the
    cross-modal one over image-text pairs that do not match."""
    u_img, u_txt = M.uniformity(img), M.uniformity(txt)
    return {
        "l2m": M.l2m(img, txt),
        "rmg": M.rmg(img, txt),
        "linear_separability": M.linear_separability(img, txt, seed=0),
        "image_uniformity": u_img,
        "text_uniformity": u_txt,
        "uniformity": (u_img + u_txt) / 2,
        "cross_uniformity": cross_uniformity(img, txt),
        "alignment": M.alignment(img, txt),
    }


def variant_table(runs: dict[str, TrainResult]) -> pd.DataFrame:
    """One row per run of ``{label: run}`` (e.g. :func:`variant_runs`): its :func:`embedding_report` of the
    held-out embeddings and its final zero-shot digit accuracy."""
    rows = {
        name: {
            **embedding_report(run.eval_image, run.eval_text),
            "zero-shot digit accuracy": run.final["zero_shot_digit_acc"],
        }
        for name, run in runs.items()
    }
    return pd.DataFrame(rows).T


def dimension_table(
    profile="auto", dims=(128, 64, 32), variants=("CLIP", "CUA")
) -> pd.DataFrame:
    """Gap, separability and zero-shot digit accuracy of the loss ``variants`` trained with each embedding size
    in ``dims`` (128, the MAD recipe's own, is its default run): one row per size and loss, sizes in order."""
    rows = []
    for dim in dims:
        extra = {} if dim == 128 else {"embed_dim": dim}
        for name, run in variant_runs(
            profile, variants, progress=False, **extra
        ).items():
            rep = embedding_report(run.eval_image, run.eval_text)
            rows.append(
                {
                    "dimensions": dim,
                    "loss": name,
                    "l2m": rep["l2m"],
                    "linear separability": rep["linear_separability"],
                    "zero-shot digit accuracy": run.final["zero_shot_digit_acc"],
                }
            )
    return pd.DataFrame(rows)


#: the seeds of set-up (i), the same start with a crop view
CROP_SEEDS = (0, 1, 2)


def same_modality_setups(
    profile="auto", logit_scale: float = 100.0, *, numbered: bool = False
) -> dict:
    """``{set-up: SameModalityConfig}`` of the chapter's same-modality controls, all at the fixed ``logit_scale``:
    the same start with a crop view (:data:`CROP_SEEDS`) and with identical inputs, separate seeds with identical
    inputs, and one shared tower. ``numbered`` labels them as the chapter's text does, "(i) same start, ..."."""
    prof = resolve_profile(profile)
    # (the chapter's number, {set-up: its settings}); the shared tower has no number there
    groups = (
        (
            "(i) ",
            {
                f"same start, crop view, seed {seed}": {
                    "init": "same",
                    "views": "crop",
                    "seed": seed,
                }
                for seed in CROP_SEEDS
            },
        ),
        (
            "(ii) ",
            {"same start, identical inputs": {"init": "same", "views": "identical"}},
        ),
        ("(iii) ", {"separate seeds, identical inputs": {"views": "identical"}}),
        ("", {"one shared tower, crop view": {"shared": True, "views": "crop"}}),
    )
    return {
        (number if numbered else "") + name: SameModalityConfig.from_profile(
            prof, temperature=logit_scale, **kw
        )
        for number, setups in groups
        for name, kw in setups.items()
    }


def same_modality_table(results: dict) -> pd.DataFrame:
    """Per same-modality run of ``{label: SameModalityResult}``: L2M and linear separability of its evaluation
    views at step 0 (the untrained towers) and at the end, one row per label."""
    rows = {}
    for name, r in results.items():
        start = embedding_report(r.initial_a, r.initial_b)
        end = embedding_report(r.eval_a, r.eval_b)
        rows[name] = {
            "L2M, step 0": start["l2m"],
            "L2M, end": end["l2m"],
            "separability, step 0": start["linear_separability"],
            "separability, end": end["linear_separability"],
        }
    return pd.DataFrame(rows).T


def history_frame(results: dict, by: str = "set-up") -> pd.DataFrame:
    """Every history row of the runs in ``{label: result}``, one frame, the label in column ``by``."""
    return pd.DataFrame(
        [{by: name, **h} for name, r in results.items() for h in r.history]
    )


def chapter_runs(profile="auto", chapter="contrastive_gap", *, resolve=resolve_glyphs):
    """``{name: config}`` of every run the contrastive_gap chapter trains: the same-modality set-ups, the
    image-caption model at logit scale 100, the loss variants, and CLIP and CUA at 64 and 32 dimensions.
    (``resolve`` is accepted for the catalogue's sake; no key is needed here.)"""
    if chapter != "contrastive_gap":
        raise ValueError(f"the contrastive experiments train no runs for {chapter!r}")
    prof = resolve_profile(profile)
    out = {
        "same-modality " + label: cfg
        for label, cfg in same_modality_setups(prof).items()
    }
    out["logit scale 100"] = temperature.temperature_config(prof, 100.0)
    out.update({f"loss {v}": c for v, c in variant_configs(prof).items()})
    for dim in (64, 32):
        narrow = variant_configs(prof, ("CLIP", "CUA"), embed_dim=dim)
        out.update({f"loss {v}, {dim} dimensions": c for v, c in narrow.items()})
    return out
