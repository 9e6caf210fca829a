"""One optimiser step of a CLIP on MAD, and what sets it up: AdamW's parameter groups, the learning-rate
schedule (linear warmup, cosine decay to 0: a constant rate made the gap jump between checkpoints in a
prototype), the autocast precision, the loss with its optional terms, and the logit scale's cap at 100.

Two training-time remedies of the gap act here, both from Yaras et al. (2025): a temperature that follows a
schedule instead of being learned (:func:`scheduled_logit_scale`) and modality swapping
(:func:`swap_modalities`). SigLIP's sigmoid loss replaces CLIP's when the run's ``loss`` says so. Yaras et
al.'s settings and table places quoted below come from a secondary summary of their paper (its method
section could not be read offline): the book's reading until checked against the paper."""

from __future__ import annotations

import contextlib
import math

import torch

from gaplab.training import losses
from gaplab.training.config import MADRecipe, TrainConfig
from gaplab.training.models import (
    MAX_LOGIT_SCALE,
    logit_scale_param,
    logit_scale_value,
    mad_image_input,
    set_temperature,
)
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
    "scheduled_logit_scale",
    "follow_temperature_schedule",
    "current_logit_scale",
    "logit_scale_cap",
    "swap_generator",
    "swap_modalities",
]

#: offset of the generators that draw a step's modality swap (see :func:`swap_generator`); far from the seeds
#: the batch stream (seed + 1) and the alignment at initialisation (seed + 2) use
_SWAP_SEED = 0x5A17_0000


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


def scheduled_logit_scale(cfg: TrainConfig, step: int) -> float | None:
    """The logit scale optimiser step ``step`` (0-based) trains at under ``cfg``'s temperature schedule, or
    None when ``cfg`` has none.

    Yaras et al. (2025, arXiv 2412.07909v2) schedule the temperature tau (the logit scale is 1/tau) instead
    of learning it: tau rises linearly over training, from 0.01 to between 0.02 and 0.05 in their MSCOCO runs
    (the temperature-scheduling rows of their Table 2). Here tau goes linearly from 1/``cfg.temperature`` at
    the first step to 1/``cfg.temperature_end`` at the last, so the last step trains at the end value and the
    stored model holds it.
    """
    if getattr(cfg, "temperature_end", None) is None:
        return None
    if not 0 <= step < cfg.steps:
        raise ValueError(f"step={step!r} is outside the run's 0..{cfg.steps - 1}")
    start, end = 1.0 / float(cfg.temperature), 1.0 / float(cfg.temperature_end)
    progress = step / max(1, cfg.steps - 1)
    return 1.0 / (start + (end - start) * progress)


def follow_temperature_schedule(model, cfg: TrainConfig, step: int) -> None:
    """Set ``model``'s frozen logit scale to the one step ``step`` trains at; nothing without a schedule."""
    scale = scheduled_logit_scale(cfg, step)
    if scale is not None:
        set_temperature(model, scale, cfg.temperature_param)


def current_logit_scale(logit_scale: torch.Tensor, cfg) -> torch.Tensor:
    """The logit scale the loss uses: the parameter read as ``cfg.temperature_param`` says, capped at 100."""
    param = getattr(cfg, "temperature_param", "exp")
    return logit_scale_value(logit_scale, param).clamp(max=MAX_LOGIT_SCALE)


def logit_scale_cap(cfg) -> float:
    """The largest value the ``logit_scale`` parameter may take: the one that stands for a scale of 100."""
    return logit_scale_param(MAX_LOGIT_SCALE, getattr(cfg, "temperature_param", "exp"))


def swap_generator(cfg: TrainConfig, step: int, device) -> torch.Generator:
    """The generator that draws step ``step``'s swap: a function of the run's seed and the step alone, so the
    batch stream is the one an unswapped run draws and a resumed run swaps as an uninterrupted one does."""
    return torch.Generator(device=device).manual_seed(
        _SWAP_SEED + cfg.seed * 1_000_003 + step
    )


def swap_modalities(
    img: torch.Tensor,
    txt: torch.Tensor,
    prob: float,
    mode: str,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Modality swapping (Yaras et al. 2025): with probability ``prob`` this step, exchange entries between
    the image and text embeddings of each pair; otherwise return them as they are.

    Yaras et al. break the two modalities' separate cones by mixing their features coordinate by coordinate:
    "hard" swapping exchanges entry (i, j) of the two embedding matrices with probability 1/2, each entry on
    its own; "soft" swapping replaces both by convex mixtures, ``lam * x + (1 - lam) * y`` and
    ``lam * y + (1 - lam) * x``, with ``lam`` uniform on [0, 1] per entry (hard swapping is the soft one with
    ``lam`` in {0, 1}); a step swaps with probability ``prob`` (the rates in their Table 2 on MSCOCO: 1e-3
    hard, 5e-2 soft; Table 5 varies the hard rate up to 1). The inputs are unit rows; the swapped rows are
    normalised again, so the loss sees embeddings on the sphere as it always does: where the swap sits and
    whether the paper renormalises could not be checked, so this is the book's choice.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob={prob!r} is not a probability")
    if mode not in ("hard", "soft"):
        raise ValueError(f"mode={mode!r} is not allowed; choose 'hard' or 'soft'")
    if img.shape != txt.shape:
        raise ValueError(
            f"the two embeddings must have one shape; got {tuple(img.shape)} and {tuple(txt.shape)}"
        )
    device = img.device
    if not torch.rand((), generator=generator, device=device) < prob:
        return img, txt
    if mode == "hard":
        take = torch.rand(img.shape, generator=generator, device=device) < 0.5
        new_img, new_txt = torch.where(take, txt, img), torch.where(take, img, txt)
    else:
        lam = torch.rand(img.shape, generator=generator, device=device, dtype=img.dtype)
        new_img, new_txt = lam * img + (1 - lam) * txt, lam * txt + (1 - lam) * img
    return (
        torch.nn.functional.normalize(new_img, dim=-1),
        torch.nn.functional.normalize(new_txt, dim=-1),
    )


def batch_embeddings(model, images_uint8: torch.Tensor, tokens: torch.Tensor):
    """A training batch's normalised image and text embeddings, in float32 whatever the autocast."""
    img = model.encode_image(mad_image_input(images_uint8)).float()
    txt = model.encode_text(tokens).float()
    return (
        torch.nn.functional.normalize(img, dim=-1),
        torch.nn.functional.normalize(txt, dim=-1),
    )


def training_loss(
    img, txt, logit_scale: torch.Tensor, cfg: TrainConfig, logit_bias=None
):
    """The contrastive loss at the scale the ``logit_scale`` parameter stands for (capped at 100, as in CLIP;
    see :func:`current_logit_scale`) plus the configured uniformity, alignment and cross-uniformity terms,
    from normalised embeddings. With ``cfg.loss == "sigmoid"`` the loss is SigLIP's, which needs the model's
    ``logit_bias``."""
    scale = current_logit_scale(logit_scale, cfg)
    if getattr(cfg, "loss", "clip") == "sigmoid":
        if logit_bias is None:
            raise ValueError(
                "the sigmoid loss needs the model's logit_bias: pass logit_bias=model.logit_bias"
            )
        loss = losses.sigmoid_loss(img, txt, scale, logit_bias)
    else:
        loss = losses.clip_loss(img, txt, scale)
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


def apply_gradients(
    loss, optimizer, scaler, logit_scale: torch.Tensor, cap: float = math.log(100.0)
) -> None:
    """Backpropagate ``loss`` and step ``optimizer`` (through ``scaler`` when it is enabled), then cap the
    logit scale at 100: ``cap`` is the parameter's value for 100 (:func:`logit_scale_cap`; the default is
    CLIP's ``exp`` parameterisation)."""
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
        logit_scale.clamp_(max=cap)


def train_step(
    model,
    optimizer,
    images_uint8: torch.Tensor,
    tokens: torch.Tensor,
    cfg: TrainConfig,
    precision: Precision | None = None,
    scaler: torch.amp.GradScaler | None = None,
    step: int | None = None,
) -> torch.Tensor:
    """One optimiser step on a batch: the configured loss and terms (:func:`training_loss`). Returns the loss.

    The encoders run under ``precision``'s autocast (default: :func:`gaplab.training.precision.choose_precision` for the
    batch's device and ``cfg.cpu_precision``); the loss is computed in float32. With float16, pass the run's gradient ``scaler``. The logit
    scale is capped at 100 as in CLIP. ``step`` (0-based) is needed by the remedies that depend on it: a
    temperature schedule sets the step's scale, and modality swapping draws the step's swap.
    """
    device = images_uint8.device
    precision = precision or choose_precision(
        device, getattr(cfg, "cpu_precision", "float32")
    )
    if precision.scaler and scaler is None:
        raise ValueError(
            "float16 training needs a gradient scaler: pass scaler=gaplab.training.precision.make_scaler(...)"
        )
    swapping = bool(getattr(cfg, "swap_prob", 0.0))
    scheduled = getattr(cfg, "temperature_end", None) is not None
    if step is None and (swapping or scheduled):
        raise ValueError(
            "this run's temperature schedule or modality swapping depends on the step: pass step=<the "
            "0-based step index>"
        )
    if scheduled:
        follow_temperature_schedule(model, cfg, step)
    model.train()
    with precision_autocast(device, precision):
        img, txt = batch_embeddings(model, images_uint8, tokens)
    if swapping:
        img, txt = swap_modalities(
            img, txt, cfg.swap_prob, cfg.swap_mode, swap_generator(cfg, step, device)
        )
    loss = training_loss(
        img, txt, model.logit_scale, cfg, getattr(model, "logit_bias", None)
    )
    apply_gradients(loss, optimizer, scaler, model.logit_scale, logit_scale_cap(cfg))
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
