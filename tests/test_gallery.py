"""Galleries of MAD samples and the training-curve chart."""

from __future__ import annotations

import base64
import io
import re

import pytest
import vl_convert as vlc
from PIL import Image

from gaplab.book import charts
from gaplab.book.gallery import (
    caption_gallery,
    factor_gallery,
    image_grid_html,
    image_html,
)
from gaplab.data.mad import FACTORS, generate_mad


@pytest.fixture(scope="module")
def mad():
    return generate_mad(120, seed=2, glyphs="procedural")


def test_image_html_is_a_png_of_the_image(mad):
    tag = image_html(mad.images[0], scale=2)
    data = base64.b64decode(re.search(r"base64,([^\"]+)", tag).group(1))
    img = Image.open(io.BytesIO(data))
    assert img.size == (56, 56)
    assert img.convert("RGB").getpixel((0, 0)) == tuple(
        int(v) for v in mad.images[0][:, 0, 0]
    )
    with pytest.raises(ValueError, match="uint8"):
        image_html(mad.images[0].float())


def test_galleries(mad):
    tabs = factor_gallery(mad, per_value=2)
    assert [tabs.get_title(i) for i in range(len(FACTORS))] == list(FACTORS)
    box = caption_gallery(mad, n=4)
    slider, stack = box.children
    assert slider.max == 5 and len(stack.children) == 6
    assert "k = 3" in stack.children[3].value
    assert image_grid_html(mad.images[:3], ["a", "b", "c"]).count("<img") == 3


def test_training_curves_chart():
    history = [
        {
            "step": 0,
            "samples": 0,
            "loss": None,
            "l2m": 1.2,
            "rmg": 0.8,
            "entropy": 5.0,
            "logit_scale": 14.3,
            "zero_shot_digit_acc": 0.1,
        },
        {
            "step": 5,
            "samples": 320,
            "loss": 4.0,
            "l2m": 0.9,
            "rmg": 0.6,
            "entropy": 4.0,
            "logit_scale": 14.5,
            "zero_shot_digit_acc": 0.3,
        },
    ]
    assert "<svg" in vlc.vegalite_to_svg(charts.training_curves(history).to_dict())
