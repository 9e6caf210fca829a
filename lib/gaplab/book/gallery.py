"""Galleries of MAD samples as HTML and widgets that work without a kernel (tabs and steppers)."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import torch
from PIL import Image

from gaplab.book.widgets import stepper
from gaplab.data.mad import FACTORS, MADSet

__all__ = ["image_html", "image_grid_html", "factor_gallery", "caption_gallery"]


def image_html(image_uint8, scale: int = 3) -> str:
    """One (3, H, W) uint8 image as an inline PNG <img>, enlarged without smoothing."""
    arr = (
        image_uint8.cpu().numpy()
        if isinstance(image_uint8, torch.Tensor)
        else np.asarray(image_uint8)
    )
    if arr.ndim != 3 or arr.shape[0] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 image of shape (3, H, W); got {arr.dtype} {arr.shape}"
        )
    img = Image.fromarray(arr.transpose(1, 2, 0)).resize(
        (arr.shape[2] * scale, arr.shape[1] * scale), Image.NEAREST
    )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" style="image-rendering:pixelated;margin:0">'


def image_grid_html(images, labels=None, scale: int = 3, columns: int = 8) -> str:
    """A grid of images, each with an optional caption underneath."""
    cells = []
    for i, im in enumerate(images):
        label = (
            f"<div style='font-size:0.75em;text-align:center'>{html.escape(str(labels[i]))}</div>"
            if labels
            else ""
        )
        cells.append(
            f"<div style='display:inline-block;margin:3px;vertical-align:top'>{image_html(im, scale)}{label}</div>"
        )
    width = columns * (28 * scale + 6)
    return f"<div style='max-width:{width}px;line-height:1'>{''.join(cells)}</div>"


def factor_gallery(mad: MADSet, per_value: int = 6) -> "object":
    """A tab per factor; in each, ``per_value`` samples for every value of that factor."""
    import ipywidgets as widgets  # heavy: only the interactive gallery needs the widget kernel side

    children, titles = [], []
    for name, values in FACTORS.items():
        rows = []
        for code, value in enumerate(values):
            idx = torch.nonzero(mad.factors[name] == code).flatten()[:per_value]
            rows.append(
                f"<p style='margin:0.4em 0 0.1em 0'><b>{html.escape(name)} = {html.escape(value)}</b></p>"
                + image_grid_html(mad.images[idx], scale=2, columns=per_value)
            )
        children.append(widgets.HTML("".join(rows)))
        titles.append(name)
    tabs = widgets.Tab(children=children)
    for i, t in enumerate(titles):
        tabs.set_title(i, t)
    return tabs


def caption_gallery(mad: MADSet, ks=range(6), n: int = 8, seed: int = 0) -> "object":
    """A slider over k: the same ``n`` samples with captions naming the digit and k attributes."""
    panels = []
    for k in ks:
        caps = mad.captions(k, seed=seed)[:n]
        panels.append(
            f"<p>k = {k}: captions name the digit and {k} of the 5 attributes</p>"
            + image_grid_html(mad.images[:n], caps, scale=3, columns=n)
        )
    return stepper(
        panels, description="attributes per caption k", start=min(2, len(panels) - 1)
    )
