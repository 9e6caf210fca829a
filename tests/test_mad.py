"""The synthetic MAD set: determinism, shapes, each perturbation on pairs that differ in that factor only,
captions, errors, and the offline (procedural) glyphs' legibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from gaplab.data import glyphs as mad_glyphs
from gaplab.data import mad
from gaplab.data.mad import CAPTION_WORDS, FACTORS

torch.set_num_threads(1)

N = 400  # glyphs per perturbation check


@pytest.fixture(scope="module")
def small_set():
    return mad.generate_mad(300, seed=3, glyphs="procedural")


@pytest.fixture(scope="module")
def glyphs():
    gen = torch.Generator().manual_seed(11)
    digits = torch.randint(10, (N,), generator=gen)
    return digits, mad.procedural_glyphs(digits, gen)


def _render(glyphs, seed=5, **codes):
    """Grey intensity (N, 28, 28) of the glyphs rendered with the given factor codes, all else fixed."""
    n = glyphs.shape[0]
    factors = {
        name: torch.full((n,), code, dtype=torch.long) for name, code in codes.items()
    }
    rgb = mad.render(glyphs, factors, torch.Generator().manual_seed(seed))
    return rgb.amax(1)


def _area(grey):
    return (grey > 0.5).flatten(1).sum(1)


def _components(grey):
    eight = np.ones((3, 3))
    return np.array(
        [ndimage.label(im, structure=eight)[1] for im in (grey > 0.5).numpy()]
    )


# ------------------------------------------------------------------------------------------ generation


def test_same_seed_same_set_and_different_seed_differs():
    a = mad.generate_mad(64, seed=7, glyphs="procedural")
    b = mad.generate_mad(64, seed=7, glyphs="procedural")
    c = mad.generate_mad(64, seed=8, glyphs="procedural")
    assert torch.equal(a.images, b.images)
    assert all(torch.equal(a.factors[k], b.factors[k]) for k in FACTORS)
    assert a.captions(3, seed=1) == b.captions(3, seed=1)
    assert not torch.equal(a.images, c.images)
    assert any(not torch.equal(a.factors[k], c.factors[k]) for k in FACTORS)
    assert a.captions(3, seed=1) != a.captions(3, seed=2)


def test_shapes_dtypes_devices_and_ranges(small_set):
    s = small_set
    assert len(s) == 300 and s.seed == 3 and s.glyph_source == "procedural"
    assert s.images.shape == (300, 3, 28, 28) and s.images.dtype == torch.uint8
    assert s.images.device.type == "cpu"
    assert list(s.factors) == list(FACTORS)
    for name, values in FACTORS.items():
        codes = s.factors[name]
        assert (
            codes.shape == (300,)
            and codes.dtype == torch.long
            and codes.device.type == "cpu"
        )
        assert 0 <= int(codes.min()) and int(codes.max()) < len(values)
    # every image shows a digit
    assert bool((s.images.flatten(1).amax(1) > 128).all())


def test_factor_frequencies_are_roughly_uniform():
    factors = mad.draw_factors(6000, torch.Generator().manual_seed(0))
    for name, values in FACTORS.items():
        freq = torch.bincount(factors[name], minlength=len(values)).double() / 6000
        assert torch.allclose(
            freq, torch.full_like(freq, 1 / len(values)), atol=0.025
        ), name


def test_procedural_digits_are_legible(glyphs):
    # a 1-nearest-neighbour classifier fitted on one augmented set recovers the digits of another
    digits, x = glyphs
    gen = torch.Generator().manual_seed(99)
    ref_digits = torch.randint(10, (2000,), generator=gen)
    ref = mad.procedural_glyphs(ref_digits, gen)
    xf = torch.nn.functional.normalize(x.flatten(1), dim=1)
    rf = torch.nn.functional.normalize(ref.flatten(1), dim=1)
    acc = (ref_digits[(xf @ rf.T).argmax(1)] == digits).double().mean()
    assert acc > 0.9
    # and the augmentation varies the glyphs: the same digits drawn again are different images
    again = mad.procedural_glyphs(digits, torch.Generator().manual_seed(98))
    assert bool(((again - x).abs().flatten(1).amax(1) > 0.1).all())


def test_templates_are_distinct_per_digit():
    t = mad.font_templates()
    assert t.ndim == 4 and t.shape[1] == 10 and t.shape[0] >= 10
    flat = torch.nn.functional.normalize(t.flatten(2), dim=2)  # (fonts, 10, pixels)
    sims = flat @ flat.transpose(1, 2)  # per font, digit x digit
    off = sims[:, ~torch.eye(10, dtype=torch.bool)]
    assert float(off.max()) < 0.97


# ------------------------------------------------------------------------------------------ perturbations


def test_baseline_render_keeps_the_glyph(glyphs):
    _, x = glyphs
    assert torch.equal(_render(x), x[:, 0])


def test_thickening_grows_and_thinning_shrinks_but_keeps_the_stroke(glyphs):
    _, x = glyphs
    none, thick, thin = _render(x), _render(x, thickness=1), _render(x, thickness=2)
    assert bool((_area(thick) > _area(none)).all())
    assert bool((_area(thin) < _area(none)).all())
    assert bool((_area(thin) > 0).all())


def test_thinning_never_erases_a_hairline_digit():
    # one-pixel strokes: any 3x3 erosion would leave nothing
    x = torch.zeros(3, 1, 28, 28)
    x[0, 0, 5:23, 14] = 1.0
    x[1, 0, 14, 5:23] = 0.8
    x[2, 0, 10, 10] = 0.6
    thin = _render(x, thickness=2)
    assert bool((_area(thin) > 0).all())


def test_small_shrinks_the_bounding_box(glyphs):
    _, x = glyphs

    def box(grey):
        out = []
        for im in (grey > 0.5).numpy():
            r, c = np.nonzero(im)
            out.append((r.max() - r.min() + 1) * (c.max() - c.min() + 1))
        return np.array(out)

    ratio = box(_render(x, scale=1)) / box(_render(x))
    assert (ratio < 1).all()
    assert 0.45 < ratio.mean() < 0.7  # about 0.75 squared


@pytest.mark.parametrize("code", range(len(FACTORS["color"])))
def test_colours_light_exactly_their_channels(glyphs, code):
    _, x = glyphs
    gen = torch.Generator().manual_seed(0)
    rgb = mad.render(x, {"color": torch.full((N,), code)}, gen)
    grey = x[:, 0]
    want = mad._COLOR_CHANNELS[code].bool()
    for ch in range(3):
        if want[ch]:
            assert torch.equal(rgb[:, ch], grey)
        else:
            assert bool((rgb[:, ch] == 0).all())


def test_fracture_breaks_the_stroke(glyphs):
    digits, x = glyphs
    for thickness in (0, 1, 2):
        whole = _render(x, thickness=thickness)
        broken = _render(x, thickness=thickness, fracture=1)
        removed = ((whole > 0.5) & (broken <= 0.5)).flatten(1).sum(1)
        assert bool((removed > 0).all())
        assert bool(((broken <= whole + 1e-6).all()))  # fracture only erases
        more = _components(broken) > _components(whole)
        if thickness != 1:
            # a cut through a loop (0, 6, 8, 9, some 4s) leaves it connected; open strokes fall apart
            open_digits = np.isin(digits.numpy(), [1, 2, 3, 5, 7])
            assert more[open_digits].mean() > 0.8
        else:
            assert (
                more.mean() > 0.2
            )  # thickened strokes merge into blobs that one cut rarely splits


def test_swelling_is_local_and_adds_ink(glyphs):
    _, x = glyphs
    plain, swollen = _render(x), _render(x, swelling=1)
    diff = (swollen - plain).abs()
    assert bool((diff.flatten(1).amax(1) > 0.1).all())
    assert (_area(swollen) > _area(plain)).double().mean() > 0.95
    # everything changed lies within one bulge: within 2 * 7 px (the largest radius) of each other
    for d in diff[:50]:
        r, c = np.nonzero(d.numpy() > 1e-5)
        assert r.max() - r.min() <= 14 and c.max() - c.min() <= 14


def test_generated_images_are_rendered_from_their_factors(small_set):
    s = small_set
    colour = s.factors["color"]
    img = s.images
    for code, channels in enumerate(mad._COLOR_CHANNELS.bool()):
        sel = img[colour == code]
        for ch in range(3):
            if not channels[ch]:
                assert bool((sel[:, ch] == 0).all())
            else:
                assert bool((sel[:, ch].flatten(1).amax(1) > 0).all())


# ------------------------------------------------------------------------------------------ captions


def _word_factor():
    return {word: name for (name, _), word in CAPTION_WORDS.items()}


def test_caption_words_are_unambiguous():
    words = list(CAPTION_WORDS.values())
    assert len(set(words)) == len(words) == sum(len(v) for v in FACTORS.values())
    assert mad.caption_vocabulary() == words
    assert all("-" not in w for w in words)


@pytest.mark.parametrize("object_factor", ["digit", "color", "fracture"])
@pytest.mark.parametrize("k", range(6))
def test_captions_name_the_object_and_k_true_attributes(small_set, k, object_factor):
    caps = small_set.captions(k, seed=4, object_factor=object_factor)
    assert len(caps) == len(small_set)
    of = _word_factor()
    first_is_object = 0
    for i, cap in enumerate(caps):
        words = cap.split("-")
        assert len(words) == k + 1
        named = [of[w] for w in words]
        assert len(set(named)) == k + 1  # each factor at most once
        assert object_factor in named
        first_is_object += named[0] == object_factor
        for w, name in zip(words, named):
            value = FACTORS[name][int(small_set.factors[name][i])]
            assert CAPTION_WORDS[name, value] == w
    if k >= 2:
        assert first_is_object < len(caps)  # the object's place is shuffled


def test_k0_gives_the_object_word_alone(small_set):
    digits = small_set.values("digit")
    assert small_set.captions(0) == [CAPTION_WORDS["digit", d] for d in digits]
    colours = small_set.values("color")
    assert small_set.captions(0, object_factor="color") == colours


def test_attribute_choice_is_spread_over_the_factors(small_set):
    caps = small_set.captions(1, seed=0)
    of = _word_factor()
    seen = {of[w] for cap in caps for w in cap.split("-")}
    assert seen == set(FACTORS)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True, None])
def test_bad_n(bad):
    with pytest.raises(ValueError, match="positive integer"):
        mad.generate_mad(bad, glyphs="procedural")


def test_unknown_glyph_source_lists_the_choices():
    with pytest.raises(ValueError, match="'fonts'.*auto, procedural, mnist"):
        mad.generate_mad(4, glyphs="fonts")


@pytest.mark.parametrize("k", [-1, 6, 2.0, "3"])
def test_bad_k(small_set, k):
    with pytest.raises(ValueError, match=r"0\.\.5"):
        small_set.captions(k)


def test_unknown_object_factor_lists_the_factors(small_set):
    with pytest.raises(
        ValueError, match="'colour'.*digit, thickness, swelling, fracture, scale, color"
    ):
        small_set.captions(2, object_factor="colour")


def test_render_rejects_unknown_factors_and_codes(glyphs):
    _, x = glyphs
    gen = torch.Generator()
    with pytest.raises(ValueError, match="'size'.*scale"):
        mad.render(x, {"size": torch.zeros(N, dtype=torch.long)}, gen)
    with pytest.raises(ValueError, match=r"0\.\.1 \(large, small\)"):
        mad.render(x, {"scale": torch.full((N,), 2)}, gen)


@pytest.fixture
def offline_mnist(monkeypatch):
    """torchvision's MNIST as it behaves offline: nothing on disk, and the download fails."""
    import torchvision.datasets

    def fake_mnist(root, train=True, download=False, **kw):
        if download:
            raise RuntimeError(
                "Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got: <urlopen error>"
            )
        raise RuntimeError(
            "Dataset not found. You can use download=True to download it"
        )

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    monkeypatch.setattr(mad_glyphs, "_MNIST_CACHE", {})


def test_mnist_offline_raises_a_clear_error(offline_mnist, tmp_path):
    with pytest.raises(FileNotFoundError, match="procedural") as info:
        mad.generate_mad(8, glyphs="mnist", mnist_root=tmp_path)
    assert str(tmp_path) in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_auto_falls_back_to_procedural_with_a_warning(offline_mnist, tmp_path):
    with pytest.warns(UserWarning, match="procedural"):
        s = mad.generate_mad(8, seed=2, glyphs="auto", mnist_root=tmp_path)
    assert s.glyph_source == "procedural"
    assert torch.equal(
        s.images, mad.generate_mad(8, seed=2, glyphs="procedural").images
    )


def test_mnist_glyphs_pick_images_of_the_right_class(monkeypatch, tmp_path):
    # a stand-in for MNIST: image i is filled with its label, so the chosen image shows its class
    labels = torch.arange(50) % 10
    images = (
        (labels[:, None, None] * 20 + 10).to(torch.uint8).expand(50, 28, 28).clone()
    )
    monkeypatch.setattr(mad_glyphs, "_MNIST_CACHE", {str(tmp_path): (images, labels)})
    s = mad.generate_mad(40, seed=0, glyphs="mnist", mnist_root=tmp_path)
    assert s.glyph_source == "mnist"
    gen = torch.Generator().manual_seed(0)
    digits = mad.draw_factors(40, gen)["digit"]
    picked = mad.mnist_glyphs(digits, gen, images, labels)
    assert torch.allclose(picked[:, 0, 0, 0] * 255, (digits * 20 + 10).float())
