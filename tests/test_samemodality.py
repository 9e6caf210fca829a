"""The same-modality control: step 0, the crop view, equal towers, the symmetry control, resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.data.mad import generate_mad
from gaplab.experiments import contrastive
from gaplab.experiments import samemodality as S
from gaplab.training import losses
from gaplab.training.models import calibrate_batchnorm, mad_image_input


def _small(**kw):
    return S.SameModalityConfig(
        n_train=128, steps=6, batch_size=16, eval_n=64, eval_every=3, warmup=1, **kw
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _centroid_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(_unit(a).mean(0) - _unit(b).mean(0)))


class _OneTower(torch.nn.Module):
    """Feeds one tower its own inputs, for calibrating it alone."""

    def __init__(self, tower, view):
        super().__init__()
        self.tower, self.view = tower, view

    def encode_image(self, x):
        return self.tower(self.view(x))


def test_crop_view_samples_the_scaled_box():
    # on a ramp, bilinear sampling returns the sampled coordinate itself
    size = 28
    cols = torch.arange(size, dtype=torch.float64).expand(size, size)
    rows = cols.t()
    x = torch.stack([rows, cols, rows + cols])[None]
    out = S.crop_view(x)[0]
    j = torch.arange(size, dtype=torch.float64)
    # Fahim et al.'s box: 100 of 224 pixels from pixel 50, i.e. 12.5 of 28 from 6.25
    want = 6.25 + 12.5 * (j + 0.5) / size - 0.5
    # a cropped image ends at its edge pixels: the outermost samples stay on them
    assert want[0] < 6.25 and want[-1] > 17.75
    want = want.clamp(6.25, 17.75)
    torch.testing.assert_close(out[0], want[:, None].expand(size, size))
    torch.testing.assert_close(out[1], want[None, :].expand(size, size))
    torch.testing.assert_close(out[2], out[0] + out[1])


def test_crop_view_at_224_pixels_is_their_crop_and_resize():
    # on their 224-pixel inputs the box is whole pixels: crop [50, 150) and resize back, as torchvision's
    # resized_crop(top=50, left=50, height=100, width=100) does (antialiasing does nothing when enlarging)
    # float64: grid_sample's normalised coordinates lose ~1e-5 of a pixel in float32 at 224 pixels
    x = torch.randn(
        2, 3, 224, 224, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    theirs = torch.nn.functional.interpolate(
        x[..., 50:150, 50:150], size=(224, 224), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(S.crop_view(x), theirs, atol=1e-10, rtol=0)


def test_crop_view_refuses_bad_input():
    with pytest.raises(ValueError, match="past the image"):
        S.crop_view(torch.zeros(1, 3, 8, 8), (0.5, 0.0, 0.6, 0.5))
    with pytest.raises(ValueError, match="positive size"):
        S.crop_view(torch.zeros(1, 3, 8, 8), (0.0, 0.0, 0.0, 0.5))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        S.crop_view(torch.zeros(3, 8, 8))


def test_init_setting_and_its_errors():
    with pytest.raises(ValueError, match="init"):
        S.SameModalityConfig(init="mirrored")
    with pytest.raises(ValueError, match="shared=True"):
        S.SameModalityConfig(shared=True, init="same")
    with pytest.raises(ValueError, match="init"):
        S.TwoViewCLIP(init="twin")


def test_same_init_towers_are_equal_copies():
    model = S.TwoViewCLIP(seed=3, init="same")
    assert model.tower_a is not model.tower_b
    pairs = zip(model.tower_a.state_dict().items(), model.tower_b.state_dict().items())
    for (name_a, a), (name_b, b) in pairs:
        assert name_a == name_b and torch.equal(a, b), name_a
    separate = S.TwoViewCLIP(seed=3)
    assert not torch.equal(
        separate.tower_a.head.proj.weight, separate.tower_b.head.proj.weight
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"views": "crop", "init": "same"},
        {"views": "identical"},
        {"views": "augmented", "shared": True},
    ],
)
def test_step_0_is_the_untrained_model_measured_directly(overrides):
    cfg = _small(**overrides)
    run = S.train_same_modality(cfg, None, progress=False)
    first = run.history[0]
    assert (first["step"], first["samples"], first["loss"]) == (0, 0, None)
    assert [h["step"] for h in run.history] == [0, 3, 6]

    # rebuild the untrained towers and fit each one's BatchNorm to its own inputs by hand
    model = S.TwoViewCLIP(
        cfg.preset, cfg.seed, cfg.shared, "cpu", cfg.temperature, cfg.init
    )
    images = generate_mad(cfg.n_train, seed=cfg.data_seed, glyphs=cfg.glyphs).images
    evals = generate_mad(
        cfg.eval_n, seed=cfg.data_seed + 1_000_003, glyphs=cfg.glyphs
    ).images
    ev = mad_image_input(evals)
    if cfg.views == "augmented":
        gen = torch.Generator().manual_seed(cfg.data_seed + 7)
        ev_a, ev_b = S.augment(evals, gen), S.augment(evals, gen)
    elif cfg.views == "crop":
        ev_a, ev_b = ev, S.crop_view(ev)
    else:
        ev_a, ev_b = ev, ev
    if cfg.shared:
        # one tower reads both views, in two calls as in a training step
        gen = torch.Generator().manual_seed(cfg.data_seed + 11)

        class Twice(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.tower = model.tower_a

            def encode_image(self, x):
                a, b = S.augment_input(x, gen), S.augment_input(x, gen)
                self.tower(a)
                self.tower(b)

        calibrate_batchnorm(Twice(), images)
    else:
        view_b = S.crop_view if cfg.views == "crop" else (lambda x: x)
        calibrate_batchnorm(_OneTower(model.tower_a, lambda x: x), images)
        calibrate_batchnorm(_OneTower(model.tower_b, view_b), images)
    model.eval()
    with torch.no_grad():
        a = model.tower_a(ev_a).numpy()
        b = model.tower_b(ev_b).numpy()
    np.testing.assert_allclose(run.initial_a, _unit(a), atol=1e-4)
    np.testing.assert_allclose(run.initial_b, _unit(b), atol=1e-4)
    assert first["l2m"] == pytest.approx(_centroid_distance(a, b), abs=1e-4)


def test_symmetry_control_never_opens_a_gap():
    cfg = _small(init="same", views="identical", temperature=100.0)
    run = S.train_same_modality(cfg, None, progress=False)
    assert [h["l2m"] for h in run.history] == [0.0] * 3
    assert np.array_equal(run.eval_a, run.eval_b)
    for (name, a), (_, b) in zip(
        run.model.tower_a.state_dict().items(), run.model.tower_b.state_dict().items()
    ):
        assert torch.equal(a, b), name
    # the towers did train: equal is not the same as untouched
    start = S.TwoViewCLIP(cfg.preset, cfg.seed, init="same").tower_a.head.proj.weight
    assert not torch.equal(run.model.tower_a.head.proj.weight, start)


def test_same_init_with_a_crop_parts_the_towers():
    run = S.train_same_modality(
        _small(init="same", views="crop", temperature=100.0), None, progress=False
    )
    assert not torch.equal(
        run.model.tower_a.head.proj.weight, run.model.tower_b.head.proj.weight
    )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2, 9),
    st.integers(2, 6),
    st.floats(1.0, 100.0),
    st.integers(0, 2**31 - 1),
)
def test_swap_symmetric_loss_is_clips_loss(n, d, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    a = torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(n, d, generator=gen), dim=-1)
    s = torch.tensor(scale)
    ours = losses.swap_symmetric_clip_loss(a, b, s)
    torch.testing.assert_close(ours, losses.clip_loss(a, b, s), rtol=1e-5, atol=1e-5)
    # swapping the sides swaps the terms exactly
    assert torch.equal(ours, losses.swap_symmetric_clip_loss(b, a, s))


def test_crop_run_resumes_to_the_same_numbers(tmp_path):
    cfg = _small(init="same", views="crop", temperature=100.0)
    whole = S.train_same_modality(cfg, tmp_path / "whole", progress=False)
    S.train_same_modality(cfg, tmp_path / "cut", progress=False, stop_after=3)
    resumed = S.train_same_modality(cfg, tmp_path / "cut", progress=False)
    assert resumed.history == whole.history and resumed.history[0]["step"] == 0
    for name in ("eval_a", "eval_b", "initial_a", "initial_b"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name


def test_cached_run_keeps_step_0(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfg = _small(init="same", views="crop")
    run = S.get_or_train_same_modality(cfg, progress=False)
    again = S.get_or_train_same_modality(cfg, progress=False)
    assert again.history == run.history and again.history[0]["step"] == 0
    assert np.array_equal(again.initial_b, run.initial_b)
    # the key follows every setting, init included
    other = dataclasses.replace(cfg, init="separate")
    assert S.run_key(other) != S.run_key(cfg)


def test_final_is_the_last_history_row_and_refuses_an_empty_history():
    run = S.train_same_modality(
        _small(init="same", views="crop", temperature=100.0), None, progress=False
    )
    assert run.final == run.history[-1] and run.final is not run.history[-1]
    empty = dataclasses.replace(run, history=[])
    with pytest.raises(ValueError, match="history is empty"):
        empty.final


def test_the_chapters_numbered_setups_are_the_catalogues():
    plain = contrastive.same_modality_setups("smoke")
    numbered = contrastive.same_modality_setups("smoke", numbered=True)
    # the labels and configs the chapter built inline before
    same_cfg = S.SameModalityConfig.from_profile
    fixed = {"temperature": 100.0}
    inline = {
        **{
            f"(i) same start, crop view, seed {s}": same_cfg(
                "smoke", init="same", views="crop", seed=s, **fixed
            )
            for s in (0, 1, 2)
        },
        "(ii) same start, identical inputs": same_cfg(
            "smoke", init="same", views="identical", **fixed
        ),
        "(iii) separate seeds, identical inputs": same_cfg(
            "smoke", views="identical", **fixed
        ),
        "one shared tower, crop view": same_cfg(
            "smoke", shared=True, views="crop", **fixed
        ),
    }
    assert numbered == inline
    assert list(plain.values()) == list(numbered.values())
    assert list(plain)[0] == "same start, crop view, seed 0"


def test_same_modality_table_and_history_frame_match_the_inline_loops():
    rng = np.random.default_rng(0)

    def fake(shift):
        emb = [rng.normal(size=(40, 6)) + shift * i for i in range(4)]
        return dataclasses.make_dataclass(
            "R", ["initial_a", "initial_b", "eval_a", "eval_b", "history"]
        )(*emb, [{"step": 0, "l2m": 0.1}, {"step": 5, "l2m": shift}])

    results = {"a": fake(0.0), "b": fake(0.5)}
    table = contrastive.same_modality_table(results)
    for name, r in results.items():
        start = contrastive.embedding_report(r.initial_a, r.initial_b)
        end = contrastive.embedding_report(r.eval_a, r.eval_b)
        assert table.loc[name].to_dict() == {
            "L2M, step 0": start["l2m"],
            "L2M, end": end["l2m"],
            "separability, step 0": start["linear_separability"],
            "separability, end": end["linear_separability"],
        }
    frame = contrastive.history_frame(results, by="set-up")
    assert list(frame["set-up"]) == ["a", "a", "b", "b"]
    assert list(frame["l2m"]) == [0.1, 0.0, 0.1, 0.5]
