"""Training losses: CLIP's symmetric contrastive loss, SigLIP's sigmoid loss (through open_clip), and the
uniformity / alignment terms of Wang and Isola (2020) as Fahim et al. (2024) add them to it. Inputs are
L2-normalised embeddings of matched rows."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = [
    "clip_loss",
    "sigmoid_loss",
    "swap_symmetric_clip_loss",
    "uniformity",
    "cross_uniformity",
    "alignment",
]


def clip_loss(
    img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Mean of the image->text and text->image cross-entropies of logits ``logit_scale * img @ txt.T``."""
    logits = logit_scale * img @ txt.t()
    target = torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


@functools.cache
def _siglip():
    # open_clip takes seconds to import: only a run with the sigmoid loss needs it here
    from open_clip.loss import SigLipLoss

    return SigLipLoss()


def sigmoid_loss(
    img: torch.Tensor,
    txt: torch.Tensor,
    logit_scale: torch.Tensor,
    logit_bias: torch.Tensor,
) -> torch.Tensor:
    """SigLIP's loss (Zhai et al. 2023, Sec. 3.2) on one batch, computed by ``open_clip.loss.SigLipLoss``.

    Every pair (i, j) is a binary decision with label z_ij = 1 on the diagonal (a matched pair) and -1 off it,
    on the logit ``logit_scale * img_i . txt_j + logit_bias``; the loss is
    ``-sum_ij log sigmoid(z_ij * logit_ij) / n`` for a batch of n pairs (the SigLIP paper's normalisation by
    the batch size, which open_clip keeps). One process: no exchange of text embeddings between devices.
    """
    if img.shape != txt.shape:
        raise ValueError(
            f"img and txt must be matched rows of one shape; got {tuple(img.shape)} and {tuple(txt.shape)}"
        )
    return _siglip()(img, txt, logit_scale, logit_bias)


def swap_symmetric_clip_loss(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """CLIP's loss (:func:`clip_loss`) written so that swapping ``a`` and ``b`` swaps its two
    terms operation for operation.

    CLIP's usual form transposes one logit matrix for the second term, and the transposed products round
    differently: two equal towers reading equal inputs then get gradients that differ in the last bits, and
    training magnifies that into a gap. Here each term has its own product, so equal towers get bitwise equal
    gradients and stay equal, as they would in exact arithmetic.
    """
    target = torch.arange(len(a), device=a.device)
    ab = F.cross_entropy(logit_scale * a @ b.t(), target)
    ba = F.cross_entropy(logit_scale * b @ a.t(), target)
    return (ab + ba) / 2


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """log of the mean over pairs i != j of exp(-t ||x_i - x_j||^2): lower is more uniform on the sphere."""
    sq = torch.pdist(x).pow(2)
    return torch.logsumexp(-t * sq, dim=0) - torch.log(
        torch.tensor(float(sq.numel()), device=x.device)
    )


def cross_uniformity(x: torch.Tensor, y: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity across modalities: pairs (x_i, y_j) with i != j."""
    sq = torch.cdist(x, y).pow(2)
    off = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    vals = -t * sq[off]
    return torch.logsumexp(vals, dim=0) - torch.log(
        torch.tensor(float(vals.numel()), device=x.device)
    )


def alignment(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between matched rows."""
    return (x - y).pow(2).sum(dim=1).mean()
