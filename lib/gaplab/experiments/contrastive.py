"""Fahim et al.'s (2024) fix for the contrastive gap: CLIP's loss plus uniformity and alignment terms, on MAD.

:data:`LOSS_VARIANTS` names the three losses compared (weights 1, as in the paper); :func:`variant_runs` trains
them with the MAD recipe and :func:`embedding_report` measures what the paper reports for each.
"""

from __future__ import annotations

from gaplab import metrics as M
from gaplab.metrics.uniformity import cross_uniformity
from gaplab.runs import get_or_train_all, mad_config
from gaplab.training.train import TrainResult

__all__ = ["LOSS_VARIANTS", "variant_config", "variant_runs", "embedding_report"]

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


def variant_runs(
    profile="auto", variants=tuple(LOSS_VARIANTS), *, progress: bool = True, **kwargs
) -> dict[str, TrainResult]:
    return get_or_train_all(
        {v: variant_config(profile, v, **kwargs) for v in variants},
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
