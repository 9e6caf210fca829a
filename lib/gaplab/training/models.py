"""CLIP models built through open_clip's factory: tiny presets for MAD, and open_clip's own models.

The MAD presets are open_clip model configs (JSON under ``gaplab/training/model_configs``), registered with
``open_clip.add_model_config``, so a MAD model and a pretrained ViT-B-32 are built, saved and loaded by the same
code path. Temperature: ``temperature="learnable"`` trains CLIP's logit scale (capped at 100 during training, as
in CLIP); a number freezes the logit scale at that value (Liang et al. vary it this way).

The model's ``logit_scale`` parameter holds the scale through a parameterisation: CLIP's ``exp`` (the scale is
``exp(v)``) or the ``softplus`` of Yaras et al. (2025) (:data:`TEMPERATURE_PARAMS`, :func:`logit_scale_value`).
Two training-time remedies of the gap change the model itself: SigLIP's learnable logit bias (``loss="sigmoid"``)
and I0T's normalisation layer per encoder (``embed_norm=True``, :func:`add_embedding_norm`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F

# the MAD image tower registers itself with timm when imported, before open_clip builds a preset that names it
import gaplab.training.cnn  # noqa: F401
from gaplab.training.tokenizer import MADTokenizer

__all__ = [
    "MAD_PRESETS",
    "create_mad_model",
    "load_open_clip",
    "check_temperature",
    "set_temperature",
    "TEMPERATURE_PARAMS",
    "MAX_LOGIT_SCALE",
    "logit_scale_value",
    "logit_scale_param",
    "add_embedding_norm",
    "has_embedding_norm",
    "SIGLIP_INIT_LOGIT_SCALE",
    "SIGLIP_INIT_LOGIT_BIAS",
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


#: CLIP's cap on the logit scale during training (Radford et al. 2021, Sec. 2.5)
MAX_LOGIT_SCALE = 100.0
#: how the ``logit_scale`` parameter v holds the scale: CLIP's ``exp(v)``, or ``softplus(v) = log(1 + exp(v))``,
#: the temperature reparameterisation of Yaras et al. (2025, "Explaining and Mitigating the Modality Gap in
#: Contrastive Multimodal Learning", CPAL, arXiv 2412.07909v2; the softplus row of their Table 2, the rate
#: argument in their App. C): the scale grows more slowly once it is large, since softplus's derivative stays
#: below 1 where exp's equals the scale. (They also name exp(v / s) with s > 1; it is not offered here.)
TEMPERATURE_PARAMS = ("exp", "softplus")
#: SigLIP's initial logit scale t = exp(t') with t' = log 10 and its bias b = -10 (Zhai et al. 2023, Sec. 3.2
#: and Algorithm 1; open_clip_train's ``--siglip`` uses the same two values)
SIGLIP_INIT_LOGIT_SCALE = 10.0
SIGLIP_INIT_LOGIT_BIAS = -10.0
#: CLIP's initial logit scale 1/0.07 (Radford et al. 2021, Sec. 2.5; open_clip's default)
_CLIP_INIT_LOGIT_SCALE = 1 / 0.07


def _check_param(param: str) -> None:
    if param not in TEMPERATURE_PARAMS:
        raise ValueError(
            f"temperature_param={param!r} is not allowed; choose one of {', '.join(TEMPERATURE_PARAMS)}"
        )


def logit_scale_value(raw: torch.Tensor, param: str = "exp") -> torch.Tensor:
    """The logit scale a ``logit_scale`` parameter value ``raw`` stands for under ``param`` (uncapped)."""
    _check_param(param)
    return raw.exp() if param == "exp" else F.softplus(raw)


def logit_scale_param(scale: float, param: str = "exp") -> float:
    """The parameter value that stands for the logit scale ``scale`` under ``param``: the inverse of
    :func:`logit_scale_value` (for softplus, ``s + log(1 - exp(-s))``, written with expm1 to stay exact for
    small scales)."""
    _check_param(param)
    scale = float(scale)
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(
            f"a logit scale must be a positive finite number; got {scale!r}"
        )
    if param == "exp":
        return math.log(scale)
    return scale + math.log(-math.expm1(-scale))


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


def set_temperature(model, temperature, param: str = "exp") -> None:
    """``"learnable"`` keeps the logit scale trainable; a positive number freezes it at that value (held in the
    parameter as ``param`` says, see :func:`logit_scale_param`)."""
    check_temperature(temperature)
    if temperature == "learnable":
        model.logit_scale.requires_grad_(True)
        return
    with torch.no_grad():
        model.logit_scale.fill_(logit_scale_param(temperature, param))
    model.logit_scale.requires_grad_(False)


@functools.cache
def _with_embedding_norm(base: type) -> type:
    """``base`` (an open_clip CLIP class) whose two encoders end in their own BatchNorm, as I0T_async does."""

    class WithEmbeddingNorm(base):
        # the authors' code normalises each encoder's output to unit length before its BatchNorm
        # (An et al. 2025, github.com/xfactlab/I0T, model/model_longclip.py: bn_final_image, bn_final_text)
        def encode_image(self, image, normalize: bool = False):
            x = self.image_norm(F.normalize(base.encode_image(self, image), dim=-1))
            return F.normalize(x, dim=-1) if normalize else x

        def encode_text(self, text, normalize: bool = False):
            x = self.text_norm(F.normalize(base.encode_text(self, text), dim=-1))
            return F.normalize(x, dim=-1) if normalize else x

    WithEmbeddingNorm.__name__ = WithEmbeddingNorm.__qualname__ = (
        f"{base.__name__}WithEmbeddingNorm"
    )
    return WithEmbeddingNorm


def add_embedding_norm(model) -> None:
    """Give each encoder of ``model`` a trainable normalisation layer on its embedding: I0T's trainable variant.

    An, Kim, Thorne, Shim ("I0T: Embedding Standardization Method Towards Zero Modality Gap", ACL 2025)
    propose, besides their post-hoc standardisation, I0T_async: "two normalization layers", one per encoder.
    Their code puts a ``BatchNorm1d`` over the embedding dimensions after each encoder's projection, on the
    unit-normalised embedding; the contrastive loss then normalises its output again. Here the layers are
    ``model.image_norm`` and ``model.text_norm`` (in the state dict, so a stored run loads into a model rebuilt
    with :func:`create_mad_model`), and the model's class becomes a subclass of its own whose ``encode_image``
    and ``encode_text`` apply them. Unlike the paper, which trains the layers on top of locked pretrained
    encoders, a MAD run trains them with the encoders from scratch.
    """
    if has_embedding_norm(model):
        raise ValueError("this model already has its embedding normalisation layers")
    proj = model.text_projection
    weight = proj.weight if isinstance(proj, torch.nn.Linear) else proj
    # a Linear stores (out, in), a bare projection matrix (in, out)
    dim = int(
        weight.shape[0] if isinstance(proj, torch.nn.Linear) else weight.shape[-1]
    )
    device = weight.device
    model.image_norm = torch.nn.BatchNorm1d(dim, device=device)
    model.text_norm = torch.nn.BatchNorm1d(dim, device=device)
    model.__class__ = _with_embedding_norm(type(model))


def has_embedding_norm(model) -> bool:
    """Whether ``model`` carries :func:`add_embedding_norm`'s layers."""
    return isinstance(getattr(model, "text_norm", None), torch.nn.BatchNorm1d)


def create_mad_model(
    preset: str = "mad-cnn",
    *,
    temperature="learnable",
    seed: int = 0,
    device="cpu",
    embed_dim: int | None = None,
    temperature_param: str = "exp",
    loss: str = "clip",
    embed_norm: bool = False,
):
    """A freshly initialised CLIP for 28x28 MAD images and MAD captions (see :class:`gaplab.training.tokenizer.MADTokenizer`).

    ``embed_dim`` replaces the preset's joint embedding size (Fahim et al. sweep it); None keeps the preset's.
    ``temperature_param``: how ``logit_scale`` holds the scale (:data:`TEMPERATURE_PARAMS`); a learnable
    scale starts at CLIP's 1/0.07 either way. ``loss="sigmoid"`` gives the model SigLIP's learnable
    ``logit_bias`` through open_clip's own ``init_logit_bias`` argument and starts the scale at SigLIP's 10
    (:data:`SIGLIP_INIT_LOGIT_SCALE`, :data:`SIGLIP_INIT_LOGIT_BIAS`). ``embed_norm`` adds I0T's
    normalisation layer per encoder (:func:`add_embedding_norm`). None of the three draws random numbers, so
    the towers' weights are those of the same seed without them.
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
    _check_param(temperature_param)
    if loss not in ("clip", "sigmoid"):
        raise ValueError(f"loss={loss!r} is not allowed; choose 'clip' or 'sigmoid'")
    if not isinstance(embed_norm, bool):
        raise ValueError(f"embed_norm must be True or False; got {embed_norm!r}")
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
        # only a non-default choice passes an argument, so the default model is built exactly as before
        start = SIGLIP_INIT_LOGIT_SCALE if loss == "sigmoid" else _CLIP_INIT_LOGIT_SCALE
        if loss == "sigmoid" or temperature_param != "exp":
            extra["init_logit_scale"] = logit_scale_param(start, temperature_param)
        if loss == "sigmoid":
            extra["init_logit_bias"] = SIGLIP_INIT_LOGIT_BIAS
        model = open_clip.create_model(preset, pretrained=None, device=device, **extra)
    if embed_norm:
        add_embedding_norm(model)
    set_temperature(model, temperature, temperature_param)
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
def calibrate_batchnorm(
    model,
    images_uint8: torch.Tensor,
    batch: int = 256,
    tokens: torch.Tensor | None = None,
) -> None:
    """Set every BatchNorm's running statistics to the exact mean and variance over ``images_uint8`` (and,
    for a text tower's BatchNorm, over the captions ``tokens``).

    An untrained model's running statistics are the defaults (mean 0, variance 1), and in eval mode they map
    every image to nearly one vector. Measuring a model at initialisation needs statistics of real inputs.
    The text tower's normalisation layer (:func:`add_embedding_norm`) is calibrated only when ``tokens`` are
    given, and otherwise left as it is: images say nothing about it.
    """
    text_bn = getattr(model, "text_norm", None) if has_embedding_norm(model) else None
    bns = [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and (m is not text_bn or tokens is not None)
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
    if tokens is not None and text_bn is not None:
        for s in range(0, len(tokens), batch):
            model.encode_text(tokens[s : s + batch])
    for m, (momentum, training) in zip(bns, saved):
        m.momentum = momentum
        m.train(training)
    model.train(was_training)
