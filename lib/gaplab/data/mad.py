"""MAD, the synthetic data set of Schrodi et al. (ICLR 2025, "Two Effects, One Trigger").

Each sample is a 28x28 RGB digit with Morpho-MNIST-style perturbations, described by six factors
(:data:`FACTORS`): the digit, its stroke thickness, a local swelling, a fracture, its scale and its colour.
A caption names the sample's value of one *object* factor (the digit by default) plus ``k`` of the other
five factors' values, e.g. ``"small-2-swollen"``.

Generation, for a batch of N samples at once (only torch ops after the glyph templates are built, so the
same code runs on a GPU):

1. glyph: a real MNIST digit of the drawn class, or a procedural one (a digit from one of the fonts shipped
   with matplotlib, with a random affine and a mild elastic warp);
2. scale: ``small`` shrinks the glyph to 0.75 about the centre, with a small random offset;
3. thickness: ``thickening`` is a grey-level dilation, ``thinning`` an erosion that never erases the digit;
4. swelling: a radial bulge around a random stroke pixel (the Morpho-MNIST swelling warp);
5. fracture: a thin band erased across the stroke at a random stroke pixel;
6. colour: the grey intensity is written into the colour's RGB channels, the others stay zero.

Scaling comes first so that the morphological and local perturbations act on strokes of the size you see,
and fracture comes after swelling so that the gap is never healed by the bulge; colour is last because it
only copies the grey image into channels.

The glyphs of step 1 come from :mod:`gaplab.data.glyphs`; this module draws the factors, perturbs, colours
and captions.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gaplab.data.glyphs import (
    DIGITS,
    GLYPH_SIZE,
    affine_grid,
    font_templates,
    load_mnist,
    mnist_glyphs,
    procedural_glyphs,
)

__all__ = [
    "FACTORS",
    "CAPTION_WORDS",
    "GLYPH_SOURCES",
    "MADSet",
    "generate_mad",
    "caption_vocabulary",
    "draw_factors",
    "procedural_glyphs",
    "mnist_glyphs",
    "render",
    "font_templates",
    "load_mnist",
]

_log = logging.getLogger(__name__)

#: factor name -> its value names, in the order of the integer codes in :attr:`MADSet.factors`
FACTORS: dict[str, tuple[str, ...]] = {
    "digit": DIGITS,
    "thickness": ("none", "thickening", "thinning"),
    "swelling": ("no", "yes"),
    "fracture": ("no", "yes"),
    "scale": ("large", "small"),
    "color": ("gray", "red", "green", "blue", "cyan", "magenta", "yellow"),
}

#: (factor, value) -> the word a caption uses for it; every value has its own word, so a caption word
#: always tells which factor it describes ("no" would not: swelling and fracture share it)
CAPTION_WORDS: dict[tuple[str, str], str] = {
    **{("digit", d): d for d in FACTORS["digit"]},
    ("thickness", "none"): "regular",
    ("thickness", "thickening"): "thick",
    ("thickness", "thinning"): "thin",
    ("swelling", "no"): "unswollen",
    ("swelling", "yes"): "swollen",
    ("fracture", "no"): "intact",
    ("fracture", "yes"): "fractured",
    ("scale", "large"): "large",
    ("scale", "small"): "small",
    **{("color", c): c for c in FACTORS["color"]},
}

GLYPH_SOURCES = ("auto", "procedural", "mnist")

# which RGB channels each colour lights, in FACTORS["color"] order
_COLOR_CHANNELS = torch.tensor(
    [[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]],
    dtype=torch.float32,
)

# --------------------------------------------------------------------------------------------- factors


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(
            f"n must be a positive integer number of samples; got {n!r} ({type(n).__name__})"
        )
    if n <= 0:
        raise ValueError(f"n must be a positive integer number of samples; got {n}")
    return int(n)


def _check_factor(name) -> str:
    if name not in FACTORS:
        raise ValueError(f"unknown factor {name!r}; choose one of {', '.join(FACTORS)}")
    return name


def draw_factors(
    n: int, generator: torch.Generator, device="cpu"
) -> dict[str, torch.Tensor]:
    """Each factor's value code for ``n`` samples, drawn independently and uniformly."""
    n = _check_n(n)
    return {
        name: torch.randint(len(values), (n,), generator=generator, device=device)
        for name, values in FACTORS.items()
    }


# --------------------------------------------------------------------------------------------- perturbations


def _pixel_coords(device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column coordinates of the 28x28 pixel centres, flattened (784,)."""
    r = torch.arange(GLYPH_SIZE, dtype=torch.float32, device=device)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return yy.flatten(), xx.flatten()


def _to_grid(py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Pixel coordinates (N, 28, 28) -> a grid_sample grid (N, 28, 28, 2) (align_corners=False)."""
    return torch.stack(
        [(2 * px + 1) / GLYPH_SIZE - 1, (2 * py + 1) / GLYPH_SIZE - 1], dim=-1
    )


def _stroke_point(
    x: torch.Tensor, u: torch.Tensor, power: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A stroke pixel per image, (row, col) float (N,), drawn among pixels > 0.5 with weight b**power.

    ``b`` is the 3x3 local mean: it peaks on the stroke's middle line, so a high ``power`` favours the
    middle of thick strokes too. Inverse-CDF sampling from pre-drawn uniforms ``u`` keeps the random
    stream independent of the image, so two renders that differ in one factor use the same random numbers
    for everything else.
    """
    flat = x.flatten(1)
    b = F.avg_pool2d(x, 3, stride=1, padding=1).flatten(1)
    w = torch.where(flat > 0.5, b.pow(power), torch.zeros_like(flat))
    # an image without any pixel > 0.5 (it does not happen with MAD's glyphs) falls back to its brightest
    empty = w.sum(1) <= 0
    w = torch.where(empty[:, None], flat + 1e-6, w)
    cdf = torch.cumsum(w, 1)
    target = (u * cdf[:, -1])[:, None]
    idx = torch.searchsorted(cdf, target).clamp_max(flat.shape[1] - 1)[:, 0]
    return (idx // GLYPH_SIZE).float(), (idx % GLYPH_SIZE).float()


def _scale_small(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Shrink to 0.75 about the centre, shifted by ``offset`` (N, 2) in normalised units."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / 0.75
    theta[:, :, 2] = offset
    grid = affine_grid(theta, GLYPH_SIZE)
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _extreme3(x: torch.Tensor, dim: int, op) -> torch.Tensor:
    """Min or max (``op``) of each pixel and its two neighbours along ``dim``; outside the image counts as 0.

    Slices of a padded copy: several times faster than ``max_pool2d`` on the CPU for a 3-tap window.
    """
    pad = (0, 0, 1, 1) if dim == 2 else (1, 1)
    p = F.pad(x, pad)
    n = x.shape[dim]
    return op(op(p.narrow(dim, 0, n), p.narrow(dim, 1, n)), p.narrow(dim, 2, n))


def _thicken(x: torch.Tensor) -> torch.Tensor:
    """Grey-level dilation with a 3x3 square: the stroke grows by a pixel on each side."""
    return _extreme3(_extreme3(x, 2, torch.maximum), 3, torch.maximum)


def _thin(x: torch.Tensor) -> torch.Tensor:
    """Grey-level erosion that keeps the digit: the strongest of three erosions that leaves enough ink.

    A 3x3 erosion removes a pixel from each side of the stroke; on a thin (2 px) stroke it erases
    everything. So each image takes the 3x3 erosion if it keeps at least 35% of the stroke area, else the
    milder cross-shaped (4-neighbour) erosion, else a soft erosion (half-way to the 3x3 one), and as a
    last resort a fading of the stroke's rim that keeps every pixel above 0.5 above it.
    """
    area = (x > 0.5).flatten(1).sum(1)
    vert = _extreme3(x, 2, torch.minimum)
    horiz = _extreme3(x, 3, torch.minimum)
    square = _extreme3(vert, 3, torch.minimum)
    cross = torch.minimum(vert, horiz)
    soft = (x + square) / 2
    out = x.clone()
    chosen = torch.zeros_like(area, dtype=torch.bool)
    for cand in (square, cross, soft):
        keep = (cand > 0.5).flatten(1).sum(1)
        ok = ~chosen & (keep >= 0.35 * area) & (keep > 0)
        out = torch.where(ok[:, None, None, None], cand, out)
        chosen |= ok
    rest = ~chosen
    if bool(rest.any()):
        rim = torch.where(x > 0.5, torch.clamp(square, min=0.5 + 1e-3), square)
        out = torch.where(rest[:, None, None, None], torch.minimum(x, rim), out)
    return out


def _swell(x: torch.Tensor, cy, cx, radius, strength) -> torch.Tensor:
    """Morpho-MNIST swelling: inside ``radius`` of (cy, cx), sample from c + (p - c) * (d / r)**(strength - 1).

    The exponent above 1 pulls samples towards the centre, so the stroke there is magnified into a bulge;
    at the rim the map is the identity, so the image is unchanged outside the disc.
    """
    yy, xx = _pixel_coords(x.device)
    dy, dx = yy[None] - cy[:, None], xx[None] - cx[:, None]
    dist = torch.sqrt(dy * dy + dx * dx)
    r = radius[:, None]
    weight = torch.where(
        dist < r, (dist / r).pow(strength[:, None] - 1), torch.ones_like(dist)
    )
    sy = (cy[:, None] + weight * dy).view(-1, GLYPH_SIZE, GLYPH_SIZE)
    sx = (cx[:, None] + weight * dx).view(-1, GLYPH_SIZE, GLYPH_SIZE)
    warped = F.grid_sample(
        x, _to_grid(sy, sx), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    # outside the disc keep the exact pixels, so the change is strictly local
    inside = (dist < r).view(-1, 1, GLYPH_SIZE, GLYPH_SIZE)
    return torch.where(inside, warped, x)


def _fracture(x: torch.Tensor, cy, cx, jitter, width, sigma=2.5) -> torch.Tensor:
    """Erase a band ``width`` px wide across the stroke through (cy, cx).

    The band runs along the dominant grey-level gradient in a Gaussian window (``sigma`` px) around the
    point (the gradient structure tensor; on a stroke the gradient points across it, whatever its width),
    turned by ``jitter`` radians. It reaches 0.75 local stroke widths + 1 px (2.5 to 6 px) either side
    of the point (the width estimated as the ink within 4 px over that disc's diameter): far enough to cut
    most thickened strokes through, whose blobby corners need the extra length, yet short of the digit's
    other strokes in most cases.
    """
    sobel = (
        torch.tensor(
            [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device
        )
        / 8
    )
    kernels = torch.stack([sobel, sobel.T])[:, None]  # d/dcol, d/drow
    grad = F.conv2d(x, kernels, padding=1).flatten(2)
    gx, gy = grad[:, 0], grad[:, 1]
    yy, xx = _pixel_coords(x.device)
    flat = x.flatten(1)
    dy, dx = yy[None] - cy[:, None], xx[None] - cx[:, None]
    d2 = dy * dy + dx * dx
    w = torch.exp(-d2 / (2 * sigma**2))
    jxx, jyy, jxy = (w * gx * gx).sum(1), (w * gy * gy).sum(1), (w * gx * gy).sum(1)
    across = (
        0.5 * torch.atan2(2 * jxy, jxx - jyy) + jitter
    )  # the gradient's orientation: across the stroke
    ux, uy = torch.cos(across)[:, None], torch.sin(across)[:, None]
    s = dx * ux + dy * uy  # position across the stroke: the band's extent
    t = -dx * uy + dy * ux  # position along the stroke: the band is where |t| is small
    local_width = (flat * (d2 <= 16)).sum(1) / 8
    reach = (0.75 * local_width + 1.0).clamp(2.5, 6.0)[:, None]
    half = width[:, None] / 2
    # fully erased inside the band; half-pixel ramps at its edges keep the cut anti-aliased
    keep_t = ((t.abs() - half) / 0.5 + 0.5).clamp(0, 1)
    keep_s = ((s.abs() - reach) / 0.5 + 0.5).clamp(0, 1)
    keep = torch.maximum(keep_t, keep_s)
    return (flat * keep).view_as(x)


def _factor(
    factors: dict[str, torch.Tensor], name: str, n: int, device
) -> torch.Tensor:
    codes = factors.get(name)
    if codes is None:  # absent factors take their first value: no perturbation
        return torch.zeros(n, dtype=torch.long, device=device)
    codes = torch.as_tensor(codes, device=device).long()
    if codes.shape != (n,):
        raise ValueError(
            f"factor {name!r} must have shape ({n},) like the glyphs; got {tuple(codes.shape)}"
        )
    hi = len(FACTORS[name]) - 1
    if n and (int(codes.min()) < 0 or int(codes.max()) > hi):
        raise ValueError(
            f"factor {name!r} codes must lie in 0..{hi} ({', '.join(FACTORS[name])})"
        )
    return codes


def render(
    glyphs: torch.Tensor, factors: dict[str, torch.Tensor], generator: torch.Generator
) -> torch.Tensor:
    """Apply the MAD perturbations to grey glyphs: (N, 1, 28, 28) in [0, 1] -> RGB (N, 3, 28, 28) in [0, 1].

    ``factors`` maps factor names to (N,) value codes (``digit`` is ignored: the glyphs show it already);
    absent factors take their first value (no perturbation, gray). Every random number is drawn for every
    sample whether or not its perturbation applies, in a fixed order, so rendering the same glyphs with the
    same generator state and factors that differ in one factor changes only that factor's effect.
    """
    for name in factors:
        _check_factor(name)
    if glyphs.ndim != 4 or tuple(glyphs.shape[1:]) != (1, GLYPH_SIZE, GLYPH_SIZE):
        raise ValueError(
            f"glyphs must have shape (N, 1, 28, 28); got {tuple(glyphs.shape)}"
        )
    x = glyphs.float().clone()  # perturbed in place below
    n, device = x.shape[0], x.device
    codes = {
        name: _factor(factors, name, n, device) for name in FACTORS if name != "digit"
    }

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(
            n, *shape, generator=generator, device=device
        )

    scale_offset = uniform(-0.05, 0.05, 2)
    swell_u, swell_radius, swell_strength = (
        uniform(0, 1),
        uniform(5.0, 7.0),
        uniform(2.5, 3.5),
    )
    frac_u, frac_jitter, frac_width = (
        uniform(0, 1),
        uniform(-0.2, 0.2),
        uniform(1.5, 2.0),
    )

    def only(mask, fn, *params):
        # perturb just the samples that have it; the others keep their pixels exactly
        idx = torch.nonzero(mask).flatten()
        if idx.numel():
            x[idx] = fn(x[idx], *(p[idx] for p in params))

    only(codes["scale"] == 1, _scale_small, scale_offset)
    # the bulge keeps its size relative to the digit, else it swallows a small digit whole
    swell_radius = torch.where(codes["scale"] == 1, 0.75 * swell_radius, swell_radius)
    only(codes["thickness"] == 1, _thicken)
    only(codes["thickness"] == 2, _thin)
    cy, cx = _stroke_point(x, swell_u, power=1.0)
    only(codes["swelling"] == 1, _swell, cy, cx, swell_radius, swell_strength)
    # prefer bright pixels (the stroke's middle) so the cut goes across the stroke, not along its edge
    cy, cx = _stroke_point(x, frac_u, power=8.0)
    only(codes["fracture"] == 1, _fracture, cy, cx, frac_jitter, frac_width)

    channels = _COLOR_CHANNELS.to(device)[codes["color"]][:, :, None, None]
    return x.clamp(0, 1) * channels


# --------------------------------------------------------------------------------------------- the data set


def caption_vocabulary() -> list[str]:
    """Every caption word, in factor order then value order (a tokeniser's vocabulary)."""
    return [
        CAPTION_WORDS[name, value]
        for name, values in FACTORS.items()
        for value in values
    ]


@dataclass
class MADSet:
    """A generated MAD set.

    ``images`` is (N, 3, 28, 28) uint8; ``factors`` maps each factor name to its (N,) value codes (indices
    into :data:`FACTORS`); ``glyph_source`` says where the digits came from (``"mnist"`` or
    ``"procedural"``); ``seed`` is the seed it was generated with.
    """

    images: torch.Tensor
    factors: dict[str, torch.Tensor]
    glyph_source: str
    seed: int

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def values(self, name: str) -> list[str]:
        """The value names of factor ``name`` for every sample."""
        _check_factor(name)
        return [FACTORS[name][c] for c in self.factors[name].tolist()]

    def captions(
        self, k: int, seed: int = 0, object_factor: str = "digit"
    ) -> list[str]:
        """One caption per sample: the object factor's word plus ``k`` other factors' words, joined by "-".

        The ``k`` attributes are drawn per sample from the five factors other than ``object_factor``, and the
        k + 1 words are put in a random order per sample, so the object word is not always first (as in the
        paper's captions, where the object sits among its attributes), e.g. ``"small-2-swollen"``. The
        draws use their own generator seeded by ``seed``, so captions are reproducible and independent of
        the images' seed. ``k=0`` gives the object word alone; ``object_factor`` may be any factor name
        (the caption-presence experiments make e.g. the colour always present).
        """
        if (
            isinstance(k, bool)
            or not isinstance(k, (int, np.integer))
            or not 0 <= k <= len(FACTORS) - 1
        ):
            raise ValueError(
                f"k must be an integer in 0..{len(FACTORS) - 1} (attributes besides the object); got {k!r}"
            )
        _check_factor(object_factor)
        n = len(self)
        others = [name for name in FACTORS if name != object_factor]
        gen = torch.Generator().manual_seed(int(seed))
        # a random subset of k attributes: the k smallest of five random keys
        chosen = torch.argsort(torch.rand(n, len(others), generator=gen), dim=1)[
            :, : int(k)
        ]
        # a random order of the k + 1 words (column 0 is the object)
        order = torch.argsort(torch.rand(n, int(k) + 1, generator=gen), dim=1)
        names = [object_factor, *others]
        slots = torch.cat([torch.full((n, 1), -1), chosen], dim=1)  # -1: the object
        slots = torch.gather(slots, 1, order) + 1  # index into names
        words = {
            name: [CAPTION_WORDS[name, v] for v in FACTORS[name]] for name in FACTORS
        }
        codes = {name: self.factors[name].cpu().tolist() for name in FACTORS}
        out = []
        for i, row in enumerate(slots.tolist()):
            out.append("-".join(words[names[j]][codes[names[j]][i]] for j in row))
        return out


def generate_mad(
    n: int, seed: int = 0, glyphs: str = "auto", device="cpu", mnist_root=None
) -> MADSet:
    """Generate ``n`` MAD samples with factors drawn uniformly at random.

    ``glyphs``: ``"mnist"`` uses real MNIST digits (read from ``mnist_root``, default
    ``~/.cache/gaplab/mnist``, downloaded there when missing; FileNotFoundError when neither works);
    ``"procedural"`` renders varied digits offline from matplotlib's fonts; ``"auto"`` uses MNIST when it
    can be loaded and procedural glyphs otherwise, with a warning. The same ``seed`` gives bit-identical
    tensors on the CPU. See the module docstring for the order of the perturbations.
    """
    n = _check_n(n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    if glyphs not in GLYPH_SOURCES:
        raise ValueError(
            f"unknown glyph source {glyphs!r}; choose one of {', '.join(GLYPH_SOURCES)}"
        )
    device = torch.device(device)

    mnist = None
    if glyphs in ("mnist", "auto"):
        try:
            mnist = load_mnist(mnist_root)
        except FileNotFoundError as exc:
            if glyphs == "mnist":
                raise FileNotFoundError(str(exc)) from None
            # A warning rather than a print: the data differ from the paper's, which a reader should see,
            # yet warnings can be filtered and Python shows each one once per call site, not on every call.
            warnings.warn(
                "MAD: MNIST could not be loaded, so the digits are procedural (matplotlib fonts); "
                "pass glyphs='procedural' to silence this or mnist_root=... to use MNIST",
                UserWarning,
                stacklevel=2,
            )
    source = "mnist" if mnist is not None else "procedural"
    if glyphs == "auto" and source == "mnist":
        _log.info(
            "MAD: using MNIST digits"
        )  # the paper's data: nothing the reader needs to act on

    gen = torch.Generator(device=device).manual_seed(int(seed))
    factors = draw_factors(n, gen, device)
    if mnist is not None:
        images, labels = (t.to(device) for t in mnist)
        grey = mnist_glyphs(factors["digit"], gen, images, labels)
    else:
        grey = procedural_glyphs(factors["digit"], gen)
    rgb = render(grey, factors, gen)
    images = (rgb * 255).round_().to(torch.uint8)
    return MADSet(images=images, factors=factors, glyph_source=source, seed=int(seed))
