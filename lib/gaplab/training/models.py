"""CLIP models built through open_clip's factory: tiny presets for MAD, and open_clip's own models.

The MAD presets are open_clip model configs (JSON under ``gaplab/training/model_configs``), registered with
``open_clip.add_model_config``, so a MAD model and a pretrained ViT-B-32 are built, saved and loaded by the same
code path. Temperature: ``temperature="learnable"`` trains CLIP's logit scale (capped at 100 during training, as
in CLIP); a number freezes the logit scale at that value (Liang et al. vary it this way).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path

import torch

# the MAD image tower registers itself with timm when imported, before open_clip builds a preset that names it
import gaplab.training.cnn  # noqa: F401
from gaplab.training.tokenizer import MADTokenizer

__all__ = [
    "MAD_PRESETS",
    "create_mad_model",
    "load_open_clip",
    "check_temperature",
    "set_temperature",
    "mad_image_input",
    "calibrate_batchnorm",
    "register_mad_presets",
    "quiet_no_weights_warning",
]

_CONFIG_DIR = Path(__file__).parent / "model_configs"
MAD_PRESETS: tuple[str, ...] = tuple(sorted(p.stem for p in _CONFIG_DIR.glob("*.json")))
_registered = False


def register_mad_presets():
    """open_clip, with the MAD presets added to its model configs (once); returns the ``open_clip`` module."""
    global _registered
    # open_clip is heavy (seconds to import, with its hub and transform stacks): only building a model needs it
    import open_clip

    if not _registered:
        open_clip.add_model_config(_CONFIG_DIR)
        _registered = True
    return open_clip


def check_temperature(temperature) -> None:
    """Raise ValueError unless ``temperature`` is ``"learnable"`` or a positive logit scale to freeze at."""
    if temperature == "learnable":
        return
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not temperature > 0
    ):
        raise ValueError(
            f"temperature must be 'learnable' or a positive logit scale; got {temperature!r}"
        )


def set_temperature(model, temperature) -> None:
    """``"learnable"`` keeps the logit scale trainable; a positive number freezes it at that value."""
    check_temperature(temperature)
    if temperature == "learnable":
        model.logit_scale.requires_grad_(True)
        return
    with torch.no_grad():
        model.logit_scale.fill_(math.log(float(temperature)))
    model.logit_scale.requires_grad_(False)


def create_mad_model(
    preset: str = "mad-cnn",
    *,
    temperature="learnable",
    seed: int = 0,
    device="cpu",
    embed_dim: int | None = None,
):
    """A freshly initialised CLIP for 28x28 MAD images and MAD captions (see :class:`gaplab.training.tokenizer.MADTokenizer`).

    ``embed_dim`` replaces the preset's joint embedding size (Fahim et al. sweep it); None keeps the preset's.
    """
    if preset not in MAD_PRESETS:
        raise ValueError(
            f"unknown MAD model preset {preset!r}; choose one of {', '.join(MAD_PRESETS)}"
        )
    if embed_dim is not None and (
        isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 2
    ):
        raise ValueError(
            f"embed_dim must be an integer of at least 2 (or None for the preset's); got {embed_dim!r}"
        )
    open_clip = register_mad_presets()
    cfg = json.loads((_CONFIG_DIR / f"{preset}.json").read_text())
    tok = MADTokenizer(cfg["text_cfg"]["context_length"])
    if cfg["text_cfg"]["vocab_size"] != tok.vocab_size:
        raise RuntimeError(
            f"{preset}: vocab_size {cfg['text_cfg']['vocab_size']} != tokenizer's {tok.vocab_size}"
        )
    with torch.random.fork_rng(devices=[]), quiet_no_weights_warning():
        torch.manual_seed(seed)
        extra = {} if embed_dim is None else {"embed_dim": int(embed_dim)}
        model = open_clip.create_model(preset, pretrained=None, device=device, **extra)
    set_temperature(model, temperature)
    return model


class _NoWeightsFilter(logging.Filter):
    def filter(self, record):
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def quiet_no_weights_warning():
    """A MAD model is meant to start without weights; open_clip's warning that it does would only be noise."""
    root, quiet = logging.getLogger(), _NoWeightsFilter()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def load_open_clip(name: str, pretrained: str | None = None, device="cpu"):
    """An open_clip model with its preprocessing and tokenizer: ``(model, preprocess, tokenizer)``.

    ``pretrained`` is an open_clip tag (e.g. ``"openai"``, needs network the first time) or a path to a local
    checkpoint. Without network a tag fails with a message naming the offline alternatives.
    """
    open_clip = register_mad_presets()
    if name not in open_clip.list_models():
        raise ValueError(
            f"unknown open_clip model {name!r}; see open_clip.list_models() (MAD presets: {', '.join(MAD_PRESETS)})"
        )
    if (
        pretrained
        and not Path(pretrained).exists()
        and ("/" in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors")))
    ):
        raise FileNotFoundError(f"checkpoint {pretrained} does not exist")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=device
        )
    except (OSError, RuntimeError) as exc:
        if pretrained and not Path(pretrained).exists():
            raise RuntimeError(
                f"could not fetch the pretrained weights {name}/{pretrained} (no network?). Offline, pass a local "
                f"checkpoint path as pretrained=..., or use the shipped embeddings (gaplab.data.embeddings). "
                f"Cause: {type(exc).__name__}: {exc}"
            ) from None
        raise
    if name in MAD_PRESETS:
        tokenizer = MADTokenizer(model.context_length)
    else:
        tokenizer = open_clip.get_tokenizer(name)
    return model, preprocess, tokenizer


def mad_image_input(images_uint8: torch.Tensor) -> torch.Tensor:
    """MAD's uint8 (N, 3, 28, 28) images as the float input the MAD presets expect, in [-1, 1]."""
    return images_uint8.float().div_(127.5).sub_(1.0)


@torch.no_grad()
def calibrate_batchnorm(model, images_uint8: torch.Tensor, batch: int = 256) -> None:
    """Set every BatchNorm's running statistics to the exact mean and variance over ``images_uint8``.

    An untrained model's running statistics are the defaults (mean 0, variance 1), and in eval mode they map
    every image to nearly one vector. Measuring a model at initialisation needs statistics of real inputs.
    """
    bns = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
    ]
    if not bns:
        return
    saved = [(m.momentum, m.training) for m in bns]
    was_training = model.training
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
        m.train()
    for s in range(0, len(images_uint8), batch):
        model.encode_image(mad_image_input(images_uint8[s : s + batch]))
    for m, (momentum, training) in zip(bns, saved):
        m.momentum = momentum
        m.train(training)
    model.train(was_training)
