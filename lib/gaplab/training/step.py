"""One optimiser step of a CLIP on MAD, and what sets it up: AdamW's parameter groups, the learning-rate
schedule (linear warmup, cosine decay to 0: a constant rate made the gap jump between checkpoints in a
prototype), the autocast precision, the loss with its optional terms, and the logit scale's cap at 100."""

from __future__ import annotations

import contextlib
import math

import torch

from gaplab.training import losses
from gaplab.training.config import MADRecipe, TrainConfig
from gaplab.training.models import mad_image_input
from gaplab.training.precision import Precision, choose_precision

__all__ = [
    "lr_at",
    "set_learning_rate",
    "make_optimizer",
    "param_groups",
    "precision_autocast",
    "batch_embeddings",
    "training_loss",
    "apply_gradients",
    "train_step",
    "flush_denormal",
]


def lr_at(step: int, cfg: MADRecipe) -> float:
    """The learning rate at ``step``: linear warmup over ``cfg.warmup`` steps, then cosine decay to 0."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rate(opt, step: int, cfg: TrainConfig) -> None:
    """Warmup and cosine decay: every group's rate for ``step``, times its ``lr_mult``."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg) * group["lr_mult"]


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on gains, biases and the logit scale (parameters with fewer than 2 dimensions).
    The logit scale has its own group, whose rate is ``temperature_lr_mult`` times the others'."""
    return torch.optim.AdamW(param_groups(model.named_parameters(), cfg), lr=cfg.lr)


def param_groups(named, cfg: TrainConfig, *, stacked: bool = False) -> list[dict]:
    """:func:`make_optimizer`'s parameter groups from ``(name, parameter)`` pairs, in the model's order.

    ``stacked``: each parameter holds several runs' copies along a first dimension (see :mod:`gaplab.training.grid`),
    so a parameter's own number of dimensions is one less.
    """
    named = list(named)
    extra = 1 if stacked else 0
    scale = [p for n, p in named if n.endswith("logit_scale")]
    rest = [p for n, p in named if not n.endswith("logit_scale")]
    return [
        {
            "params": [p for p in rest if p.ndim - extra >= 2],
            "weight_decay": cfg.weight_decay,
            "lr_mult": 1.0,
        },
        {
            "params": [p for p in rest if p.ndim - extra < 2],
            "weight_decay": 0.0,
            "lr_mult": 1.0,
        },
        {
            "params": scale,
            "weight_decay": 0.0,
            "lr_mult": float(cfg.temperature_lr_mult),
        },
    ]


def precision_autocast(device, precision: Precision):
    """``precision``'s autocast on ``device``'s type, or no autocast at all (float32)."""
    if not precision.dtype:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=precision.dtype)


def batch_embeddings(model, images_uint8: torch.Tensor, tokens: torch.Tensor):
    """A training batch's normalised image and text embeddings, in float32 whatever the autocast."""
    img = model.encode_image(mad_image_input(images_uint8)).float()
    txt = model.encode_text(tokens).float()
    return (
        torch.nn.functional.normalize(img, dim=-1),
        torch.nn.functional.normalize(txt, dim=-1),
    )


def training_loss(img, txt, logit_scale: torch.Tensor, cfg: TrainConfig):
    """CLIP's loss at ``logit_scale`` (capped at 100, as in CLIP) plus the configured uniformity, alignment
    and cross-uniformity terms, from normalised embeddings."""
    loss = losses.clip_loss(img, txt, logit_scale.exp().clamp(max=100))
    if cfg.uniformity_weight:
        loss = (
            loss
            + cfg.uniformity_weight
            * (losses.uniformity(img) + losses.uniformity(txt))
            / 2
        )
    if cfg.alignment_weight:
        loss = loss + cfg.alignment_weight * losses.alignment(img, txt)
    if cfg.cross_uniformity_weight:
        loss = loss + cfg.cross_uniformity_weight * losses.cross_uniformity(img, txt)
    return loss


def apply_gradients(loss, optimizer, scaler, logit_scale: torch.Tensor) -> None:
    """Backpropagate ``loss`` and step ``optimizer`` (through ``scaler`` when it is enabled), then cap the
    logit scale at 100."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(
            optimizer
        )  # skipped when the scaled gradients overflowed; the scale then shrinks
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logit_scale.clamp_(max=math.log(100.0))


def train_step(
    model,
    optimizer,
    images_uint8: torch.Tensor,
    tokens: torch.Tensor,
    cfg: TrainConfig,
    precision: Precision | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> torch.Tensor:
    """One optimiser step on a batch: CLIP loss plus the configured uniformity/alignment terms. Returns the loss.

    The encoders run under ``precision``'s autocast (default: :func:`gaplab.training.precision.choose_precision` for the
    batch's device); the loss is computed in float32. With float16, pass the run's gradient ``scaler``. The logit
    scale is capped at 100 as in CLIP.
    """
    device = images_uint8.device
    precision = precision or choose_precision(device)
    if precision.scaler and scaler is None:
        raise ValueError(
            "float16 training needs a gradient scaler: pass scaler=gaplab.training.precision.make_scaler(...)"
        )
    model.train()
    with precision_autocast(device, precision):
        img, txt = batch_embeddings(model, images_uint8, tokens)
    loss = training_loss(img, txt, model.logit_scale, cfg)
    apply_gradients(loss, optimizer, scaler, model.logit_scale)
    return loss.detach()


@contextlib.contextmanager
def flush_denormal():
    """Flush denormal floats to zero inside the block: they slowed a prototype's CPU training 2-3x late in a run.

    The setting is processor-wide state, so it is switched back off afterwards (torch has no getter to restore
    an earlier value; off is the default); left on, it breaks code that needs subnormal floats, such as
    hypothesis's float strategies.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
