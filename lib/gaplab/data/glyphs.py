"""The grey digit glyphs MAD draws its samples from: real MNIST digits or procedural ones.

Procedural glyphs are digits of the fonts shipped with matplotlib, fitted MNIST-style into a 20x20 box,
with a random affine and a mild elastic warp; they need no network. MNIST digits are read from the
torchvision layout, downloaded once when missing. :mod:`gaplab.data.mad` perturbs and colours them.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DIGITS",
    "GLYPH_SIZE",
    "affine_grid",
    "font_templates",
    "load_mnist",
    "mnist_glyphs",
    "procedural_glyphs",
]

#: the digit values, in the order of their codes
DIGITS = tuple(str(d) for d in range(10))
#: glyphs are GLYPH_SIZE x GLYPH_SIZE pixels, as MNIST's
GLYPH_SIZE = 28

# Fonts shipped in matplotlib/mpl-data/fonts/ttf whose digits are lining figures (cmmi10 has old-style
# figures, whose 3, 4, 5, 7 and 9 hang below the line and would look unlike MNIST).
_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmb10.ttf",
    "cmtt10.ttf",
)
_SUPER = 2  # templates and procedural glyphs are drawn at 2x and box-filtered down, which avoids aliasing
_BOX = 20  # like MNIST: the glyph's longer side fills a 20x20 box, centred by its centre of mass
_MIN_STROKE = 2.2  # thinnest template stroke (in 28x28 pixels); hairline serifs are thickened to it


def _ft2font_flags():
    # heavy: only procedural glyphs need matplotlib's font renderer
    from matplotlib import ft2font

    # matplotlib >= 3.10 has an enum; older ones an int constant
    flags = getattr(ft2font, "LoadFlags", None)
    return flags.NO_HINTING if flags is not None else ft2font.LOAD_NO_HINTING


def _render_font_digit(path: Path, digit: str) -> np.ndarray | None:
    """The digit as a grey (h, w) float array in [0, 1], tightly cropped; None when the font lacks it."""
    # heavy: only procedural glyphs need matplotlib's font renderer
    from matplotlib.ft2font import FT2Font

    font = FT2Font(str(path))
    if font.get_char_index(ord(digit)) == 0:
        return None
    font.set_size(
        96, 72
    )  # ~75 px tall: ample resolution before the glyph is shrunk into its box
    font.set_text(digit, 0.0, flags=_ft2font_flags())
    font.draw_glyphs_to_bitmap(antialiased=True)
    img = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows, cols = np.nonzero(img > 0.05)
    if rows.size == 0:
        return None
    return img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _stroke_width(img: torch.Tensor) -> float:
    """Mean stroke width in pixels of a (1, 1, H, W) glyph: twice its area over its perimeter."""
    ink = (img > 0.5).float()
    area = float(ink.sum())
    # perimeter as the number of ink/background edges between 4-neighbours
    perimeter = float(
        (ink[..., 1:, :] != ink[..., :-1, :]).sum()
        + (ink[..., :, 1:] != ink[..., :, :-1]).sum()
    )
    return 2.0 * area / max(perimeter, 1.0)


def _fit_template(crop: np.ndarray) -> torch.Tensor:
    """Place a cropped glyph MNIST-style into a (56, 56) frame: longer side 40 px, centre of mass centred."""
    size, box = GLYPH_SIZE * _SUPER, _BOX * _SUPER
    h, w = crop.shape
    f = box / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    small = F.interpolate(
        torch.from_numpy(crop)[None, None],
        size=(nh, nw),
        mode="bilinear",
        antialias=True,
    )
    small = small.clamp(0, 1)
    frame = torch.zeros(1, 1, size, size)
    top, left = (size - nh) // 2, (size - nw) // 2
    frame[..., top : top + nh, left : left + nw] = small
    # thicken hairline fonts until their strokes are about as wide as MNIST pen strokes
    for _ in range(3):
        if _stroke_width(frame) >= _MIN_STROKE * _SUPER:
            break
        frame = F.max_pool2d(frame, 3, stride=1, padding=1)
    # shift the centre of mass to the centre (as MNIST was made), in whole pixels of the 2x frame
    mass = frame[0, 0]
    total = mass.sum()
    ys = torch.arange(size, dtype=torch.float32)
    cy = float((mass.sum(1) * ys).sum() / total)
    cx = float((mass.sum(0) * ys).sum() / total)
    dy, dx = round((size - 1) / 2 - cy), round((size - 1) / 2 - cx)
    return torch.roll(frame, shifts=(dy, dx), dims=(2, 3))


@functools.lru_cache(maxsize=1)
def _font_templates_cpu() -> torch.Tensor:
    import matplotlib  # heavy: only procedural glyphs read matplotlib's fonts

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = []
    for name in _FONTS:
        path = ttf / name
        if not path.is_file():  # a trimmed matplotlib install; the others suffice
            continue
        crops = [_render_font_digit(path, d) for d in DIGITS]
        if any(c is None for c in crops):
            continue
        fonts.append(torch.cat([_fit_template(c) for c in crops], dim=1))
    if not fonts:
        raise RuntimeError(
            f"no usable digit fonts were found in {ttf}; procedural MAD glyphs need matplotlib's fonts"
        )
    return torch.cat(fonts, dim=0)


def font_templates(device="cpu") -> torch.Tensor:
    """Procedural glyph templates as a (fonts, 10, 56, 56) float tensor in [0, 1] (digit d at [:, d]).

    Rendered once per process from matplotlib's shipped fonts, at twice the output resolution.
    """
    return _font_templates_cpu().to(device)


def _affine(
    n: int, generator: torch.Generator, device, *, rotate_deg, shear, scale, shift
) -> torch.Tensor:
    """(n, 2, 3) output->input affines for ``affine_grid``: rotation, x-shear, zoom and shift drawn uniformly."""

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)

    angle = uniform(-rotate_deg, rotate_deg) * (math.pi / 180)
    sh = uniform(-shear, shear)
    zoom = uniform(1 - scale, 1 + scale)
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # input = (R(angle) @ Shear(sh)) / zoom @ output + t; the distributions are symmetric, so the direction
    # conventions do not matter
    a = torch.stack(
        [
            torch.stack([cos, cos * sh - sin], -1),
            torch.stack([sin, sin * sh + cos], -1),
        ],
        -2,
    )
    a = a / zoom[:, None, None]
    return torch.cat([a, torch.stack([tx, ty], -1)[..., None]], dim=-1)


def affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, (N, 1, size, size), align_corners=False)``, several times faster on the CPU.

    torch's version runs a batched matmul that is slow for 2x3 matrices; one broadcast matmul is not.
    """
    r = (2 * torch.arange(size, dtype=theta.dtype, device=theta.device) + 1) / size - 1
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    base = torch.stack(
        [xx.flatten(), yy.flatten(), torch.ones_like(xx).flatten()], dim=1
    )  # (HW, 3)
    return (base @ theta.transpose(1, 2)).view(-1, size, size, 2)


def _elastic_basis(size: int, device) -> torch.Tensor:
    """(16, size*size): bicubic interpolation of each 4x4 lattice node's unit displacement.

    Interpolation is linear in the lattice values, so one matrix product warps a whole batch; interpolating
    every sample's lattice separately costs several times more.
    """
    eye = torch.eye(16, device=device).view(16, 1, 4, 4)
    return F.interpolate(
        eye, size=(size, size), mode="bicubic", align_corners=True
    ).view(16, size * size)


def procedural_glyphs(
    digits: torch.Tensor,
    generator: torch.Generator,
    templates: torch.Tensor | None = None,
):
    """Varied procedural glyphs of the given digit codes: (N, 1, 28, 28) float in [0, 1].

    Each sample takes a random font's template of its digit, then a random affine (rotation up to 15 degrees,
    shear up to 0.25, zoom 0.9..1.1, shift up to ~1.4 px) and a mild elastic warp (a smooth random
    displacement of ~0.5 px), all in one ``grid_sample`` at 56x56, box-filtered down to 28x28.
    """
    device = digits.device
    if templates is None:
        templates = font_templates(device)
    n, n_fonts = digits.shape[0], templates.shape[0]
    size = GLYPH_SIZE * _SUPER
    font = torch.randint(n_fonts, (n,), generator=generator, device=device)
    theta = _affine(
        n, generator, device, rotate_deg=15.0, shear=0.25, scale=0.1, shift=0.1
    )
    # elastic: a 4x4 lattice of random displacements (normalised units), smoothly interpolated over the image
    coarse = 0.05 * torch.randn(n, 2, 16, generator=generator, device=device)
    basis = _elastic_basis(size, device)
    out = torch.empty(n, 1, GLYPH_SIZE, GLYPH_SIZE, device=device)
    chunk = 4096  # bounds the memory of the (chunk, 56, 56, 2) grids
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        src = templates[font[sl], digits[sl]][:, None]
        grid = affine_grid(theta[sl], size)
        warp = (coarse[sl] @ basis).view(-1, 2, size, size)
        grid = grid + warp.permute(0, 2, 3, 1)
        big = F.grid_sample(
            src, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        out[sl] = F.avg_pool2d(big, _SUPER)
    return out.clamp_(0, 1)


# MNIST train images and labels per root, and the reason when they could not be had
_MNIST_CACHE: dict[str, tuple[torch.Tensor, torch.Tensor] | Exception] = {}


def _default_mnist_root() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "gaplab" / "mnist"


def load_mnist(root) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST train images (60000, 28, 28) uint8 and labels, from ``root`` or downloaded into it.

    Raises FileNotFoundError naming ``glyphs="procedural"`` when they can be neither read nor downloaded.
    The outcome is remembered per root, so an offline session tries the network once, not on every call.
    """
    root = Path(root if root is not None else _default_mnist_root()).expanduser()
    key = str(root)
    if key not in _MNIST_CACHE:
        try:
            # heavy: only the MNIST glyphs need torchvision
            from torchvision.datasets import MNIST

            try:
                ds = MNIST(root=key, train=True, download=False)
            except RuntimeError:  # not there yet: fetch it
                ds = MNIST(root=key, train=True, download=True)
            _MNIST_CACHE[key] = (ds.data.clone(), ds.targets.clone())
        except Exception as exc:  # torchvision and urllib raise many kinds; the user needs one clear message
            reason = (
                str(exc).strip().splitlines()[0]
                if str(exc).strip()
                else type(exc).__name__
            )
            _MNIST_CACHE[key] = FileNotFoundError(
                f"MNIST could not be loaded from {key} nor downloaded ({type(exc).__name__}: {reason}). "
                f"Put the MNIST files there (torchvision layout: {key}/MNIST/raw), pass mnist_root=..., "
                f'or use glyphs="procedural", which renders digits offline from matplotlib\'s fonts.'
            )
    cached = _MNIST_CACHE[key]
    if isinstance(cached, Exception):
        raise FileNotFoundError(str(cached)) from None
    return cached


def mnist_glyphs(
    digits: torch.Tensor,
    generator: torch.Generator,
    images: torch.Tensor,
    labels: torch.Tensor,
):
    """For each digit code, a random MNIST image of that class: (N, 1, 28, 28) float in [0, 1].

    ``images`` (M, 28, 28) and ``labels`` (M,) must be on the device of ``digits``.
    """
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=10)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"the MNIST images hold no example of digit(s) {missing}")
    starts = torch.cumsum(counts, 0) - counts
    u = torch.rand(digits.shape[0], generator=generator, device=digits.device)
    pick = starts[digits] + (u * counts[digits]).long().clamp_max(counts[digits] - 1)
    return images[order[pick]].float().div_(255)[:, None]
