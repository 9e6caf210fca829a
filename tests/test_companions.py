"""The companion experiments' helpers: same-modality training, temperature runs, shifts, loss variants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gaplab import metrics as M
from gaplab.data.mad import generate_mad
from gaplab.experiments import contrastive, samemodality, temperature


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    return tmp_path


def _small(**kw):
    return samemodality.SameModalityConfig(
        n_train=128, steps=4, batch_size=16, eval_n=64, eval_every=2, warmup=1, **kw
    )


def test_augment_is_a_shifted_jittered_view():
    images = generate_mad(8, seed=0, glyphs="procedural").images
    gen = torch.Generator().manual_seed(0)
    a = samemodality.augment(images, gen)
    b = samemodality.augment(images, gen)
    assert a.shape == b.shape == (8, 3, 28, 28)
    assert not torch.equal(a, b)
    # a view keeps the image's content: it correlates with the image far more than with another image
    x = torch.nn.functional.pad(samemodality.mad_image_input(images), (2, 2, 2, 2))
    flat = lambda t: (t - t.mean()).flatten()  # noqa: E731
    best = max(
        float(torch.dot(flat(a[0]), flat(x[0, :, dy : dy + 28, dx : dx + 28])))
        for dy in range(5)
        for dx in range(5)
    )
    other = max(
        float(torch.dot(flat(a[0]), flat(x[1, :, dy : dy + 28, dx : dx + 28])))
        for dy in range(5)
        for dx in range(5)
    )
    assert best > other


def test_same_modality_runs_cache_and_control(cache):
    run = samemodality.get_or_train_same_modality(_small(), progress=False)
    assert run.eval_a.shape == run.eval_b.shape == (64, 128)
    assert [h["step"] for h in run.history] == [0, 2, 4]
    again = samemodality.get_or_train_same_modality(_small(), progress=False)
    assert np.array_equal(again.eval_a, run.eval_a)
    shared = samemodality.get_or_train_same_modality(
        _small(shared=True), progress=False
    )
    assert shared.model.tower_a is shared.model.tower_b
    assert run.model.tower_a is not run.model.tower_b
    # two separately initialised towers start in two cones; one shared tower sees both views in one
    assert M.l2m(shared.eval_a, shared.eval_b) < M.l2m(run.eval_a, run.eval_b)


def test_fahim_protocol_identical_inputs_fixed_temperature(cache):
    run = samemodality.get_or_train_same_modality(
        _small(views="identical", temperature=100.0), progress=False
    )
    assert all(h["logit_scale"] == pytest.approx(100.0) for h in run.history)
    assert not run.model.logit_scale.requires_grad
    # both towers read the same images, so only the towers differ; one shared tower would give identical sides
    shared = samemodality.get_or_train_same_modality(
        _small(views="identical", shared=True), progress=False
    )
    np.testing.assert_allclose(shared.eval_a, shared.eval_b, atol=1e-6)
    assert M.l2m(run.eval_a, run.eval_b) > 0.01


def test_same_modality_config_errors():
    with pytest.raises(ValueError, match="views"):
        samemodality.SameModalityConfig(views="mirrored")
    with pytest.raises(ValueError, match="temperature"):
        samemodality.SameModalityConfig(temperature=-1.0)
    with pytest.raises(ValueError, match="unknown settings"):
        samemodality.SameModalityConfig.from_profile("smoke", k=3)
    with pytest.raises(ValueError, match="preset"):
        samemodality.SameModalityConfig(preset="resnet")
    cfg = samemodality.SameModalityConfig.from_profile("smoke")
    assert (cfg.steps, cfg.batch_size) == (20, 64)


def test_temperature_config_freezes_the_scale():
    cfg = temperature.temperature_config("smoke", 50)
    assert cfg.temperature == 50.0 and cfg.k == 2
    assert temperature.LOGIT_SCALES == (1.0, 10.0, 20.0, 30.0, 50.0, 100.0)


def test_zero_shot_under_shift(cache):
    from gaplab.runs import get_or_train

    run = get_or_train(temperature.temperature_config("smoke", 10), progress=False)
    assert run.final["logit_scale"] == pytest.approx(10.0)
    from gaplab.experiments import landscape

    frame = landscape.zero_shot_under_shift(
        run, [0.0, 0.25], factors=["digit", "color"]
    )
    assert len(frame) == 4 and set(frame["factor"]) == {"digit", "color"}
    at0 = frame[(frame["shift"] == 0.0) & (frame["factor"] == "digit")][
        "accuracy"
    ].iloc[0]
    # no shift: the run's own zero-shot
    assert at0 == pytest.approx(run.final["zero_shot_digit_acc"])
    assert frame["accuracy"].between(0, 1).all()
    with pytest.raises(ValueError, match="finite"):
        landscape.zero_shot_under_shift(run, [float("nan")])


def test_loss_variants_and_report():
    assert contrastive.variant_config("smoke", "CLIP").uniformity_weight == 0
    cua = contrastive.variant_config("smoke", "CUA")
    assert (
        cua.uniformity_weight,
        cua.alignment_weight,
        cua.cross_uniformity_weight,
    ) == (1.0, 1.0, 0.0)
    assert (
        contrastive.variant_config(
            "smoke", "CUA + cross-uniformity"
        ).cross_uniformity_weight
        == 1.0
    )
    assert dataclasses.replace(
        cua, uniformity_weight=0, alignment_weight=0
    ) == contrastive.variant_config("smoke", "CLIP")
    with pytest.raises(ValueError, match="unknown loss variant"):
        contrastive.variant_config("smoke", "SimCLR")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) + 2
    rep = contrastive.embedding_report(x, y)
    assert rep["l2m"] == pytest.approx(M.l2m(x, y)) and rep[
        "alignment"
    ] == pytest.approx(M.alignment(x, y))
    assert rep["uniformity"] == pytest.approx((M.uniformity(x) + M.uniformity(y)) / 2)


def test_same_modality_resumes_an_interrupted_run(tmp_path):
    cfg = _small()
    whole = samemodality.train_same_modality(cfg, tmp_path / "whole", progress=False)
    samemodality.train_same_modality(
        cfg, tmp_path / "cut", progress=False, stop_after=2
    )
    assert (tmp_path / "cut" / "ckpt.pt").exists()
    resumed = samemodality.train_same_modality(cfg, tmp_path / "cut", progress=False)
    assert resumed.history == whole.history
    assert np.array_equal(resumed.eval_a, whole.eval_a) and np.array_equal(
        resumed.eval_b, whole.eval_b
    )


def _fake_run(rng, zero_shot):
    run = dataclasses.make_dataclass("Run", ["eval_image", "eval_text", "final"])
    return run(
        rng.normal(size=(40, 8)),
        rng.normal(size=(40, 8)) + 1,
        {"zero_shot_digit_acc": zero_shot},
    )


def test_variant_table_matches_the_inline_loop():
    rng = np.random.default_rng(0)
    runs = {"CLIP": _fake_run(rng, 0.5), "CUA": _fake_run(rng, 0.25)}
    table = contrastive.variant_table(runs)
    for name, run in runs.items():
        assert table.loc[name].to_dict() == {
            **contrastive.embedding_report(run.eval_image, run.eval_text),
            "zero-shot digit accuracy": run.final["zero_shot_digit_acc"],
        }
    assert list(table.index) == ["CLIP", "CUA"]


def test_dimension_table_matches_the_inline_loop(monkeypatch):
    rng = np.random.default_rng(1)
    fakes = {
        (dim, v): _fake_run(rng, dim / 1000)
        for dim in (128, 32)
        for v in ("CLIP", "CUA")
    }
    asked = []

    def variant_runs(profile, variants, *, progress=True, **extra):
        asked.append(extra)
        dim = extra.get("embed_dim", 128)
        return {v: fakes[(dim, v)] for v in variants}

    monkeypatch.setattr(contrastive, "variant_runs", variant_runs)
    table = contrastive.dimension_table("smoke", (128, 32), ("CLIP", "CUA"))
    # the 128-dimensional runs are the recipe's own, asked for without embed_dim
    assert asked == [{}, {"embed_dim": 32}]
    expected = []
    for (dim, name), run in fakes.items():
        rep = contrastive.embedding_report(run.eval_image, run.eval_text)
        expected.append(
            {
                "dimensions": dim,
                "loss": name,
                "l2m": rep["l2m"],
                "linear separability": rep["linear_separability"],
                "zero-shot digit accuracy": run.final["zero_shot_digit_acc"],
            }
        )
    assert table.to_dict("records") == expected
