"""Measuring a MAD model: encoding images and captions, zero-shot class prompts, the held-out evaluation set and
the numbers a run's history records at each evaluation (loss aside: L2M, RMG, logit scale, logits entropy,
zero-shot digit accuracy); the MAD data a process trains on, generated once; and closing the gap at
initialisation (Liang et al.'s alignment)."""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch

from gaplab.data.mad import FACTORS, MADSet, generate_mad

# the metrics a history row reports, by module: the run key hashes exactly these (runs/versions.py)
from gaplab.metrics.entropy import logits_entropy
from gaplab.metrics.gap import l2m, rmg
from gaplab.metrics.retrieval import zero_shot_accuracy
from gaplab.training.config import TrainConfig
from gaplab.training.models import (
    calibrate_batchnorm,
    logit_scale_value,
    mad_image_input,
)
from gaplab.training.tokenizer import MADTokenizer, caption_tokens

__all__ = [
    "encode",
    "encode_images",
    "class_prompts",
    "class_prompt_embeddings",
    "evaluate",
    "eval_set",
    "mad_data",
    "align_text_to_images",
]


@torch.no_grad()
def encode_images(model, images_uint8: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """Normalised image embeddings of MAD images, as a float32 numpy array."""
    model.eval()
    img = [
        torch.nn.functional.normalize(
            model.encode_image(mad_image_input(images_uint8[s : s + batch])).float(),
            dim=-1,
        )
        for s in range(0, len(images_uint8), batch)
    ]
    return torch.cat(img).cpu().numpy()


@torch.no_grad()
def encode(model, images_uint8: torch.Tensor, tokens: torch.Tensor, batch: int = 1024):
    """Normalised image and text embeddings, as float32 numpy arrays."""
    img = encode_images(model, images_uint8, batch)
    txt = []
    for s in range(0, len(images_uint8), batch):
        txt.append(
            torch.nn.functional.normalize(
                model.encode_text(tokens[s : s + batch]).float(), dim=-1
            )
        )
    return img, torch.cat(txt).cpu().numpy()


@torch.no_grad()
def class_prompt_embeddings(
    model,
    factor: str,
    tokenizer: MADTokenizer,
    device,
    *,
    k: int = 0,
    object_factor: str = "digit",
    n_prompts: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """(values of ``factor``, ``n_prompts``, d): normalised embeddings of the captions behind each class's prompt.

    A model trained on captions of ``k`` attributes never read a one-word caption, so each class is described by
    ``n_prompts`` captions drawn as in training (``k`` attributes besides the object) that all contain the class
    word: CLIP's prompt ensembling with the training distribution as the templates. With ``k=0`` and the
    object factor as ``factor`` this is the single one-word caption.
    """
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for value in range(len(FACTORS[factor])):
        draws = {
            name: torch.randint(
                0, len(vals), (n_prompts,), generator=gen, device=device
            )
            for name, vals in FACTORS.items()
        }
        draws[factor].fill_(value)
        # the class word must appear: it is the object, or it is forced in as one of the k attributes
        if factor == object_factor:
            toks = caption_tokens(draws, k, tokenizer, gen, object_factor)
        else:
            toks = caption_tokens(
                draws, max(k - 1, 0), tokenizer, gen, object_factor, extra=factor
            )
        out.append(
            torch.nn.functional.normalize(model.encode_text(toks).float(), dim=-1)
        )
    return torch.stack(out)


def class_prompts(
    model, factor: str, tokenizer: MADTokenizer, device, **options
) -> np.ndarray:
    """Zero-shot class embeddings: one normalised row per value of ``factor``, the normalised mean of
    :func:`class_prompt_embeddings` (whose keyword ``options`` it takes: ``k``, ``object_factor``,
    ``n_prompts``, ``seed``)."""
    emb = class_prompt_embeddings(model, factor, tokenizer, device, **options)
    return torch.nn.functional.normalize(emb.mean(dim=1), dim=-1).cpu().numpy()


def evaluate(model, ev, tokenizer, device) -> dict:
    """A run's numbers on its evaluation set ``ev`` (:func:`eval_set`): L2M, RMG, logit scale, logits entropy
    and zero-shot digit accuracy; and, for a model with SigLIP's logit bias, that bias.

    The logit scale is the one the model's parameter stands for (``ev["temperature_param"]``, CLIP's ``exp``
    when absent), capped at 100 as in training; under a temperature schedule it is the scale of the last step
    taken. The entropy is of the softmax over captions, which a bias shared by all pairs leaves unchanged."""
    img, txt = encode(model, ev["images"], ev["tokens"])
    raw = model.logit_scale.detach()
    scale = float(
        logit_scale_value(raw, ev.get("temperature_param", "exp")).clamp(max=100)
    )
    digits = class_prompts(
        model, "digit", tokenizer, device, k=ev["k"], object_factor=ev["object_factor"]
    )
    out = {
        "l2m": l2m(img, txt),
        "rmg": rmg(img, txt),
        "logit_scale": scale,
        "entropy": logits_entropy(img, txt, scale),
        "zero_shot_digit_acc": zero_shot_accuracy(
            img, digits, ev["factors"]["digit"].cpu().numpy()
        ),
    }
    bias = getattr(model, "logit_bias", None)
    if bias is not None:
        out["logit_bias"] = float(bias.detach())
    return out


@functools.lru_cache(maxsize=2)
def _mad(n: int, seed: int, glyphs: str, device: str):
    # A chapter trains many runs on the same data in one process; rendering 30,000 images takes ~7 s on two
    # cores, and the data are deterministic and never written to, so each set is generated once
    return generate_mad(n, seed=seed, glyphs=glyphs, device=device)


def mad_data(n: int, seed: int, glyphs: str, device) -> MADSet:
    """``generate_mad(n, seed, glyphs, device)``, remembered for the last two sets asked for (read-only)."""
    return _mad(int(n), int(seed), str(glyphs), str(torch.device(device)))


def eval_set(cfg: TrainConfig, tokenizer, device) -> dict:
    """The held-out images, factors and caption tokens a run of ``cfg`` is measured on."""
    # held out: drawn from another seed than the training images
    data = mad_data(cfg.eval_n, cfg.data_seed + 1_000_003, cfg.glyphs, device)
    gen = torch.Generator(device=device).manual_seed(cfg.data_seed + 7)
    tokens = caption_tokens(data.factors, cfg.k, tokenizer, gen, cfg.object_factor)
    return {
        "images": data.images,
        "factors": data.factors,
        "tokens": tokens,
        "k": cfg.k,
        "object_factor": cfg.object_factor,
        "temperature_param": cfg.temperature_param,
    }


@torch.no_grad()
def align_text_to_images(
    model, data, cfg: TrainConfig, tokenizer, n: int = 2048
) -> None:
    """Close the gap of a fresh model: rotate its text embeddings onto their paired image embeddings.

    Liang et al. (2022, Sec. 4.4) amend a freshly initialised CLIP with an orthogonal map of the text
    embeddings. Here the map is the orthogonal Procrustes solution R = U V^T (from the SVD of T^T I over
    ``n`` training pairs, images measured with calibrated BatchNorm statistics) and is folded into the text
    projection, so the model's structure does not change and training goes on from there. A rotation keeps
    the text cone's shape; only where it points changes.
    """
    probe = copy.deepcopy(model)
    images = data.images[: min(n, len(data.images))]
    calibrate_batchnorm(probe, images)
    probe.eval()
    # a generator of its own, so the training stream is the same as an unaligned run's
    gen = torch.Generator(device=images.device).manual_seed(cfg.seed + 2)
    factors = {name: v[: len(images)] for name, v in data.factors.items()}
    tokens = caption_tokens(factors, cfg.k, tokenizer, gen, cfg.object_factor)
    img = torch.nn.functional.normalize(
        probe.encode_image(mad_image_input(images)).float(), dim=-1
    )
    txt = torch.nn.functional.normalize(probe.encode_text(tokens).float(), dim=-1)
    u, _, vh = torch.linalg.svd(txt.T.double() @ img.double())
    rotation = (u @ vh).to(model.text_projection.dtype)
    model.text_projection.copy_(model.text_projection @ rotation)
