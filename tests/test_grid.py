"""Grids: several MAD runs stepped together under vmap, against the same runs trained one at a time."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from gaplab import runs
from gaplab.runs import store
from gaplab.training.grid import (
    GridError,
    StackedRuns,
    grid_signature,
    grid_step,
    group_grids,
    stacked_losses,
    train_grid,
)
from gaplab.training.precision import Precision, make_scaler
from gaplab.training.train import TrainConfig, draw_batch, prepare_run, train

BASE = TrainConfig(
    n_train=1500, steps=12, batch_size=48, eval_n=200, eval_every=6, warmup=3
)
#: a stacked convolution or product rounds differently from K separate ones; over 12 AdamW steps the
#: measures drift apart by up to ~1e-4 (measured 2026-12-01 on the CPU), so 2e-3 is the stated tolerance
TOL = 2e-3
MEASURES = ("loss", "l2m", "rmg", "logit_scale", "entropy")


def _close(a, b, tol=TOL):
    assert [h["step"] for h in a.history] == [h["step"] for h in b.history]
    for ha, hb in zip(a.history, b.history):
        for m in MEASURES:
            if ha[m] is None:
                assert hb[m] is None
            else:
                assert ha[m] == pytest.approx(hb[m], abs=tol), (ha["step"], m)


def _configs():
    # three runs that differ in everything a grid allows to differ that changes training
    return [
        dataclasses.replace(BASE, k=0, seed=0),
        dataclasses.replace(BASE, k=3, seed=1, object_factor="color"),
        dataclasses.replace(BASE, k=5, seed=2, data_seed=1),
    ]


@pytest.fixture(scope="module")
def singles():
    return [train(c, progress=False, device="cpu") for c in _configs()]


@pytest.fixture(scope="module")
def grid():
    return train_grid(_configs(), progress=False, device="cpu")


def test_a_grid_equals_its_runs_trained_alone(singles, grid):
    assert [r.config for r in grid] == _configs()
    for one, together in zip(singles, grid):
        # step 0 is measured before any stacking: equal to the bit
        assert one.history[0] == together.history[0]
        _close(one, together)
        assert one.eval_image.shape == together.eval_image.shape
        assert abs(one.eval_image - together.eval_image).max() < 0.05


def test_the_runs_of_a_grid_stay_apart(grid):
    # different seeds and data give different runs: a grid that mixed them up would give equal ones
    finals = [r.history[-1]["l2m"] for r in grid]
    assert len({round(v, 6) for v in finals}) == 3
    weights = [r.model.text_projection.detach() for r in grid]
    assert not torch.allclose(weights[0], weights[1])


def test_batchnorm_statistics_are_each_runs_own(singles, grid):
    for one, together in zip(singles, grid):
        a, b = one.model.state_dict(), together.model.state_dict()
        for name in a:
            if "running_mean" in name or "running_var" in name:
                assert torch.allclose(a[name], b[name], atol=5e-3), name
            if "num_batches_tracked" in name:
                assert int(a[name]) == int(b[name]) == BASE.steps


def test_frozen_temperatures_may_differ_within_a_grid():
    cfgs = [dataclasses.replace(BASE, temperature=t, steps=6) for t in (10.0, 50.0)]
    together = train_grid(cfgs, progress=False, device="cpu")
    for cfg, run in zip(cfgs, together):
        assert run.history[-1]["logit_scale"] == pytest.approx(cfg.temperature)
        _close(train(cfg, progress=False, device="cpu"), run)


def test_the_extra_loss_terms_run_in_a_grid():
    cfg = dataclasses.replace(
        BASE,
        steps=6,
        uniformity_weight=1.0,
        alignment_weight=0.5,
        cross_uniformity_weight=0.5,
    )
    cfgs = [cfg, dataclasses.replace(cfg, seed=1)]
    for one, together in zip(
        [train(c, progress=False, device="cpu") for c in cfgs],
        train_grid(cfgs, progress=False, device="cpu"),
    ):
        _close(one, together)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"steps": 13}, "steps"),
        ({"lr": 2e-3}, "lr"),
        ({"embed_dim": 64}, "embed_dim"),
        ({"temperature": 10.0}, "learns its temperature"),
    ],
)
def test_runs_that_cannot_share_a_grid_are_named(change, named):
    with pytest.raises(GridError, match=named):
        train_grid([BASE, dataclasses.replace(BASE, **change)], progress=False)


def test_group_grids_splits_by_what_must_be_shared():
    configs = {
        "a": BASE,
        "b": dataclasses.replace(BASE, k=4),
        "c": dataclasses.replace(BASE, steps=20),
        "d": dataclasses.replace(BASE, temperature=10.0),
        "e": dataclasses.replace(BASE, temperature=30.0, seed=3),
        "f": dataclasses.replace(BASE, seed=5),
    }
    assert group_grids(configs) == [["a", "b", "f"], ["c"], ["d", "e"]]
    assert group_grids(configs, max_size=2) == [["a", "b"], ["f"], ["c"], ["d", "e"]]
    assert grid_signature(BASE) == grid_signature(dataclasses.replace(BASE, k=1))
    many = {i: dataclasses.replace(BASE, seed=i) for i in range(18)}
    assert [len(g) for g in group_grids(many)] == [9, 9]
    assert [len(g) for g in group_grids(many, max_size=4)] == [4, 4, 4, 3, 3]
    assert sum(group_grids(many, max_size=4), []) == list(range(18))
    with pytest.raises(ValueError, match="max_size"):
        group_grids(configs, max_size=0)


def test_an_interrupted_grid_resumes_as_a_grid_or_as_single_runs(tmp_path):
    cfgs = _configs()[:2]
    dirs = [tmp_path / "a", tmp_path / "b"]
    whole = train_grid(cfgs, progress=False, device="cpu")
    train_grid(cfgs, dirs, progress=False, device="cpu", stop_after=7)
    # the checkpoints are the single-run format, written at the evaluation of step 6
    for d in dirs:
        state = torch.load(d / "ckpt.pt", weights_only=True)
        assert state["step"] == 6 and len(state["history"]) == 2
    resumed = train_grid(cfgs, dirs, progress=False, device="cpu")
    for a, b in zip(whole, resumed):
        assert a.history == b.history  # the same arithmetic from the same state
    train_grid(cfgs, dirs, progress=False, device="cpu", stop_after=7)
    alone = train(cfgs[0], dirs[0], progress=False, device="cpu")
    assert alone.history[:2] == whole[0].history[:2]
    _close(alone, whole[0])


def test_checkpoints_at_different_steps_cannot_share_a_grid(tmp_path):
    cfgs = _configs()[:2]
    train(cfgs[0], tmp_path / "a", progress=False, device="cpu", stop_after=7)
    with pytest.raises(GridError, match="different steps"):
        train_grid(cfgs, [tmp_path / "a", tmp_path / "b"], progress=False)
    with pytest.raises(GridError, match="2 configs but 1"):
        train_grid(cfgs, [tmp_path / "a"], progress=False)


def test_a_float16_grid_step_with_a_scaler_runs_on_the_cpu():
    cfgs = [dataclasses.replace(BASE, seed=s) for s in (0, 1)]
    states = [prepare_run(c, None, torch.device("cpu")) for c in cfgs]
    stack = StackedRuns([s.model for s in states], [s.opt for s in states], BASE)

    fp16 = Precision("float16", torch.float16, True, "float16 (test)")
    assert make_scaler(fp16, "cpu").is_enabled()
    # a modest scale, so the first step is taken (2**16 overflows at once and only halves the scale)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    for group in stack.opt.param_groups:
        group["lr"] = 1e-3
    before = {k: v.detach().clone() for k, v in stack.params.items()}
    batches = [draw_batch(s) for s in states]
    images = torch.stack([b[0] for b in batches])
    tokens = torch.stack([b[1] for b in batches])
    seen = []
    visual = stack.encoders.model.visual
    hook = visual.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    losses = grid_step(
        stack, stacked_losses(stack, cfgs[0], fp16), images, tokens, scaler
    )
    hook.remove()
    assert seen == [torch.float16]  # the stacked image tower really ran in float16
    assert losses.shape == (2,) and torch.isfinite(losses).all()
    assert any(not torch.equal(before[k], stack.params[k]) for k in before)
    overflow = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    before = {k: v.detach().clone() for k, v in stack.params.items()}
    grid_step(stack, stacked_losses(stack, cfgs[0], fp16), images, tokens, overflow)
    assert all(torch.equal(before[k], stack.params[k]) for k in before)  # skipped
    assert overflow.get_scale() < 2.0**100


def test_get_or_train_all_stores_each_run_of_a_grid(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "cache"))
    log = tmp_path / "build.log"
    monkeypatch.setenv("GAPLAB_BUILD_LOG", str(log))
    configs = {
        k: runs.mad_config("smoke", k=k, steps=4, eval_every=2, n_train=800)
        for k in (0, 2, 4)
    }
    first = runs.get_or_train_all(configs, progress=False, together=True)
    assert list(first) == [0, 2, 4]
    assert "grid of 3 runs over k" in log.read_text()
    for k, cfg in configs.items():
        meta = store.read_meta(tmp_path / "cache" / runs.run_key(cfg))
        assert meta["summary"]["trainer"] == "grid of 3"
        assert meta["summary"]["l2m"] == pytest.approx(first[k].history[-1]["l2m"])

    def refuse(*a, **k):
        raise AssertionError("a stored run was trained again")

    monkeypatch.setattr("gaplab.training.grid.train_grid", refuse)
    monkeypatch.setattr("gaplab.runs.mad.train", refuse)
    again = runs.get_or_train_all(configs, progress=False, together=True)
    for k in configs:
        assert again[k].history == first[k].history


def test_the_grid_setting_is_read_and_checked(monkeypatch):
    monkeypatch.delenv(runs.GRID_ENV, raising=False)
    assert runs.use_grids(None, "cpu") is False
    assert runs.use_grids(True, "cpu") is True
    monkeypatch.setenv(runs.GRID_ENV, "on")
    assert runs.use_grids(None, "cpu") is True
    assert runs.use_grids(False, "cpu") is False
    monkeypatch.setenv(runs.GRID_ENV, "sometimes")
    with pytest.raises(ValueError, match="GAPLAB_GRID='sometimes'"):
        runs.use_grids(None, "cpu")
    monkeypatch.setenv(runs.GRID_MAX_ENV, "zero")
    with pytest.raises(ValueError, match="GAPLAB_GRID_MAX"):
        runs.mad._grid_max()
