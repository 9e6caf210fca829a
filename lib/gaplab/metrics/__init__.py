"""Metrics of the modality gap, object bias, retrieval and dimension ablation, exact to the papers' definitions."""

from gaplab.metrics.ablation import (
    ablate,
    ablation_curve,
    gap_share,
    mean_differences,
    random_ablation_curve,
    top_gap_dimensions,
)
from gaplab.metrics.bias import moad, similarity_contrast
from gaplab.metrics.entropy import logits_entropy
from gaplab.metrics.gap import (
    l2i,
    l2m,
    linear_separability,
    mean_cosine,
    neighbour_overlap,
    rmg,
)
from gaplab.metrics.remedies import (
    center,
    gap_statistics,
    modality_means,
    remove_gap_vector,
    standardise,
)
from gaplab.metrics.retrieval import recall_at_k, zero_shot_accuracy
from gaplab.metrics.uniformity import alignment, cross_uniformity, uniformity

__all__ = [
    "ablate",
    "ablation_curve",
    "alignment",
    "center",
    "cross_uniformity",
    "gap_share",
    "gap_statistics",
    "l2i",
    "l2m",
    "linear_separability",
    "logits_entropy",
    "mean_cosine",
    "mean_differences",
    "modality_means",
    "moad",
    "neighbour_overlap",
    "random_ablation_curve",
    "recall_at_k",
    "remove_gap_vector",
    "rmg",
    "similarity_contrast",
    "standardise",
    "top_gap_dimensions",
    "uniformity",
    "zero_shot_accuracy",
]
