"""The cone effect of Liang et al. (2022): randomly initialised networks already map their inputs into a narrow
cone, and two separately initialised towers map them into two different cones, so a gap exists before any
training.

:func:`mlp_cone` follows the cone through the layers of a random MLP (:func:`mlp_cone_table` for every
activation, the chapter's first chart); :func:`mad_init_cone` and :func:`open_clip_init_cone` measure both towers
of a freshly initialised CLIP, small (MAD) or large (open_clip), and :func:`init_cone_table` puts them beside the
random-initialisation embeddings Liang et al. released (the chapter's table of cones at initialisation).
Everything is seeded: the same arguments give the same numbers on the same machine.
"""

from __future__ import annotations

import pandas as pd
import torch

from gaplab.data.embeddings import load_embeddings
from gaplab.data.mad import generate_mad
from gaplab.metrics import l2m, mean_cosine
from gaplab.profiles import resolve_profile
from gaplab.training.models import (
    MAD_PRESETS,
    calibrate_batchnorm,
    create_mad_model,
    load_open_clip,
    mad_image_input,
    quiet_no_weights_warning,
)
from gaplab.training.tokenizer import MADTokenizer, caption_tokens

__all__ = [
    "ACTIVATIONS",
    "RANDOM_INIT_EMBEDDINGS",
    "mlp_cone",
    "mlp_cone_table",
    "mad_init_cone",
    "open_clip_init_cone",
    "random_clip_tokens",
    "init_cone_table",
]

_ACTIVATIONS = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "linear": lambda h: h,
}
#: the activations :func:`mlp_cone` accepts
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)
#: the models whose random-initialisation embeddings Liang et al. released
#: (``Figure_1_Modality_Gap/features_*_random.npy``), as :func:`load_embeddings` names them
RANDOM_INIT_EMBEDDINGS: tuple[str, ...] = ("clip", "convirt", "videoclip", "clasp")


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return value


def _layer_cosine(h: torch.Tensor, layer: int) -> float:
    try:
        return mean_cosine(h)
    except ValueError as exc:
        # e.g. a ReLU layer that zeroed a whole row: that row has no direction, so no cosine
        raise ValueError(f"layer {layer}: {exc}") from None


@torch.no_grad()
def mlp_cone(
    activation: str,
    depth: int = 10,
    width: int = 512,
    n: int = 256,
    in_dim: int = 512,
    seed: int = 0,
    bias: bool = True,
) -> list[float]:
    """Mean pairwise cosine similarity of ``n`` Gaussian inputs after each layer of a random MLP.

    The MLP has ``depth`` layers, each a ``torch.nn.Linear`` (PyTorch's default initialisation; ``bias``) of
    output width ``width`` followed by ``activation`` (one of :data:`ACTIVATIONS`). Returns ``depth + 1``
    values: index 0 for the inputs themselves, index k after layer k. The cosine is averaged over pairs of
    distinct samples (:func:`gaplab.metrics.mean_cosine`); a value growing towards 1 is the cone narrowing.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    depth = _check_int("depth", depth, 1)
    width = _check_int("width", width, 1)
    n = _check_int("n", n, 2)
    in_dim = _check_int("in_dim", in_dim, 1)
    act = _ACTIVATIONS[activation]
    gen = torch.Generator().manual_seed(int(seed))
    h = torch.randn(n, in_dim, generator=gen)
    # nn.Linear initialises from the global generator; fork it so the caller's random state is left alone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        layers = [
            torch.nn.Linear(in_dim if i == 0 else width, width, bias=bias)
            for i in range(depth)
        ]
    values = [_layer_cosine(h, 0)]
    for k, layer in enumerate(layers, start=1):
        h = act(layer(h))
        values.append(_layer_cosine(h, k))
    return values


def mlp_cone_table(
    activations=ACTIVATIONS, depth: int = 10, seed: int = 0, **options
) -> pd.DataFrame:
    """:func:`mlp_cone` for each of ``activations``, one row per (activation, layer).

    Columns ``layer`` (0 for the inputs), ``activation`` and ``mean cosine``; rows by activation, then layer.
    ``options`` go to :func:`mlp_cone` (``width``, ``n``, ``in_dim``, ``bias``).
    """
    rows = [
        {"layer": layer, "activation": act, "mean cosine": value}
        for act in activations
        for layer, value in enumerate(mlp_cone(act, depth=depth, seed=seed, **options))
    ]
    return pd.DataFrame(rows)


def _cone_summary(img: torch.Tensor, txt: torch.Tensor) -> dict[str, float]:
    return {
        "image_mean_cos": mean_cosine(img),
        "text_mean_cos": mean_cosine(txt),
        "l2m": l2m(img, txt),
    }


@torch.no_grad()
def mad_init_cone(
    preset: str = "mad-cnn",
    n: int = 512,
    seed: int = 0,
    k: int = 2,
    *,
    glyphs: str = "procedural",
) -> dict[str, float]:
    """The cones of a freshly initialised MAD model's two towers, on ``n`` MAD images and their captions.

    The model is :func:`gaplab.training.models.create_mad_model` ``(preset, seed=seed)``; the images come from
    :func:`gaplab.data.mad.generate_mad` ``(n, seed=seed, glyphs=glyphs)`` (procedural glyphs by default, as in
    training, so the result does not depend on whether MNIST is cached) and each caption names the digit and
    ``k`` other attributes. Returns the mean within-modality cosine of the image and of the text embeddings
    and the L2M between them.
    """
    n = _check_int("n", n, 2)
    model = create_mad_model(preset, seed=seed)
    data = generate_mad(n, seed=seed, glyphs=glyphs)
    # in eval mode an untrained BatchNorm's default statistics map every image to nearly one vector, which
    # would be an artefact of the defaults rather than the cone of the initialisation
    calibrate_batchnorm(model, data.images)
    model.eval()
    tokenizer = MADTokenizer(model.context_length)
    tokens = caption_tokens(
        data.factors, k, tokenizer, torch.Generator().manual_seed(int(seed))
    )
    img = model.encode_image(mad_image_input(data.images))
    txt = model.encode_text(tokens)
    return _cone_summary(img, txt)


def random_clip_tokens(
    tokenizer,
    n: int,
    context_length: int,
    generator: torch.Generator,
    min_words: int = 5,
    max_words: int = 20,
) -> torch.Tensor:
    """``n`` random token sequences laid out as CLIP's tokenizer lays out captions.

    Each row is [start, w_1, ..., w_L, end, 0, ...] with L drawn uniformly from ``min_words..max_words``
    (capped to fit the context) and the words drawn uniformly from the ordinary ids below the two special
    ones. CLIP's text tower reads its output at the largest id in a row, which must be the end token.
    """
    sot, eot = (
        getattr(tokenizer, "sot_token_id", None),
        getattr(tokenizer, "eot_token_id", None),
    )
    if sot is None or eot is None:
        raise ValueError(
            f"{type(tokenizer).__name__} has no sot_token_id/eot_token_id; random captions are laid out for "
            "CLIP's own tokenizer (open_clip's SimpleTokenizer) only"
        )
    first_special = min(sot, eot)
    top = min(max_words, context_length - 2)
    lengths = torch.randint(min(min_words, top), top + 1, (n,), generator=generator)
    # id 0 doubles as padding, so words start at 1
    words = torch.randint(1, first_special, (n, context_length), generator=generator)
    pos = torch.arange(context_length).expand(n, -1)
    tokens = torch.where(
        (pos >= 1) & (pos <= lengths[:, None]), words, torch.zeros_like(words)
    )
    tokens[:, 0] = sot
    tokens[torch.arange(n), lengths + 1] = eot
    return tokens


@torch.no_grad()
def open_clip_init_cone(
    name: str = "ViT-B-32", n: int = 64, seed: int = 0
) -> dict[str, float]:
    """The cones of an open_clip model's two towers at initialisation (no pretrained weights).

    Built by ``open_clip.create_model(name, pretrained=None)`` with the global generator seeded by ``seed``,
    and fed ``n`` standard Gaussian images at the model's input size (noise in the normalised pixel space the
    preprocessing produces) and ``n`` random token sequences (:func:`random_clip_tokens`). Same keys as
    :func:`mad_init_cone`. A ViT-B-32 with ``n=8`` takes a few seconds on one CPU thread, most of it building
    the model.
    """
    if name in MAD_PRESETS:
        raise ValueError(
            f"{name!r} is a MAD preset, which reads 28x28 MAD images and MAD captions; use mad_init_cone"
        )
    n = _check_int("n", n, 2)
    # without weights is the point here, so open_clip's warning about it would only be noise on the page
    with torch.random.fork_rng(devices=[]), quiet_no_weights_warning():
        torch.manual_seed(int(seed))
        model, _, tokenizer = load_open_clip(name, pretrained=None)
    model.eval()
    size = model.visual.image_size
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    gen = torch.Generator().manual_seed(int(seed))
    images = torch.randn(n, 3, h, w, generator=gen)
    tokens = random_clip_tokens(tokenizer, n, model.context_length, gen)
    return _cone_summary(model.encode_image(images), model.encode_text(tokens))


def init_cone_table(profile="auto", seed: int = 0) -> pd.DataFrame:
    """The cones at initialisation of every model the chapter measures, one row per model.

    The MAD presets (:func:`mad_init_cone`, MAD inputs), open_clip's ViT-B-32 without weights
    (:func:`open_clip_init_cone` on 8 inputs at the smoke profile, 32 otherwise) and the shipped
    random-initialisation embeddings of :data:`RANDOM_INIT_EMBEDDINGS`. Columns ``model``, ``source`` and
    :func:`mad_init_cone`'s keys.
    """
    prof = resolve_profile(profile)
    # a ViT-B-32 forward pass is the slow part on a CPU: smoke only checks the row is there
    n_openclip = 8 if prof.name == "smoke" else 32
    rows = [
        {"model": p, "source": "MAD preset, MAD inputs", **mad_init_cone(p, seed=seed)}
        for p in MAD_PRESETS
    ]
    rows.append(
        {
            "model": "ViT-B-32 (open_clip)",
            "source": "no weights, noise inputs",
            **open_clip_init_cone("ViT-B-32", n=n_openclip, seed=seed),
        }
    )
    for name in RANDOM_INIT_EMBEDDINGS:
        img, txt = load_embeddings(f"{name}_random")
        source = {"model": name, "source": "shipped random-init embeddings"}
        rows.append({**source, **_cone_summary(img, txt)})
    return pd.DataFrame(rows)
