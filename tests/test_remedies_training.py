"""The training-time remedies of the gap as options of the MAD trainer: a temperature schedule and the softplus
temperature and modality swapping (Yaras et al. 2025), SigLIP's sigmoid loss through open_clip, and I0T's
normalisation layer per encoder. Each is checked against a direct version of what it computes, for resumption,
for the grid path, and for the run cache; the defaults must train exactly as before the options existed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gaplab.training import losses
from gaplab.training.grid import GridError, grid_refusal, train_grid
from gaplab.training.models import (
    SIGLIP_INIT_LOGIT_BIAS,
    SIGLIP_INIT_LOGIT_SCALE,
    calibrate_batchnorm,
    create_mad_model,
    has_embedding_norm,
    logit_scale_param,
    logit_scale_value,
)
from gaplab.training.step import (
    apply_gradients,
    logit_scale_cap,
    scheduled_logit_scale,
    swap_generator,
    swap_modalities,
    training_loss,
)
from gaplab.training.tokenizer import MADTokenizer
from gaplab.training.train import TrainConfig, mad_data, train
from tests.conftest import embedding_pair

SMOKE = dict(n_train=256, steps=6, batch_size=32, eval_every=2, eval_n=64, warmup=2)
SCHEDULE = dict(temperature=100.0, temperature_end=20.0)
#: the defaults of every remedy option, spelled out
DEFAULTS = dict(
    temperature_end=None,
    temperature_param="exp",
    swap_prob=0.0,
    swap_mode="hard",
    loss="clip",
    embed_norm=False,
)


def _digest(model) -> str:
    h = hashlib.sha256()
    for name, value in model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _cfg(**change) -> TrainConfig:
    return TrainConfig(**{**SMOKE, **change})


# --- the defaults train as before --------------------------------------------------------------------------


_REFERENCE_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    from gaplab.training.train import TrainConfig, train
    cfg = TrainConfig(**json.loads(sys.argv[1]))
    r = train(cfg, progress=False, device="cpu")
    h = hashlib.sha256()
    for name, value in r.model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    print(json.dumps({"history": r.history, "weights": h.hexdigest()}))
    """
)


@pytest.mark.skipif(
    not os.environ.get("GAPLAB_REFERENCE_LIB"),
    reason="set GAPLAB_REFERENCE_LIB to the lib/ of a checkout from before the remedy options "
    "(git worktree add /tmp/ref <commit>) to compare with it",
)
@pytest.mark.parametrize("change", [{}, {"temperature": 30.0}])
def test_default_training_equals_the_code_before_the_remedies(change):
    """Run once with the reference checkout on the path: the default config's history and weights are the
    same to the bit as the committed trainer's from before the options were added."""
    env = {
        **os.environ,
        "PYTHONPATH": os.environ["GAPLAB_REFERENCE_LIB"],
        "OMP_NUM_THREADS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", _REFERENCE_SCRIPT, json.dumps({**SMOKE, **change})],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    reference = json.loads(out.stdout.strip().splitlines()[-1])
    now = train(_cfg(**change), progress=False, device="cpu")
    assert json.loads(json.dumps(now.history)) == reference["history"]
    assert _digest(now.model) == reference["weights"]


def test_the_remedy_defaults_change_nothing():
    plain = train(_cfg(), progress=False, device="cpu")
    spelled = train(_cfg(**DEFAULTS), progress=False, device="cpu")
    assert plain.history == spelled.history
    assert _digest(plain.model) == _digest(spelled.model)
    # the default model is open_clip's plain CLIP: no bias, no extra layers, the scale as exp(v) at 1/0.07
    model = create_mad_model(seed=0)
    assert type(model).__name__ == "CLIP" and model.logit_bias is None
    assert not has_embedding_norm(model)
    assert float(model.logit_scale.detach()) == pytest.approx(math.log(1 / 0.07))
    assert all("logit_bias" not in row for row in plain.history)


def test_a_step_that_never_swaps_leaves_the_run_as_it_was():
    # the swap draws come from a generator of their own: the batch stream is the plain run's
    plain = train(_cfg(), progress=False, device="cpu")
    never = train(_cfg(swap_prob=1e-12), progress=False, device="cpu")
    assert never.history == plain.history


# --- configuration errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"temperature_end": 20.0}, "learnable"),
        ({"temperature": 100.0, "temperature_end": 0.0}, "temperature_end"),
        ({"temperature": 100.0, "temperature_end": float("nan")}, "temperature_end"),
        ({"temperature": 100.0, "temperature_end": True}, "temperature_end"),
        (
            {
                "temperature": 100.0,
                "temperature_end": 20.0,
                "temperature_param": "softplus",
            },
            "temperature_param",
        ),
        ({"temperature_param": "sigmoid"}, "exp, softplus"),
        ({"temperature_param": "softplus", "temperature": 30.0}, "frozen"),
        ({"swap_prob": 1.5}, "swap_prob"),
        ({"swap_prob": -0.1}, "swap_prob"),
        ({"swap_prob": True}, "swap_prob"),
        ({"swap_prob": 0.1, "swap_mode": "mixed"}, "hard, soft"),
        ({"swap_mode": "soft"}, "swap_prob > 0"),
        ({"loss": "infonce"}, "clip, sigmoid"),
        ({"embed_norm": 1}, "embed_norm"),
        ({"embed_norm": True, "align_init": True}, "rotation"),
    ],
)
def test_remedy_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        _cfg(**change)


def test_the_model_factory_refuses_unknown_remedies():
    with pytest.raises(ValueError, match="temperature_param"):
        create_mad_model(temperature_param="linear")
    with pytest.raises(ValueError, match="loss"):
        create_mad_model(loss="hinge")
    with pytest.raises(ValueError, match="embed_norm"):
        create_mad_model(embed_norm="yes")
    with pytest.raises(ValueError, match="logit scale"):
        logit_scale_param(0.0)


# --- temperature schedule ----------------------------------------------------------------------------------


@given(st.floats(1.0, 100.0), st.floats(1.0, 100.0), st.integers(1, 50), st.data())
def test_the_schedule_is_linear_in_the_temperature(start, end, steps, data):
    cfg = TrainConfig(
        n_train=64, batch_size=8, steps=steps, temperature=start, temperature_end=end
    )
    taus = [1 / scheduled_logit_scale(cfg, i) for i in range(steps)]
    assert taus[0] == pytest.approx(1 / start)
    if steps > 1:
        assert taus[-1] == pytest.approx(1 / end)
    # a straight line in tau: every step moves it by the same amount
    i = data.draw(st.integers(0, steps - 1))
    direct = 1 / start + (1 / end - 1 / start) * i / max(1, steps - 1)
    assert taus[i] == pytest.approx(direct)
    assert min(1 / start, 1 / end) - 1e-12 <= taus[i] <= max(1 / start, 1 / end) + 1e-12
    with pytest.raises(ValueError, match="step"):
        scheduled_logit_scale(cfg, steps)
    assert scheduled_logit_scale(_cfg(), 0) is None


def test_a_scheduled_run_logs_the_scale_of_its_last_step():
    cfg = _cfg(**SCHEDULE)
    run = train(cfg, progress=False, device="cpu")
    logged = [h["logit_scale"] for h in run.history]
    expected = [scheduled_logit_scale(cfg, max(h["step"] - 1, 0)) for h in run.history]
    assert logged == pytest.approx(expected, rel=1e-6)
    assert logged[0] == pytest.approx(100.0) and logged[-1] == pytest.approx(20.0)
    assert not run.model.logit_scale.requires_grad
    assert float(run.model.logit_scale.exp()) == pytest.approx(20.0)


# --- softplus temperature ----------------------------------------------------------------------------------


@given(st.floats(1e-3, 1e3), st.sampled_from(["exp", "softplus"]))
def test_the_parameterisations_invert(scale, param):
    raw = logit_scale_param(scale, param)
    back = float(logit_scale_value(torch.tensor(raw, dtype=torch.float64), param))
    assert back == pytest.approx(scale, rel=1e-9)
    if param == "softplus":
        # log(1 + e^v), written to stay finite for large v
        direct = max(raw, 0.0) + math.log1p(math.exp(-abs(raw)))
        assert back == pytest.approx(direct, rel=1e-9)


def test_softplus_moves_a_large_scale_more_slowly():
    # d(scale)/dv is the scale itself for exp and sigmoid(v) < 1 for softplus: one gradient step on v moves a
    # scale of 50 by far less under softplus
    for scale in (3.0, 50.0):
        steps = {}
        for param in ("exp", "softplus"):
            v = torch.tensor(
                logit_scale_param(scale, param), dtype=torch.float64, requires_grad=True
            )
            logit_scale_value(v, param).backward()
            steps[param] = float(v.grad)
        assert steps["exp"] == pytest.approx(scale)
        # sigmoid(v) for v = softplus^-1(s) is 1 - exp(-s)
        assert steps["softplus"] == pytest.approx(-math.expm1(-scale))
        assert steps["softplus"] <= 1.0 < steps["exp"]


def test_the_cap_at_100_holds_for_either_parameterisation():
    for param in ("exp", "softplus"):
        cfg = _cfg(temperature_param=param)
        model = create_mad_model(temperature_param=param)
        start = float(logit_scale_value(model.logit_scale.detach(), param))
        assert start == pytest.approx(1 / 0.07)
        opt = torch.optim.SGD([model.logit_scale], lr=1e4)
        apply_gradients(
            -model.logit_scale * 1.0, opt, None, model.logit_scale, logit_scale_cap(cfg)
        )
        assert float(
            logit_scale_value(model.logit_scale.detach(), param)
        ) == pytest.approx(100.0)


def test_a_softplus_run_starts_where_clip_does_and_moves_otherwise():
    lr = {"temperature_lr_mult": 50.0}
    plain = train(_cfg(**lr), progress=False, device="cpu")
    soft = train(_cfg(temperature_param="softplus", **lr), progress=False, device="cpu")
    assert soft.history[0] == plain.history[0]
    assert soft.history[-1]["logit_scale"] != plain.history[-1]["logit_scale"]


# --- modality swapping -------------------------------------------------------------------------------------


def _slow_swap(img, txt, prob, mode, generator):
    """The swap written entry by entry, from the same generator draws."""
    if not float(torch.rand((), generator=generator)) < prob:
        return img, txt
    n, d = img.shape
    draws = torch.rand(
        (n, d), generator=generator, dtype=img.dtype if mode == "soft" else None
    )
    a = [[0.0] * d for _ in range(n)]
    b = [[0.0] * d for _ in range(n)]
    for i in range(n):
        for j in range(d):
            x, y = float(img[i, j]), float(txt[i, j])
            if mode == "hard":
                a[i][j], b[i][j] = (y, x) if float(draws[i, j]) < 0.5 else (x, y)
            else:
                lam = float(draws[i, j])
                a[i][j], b[i][j] = lam * x + (1 - lam) * y, lam * y + (1 - lam) * x
    # as torch's normalize: a row that lost all its length (possible in a tiny d) stays at zero
    unit = lambda rows: [  # noqa: E731
        [v / max(math.sqrt(sum(w * w for w in r)), 1e-12) for v in r] for r in rows
    ]
    return torch.tensor(unit(a), dtype=img.dtype), torch.tensor(
        unit(b), dtype=img.dtype
    )


@given(embedding_pair(), st.sampled_from(["hard", "soft"]), st.integers(0, 1000))
def test_swapping_matches_the_entry_by_entry_version(pair, mode, seed):
    img = torch.nn.functional.normalize(torch.tensor(pair[0]), dim=1)
    txt = torch.nn.functional.normalize(torch.tensor(pair[1]), dim=1)
    fast = swap_modalities(img, txt, 1.0, mode, torch.Generator().manual_seed(seed))
    slow = _slow_swap(img, txt, 1.0, mode, torch.Generator().manual_seed(seed))
    for f, s in zip(fast, slow):
        torch.testing.assert_close(f, s, rtol=1e-9, atol=1e-9)
        norms = f.norm(dim=1)
        assert torch.all(((norms - 1).abs() < 1e-9) | (norms == 0))


@given(embedding_pair(), st.sampled_from(["hard", "soft"]), st.integers(0, 1000))
def test_swapping_properties(pair, mode, seed):
    img = torch.nn.functional.normalize(torch.tensor(pair[0]), dim=1)
    txt = torch.nn.functional.normalize(torch.tensor(pair[1]), dim=1)
    # a step that does not swap hands back the very inputs
    same = swap_modalities(img, txt, 0.0, mode, torch.Generator().manual_seed(seed))
    assert same[0] is img and same[1] is txt
    # equal embeddings stay equal, whatever is exchanged between them
    a, b = swap_modalities(
        img, img.clone(), 1.0, mode, torch.Generator().manual_seed(seed)
    )
    torch.testing.assert_close(a, img) and torch.testing.assert_close(b, img)
    # the same seed and step draw the same swap; the swap is symmetric in what it exchanges (hard)
    again = swap_modalities(img, txt, 1.0, mode, torch.Generator().manual_seed(seed))
    first = swap_modalities(img, txt, 1.0, mode, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(again[0], first[0])
    if mode == "hard":
        flipped = swap_modalities(
            txt, img, 1.0, mode, torch.Generator().manual_seed(seed)
        )
        torch.testing.assert_close(flipped[0], first[1])
        torch.testing.assert_close(flipped[1], first[0])


def test_swap_errors_and_generators():
    x = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)
    gen = torch.Generator()
    with pytest.raises(ValueError, match="probability"):
        swap_modalities(x, x, 2.0, "hard", gen)
    with pytest.raises(ValueError, match="mode"):
        swap_modalities(x, x, 0.5, "mixed", gen)
    with pytest.raises(ValueError, match="shape"):
        swap_modalities(x, x[:2], 0.5, "hard", gen)
    cfg = _cfg(swap_prob=0.5)
    draw = lambda c, s: torch.rand(5, generator=swap_generator(c, s, "cpu"))  # noqa: E731
    assert torch.equal(draw(cfg, 3), draw(cfg, 3))
    assert not torch.equal(draw(cfg, 3), draw(cfg, 4))
    assert not torch.equal(draw(cfg, 3), draw(dataclasses.replace(cfg, seed=1), 3))


def test_swapping_changes_training():
    plain = train(_cfg(), progress=False, device="cpu")
    for mode in ("hard", "soft"):
        swapped = train(
            _cfg(swap_prob=1.0, swap_mode=mode), progress=False, device="cpu"
        )
        assert swapped.history[0] == plain.history[0]
        assert swapped.history[-1]["l2m"] != plain.history[-1]["l2m"]


# --- sigmoid loss ------------------------------------------------------------------------------------------


def _slow_sigmoid_loss(x, y, t, b):
    total = 0.0
    for i in range(len(x)):
        for j in range(len(y)):
            z = 1.0 if i == j else -1.0
            logit = t * float(np.dot(x[i], y[j])) + b
            # -log sigmoid(z * logit), written to stay finite for large arguments
            total += math.log1p(math.exp(-abs(z * logit))) + max(-z * logit, 0.0)
    return total / len(x)


@given(embedding_pair(), st.floats(0.5, 100.0), st.floats(-20.0, 5.0))
def test_the_sigmoid_loss_is_siglips(pair, scale, bias):
    from open_clip.loss import SigLipLoss

    x = torch.nn.functional.normalize(torch.tensor(pair[0]), dim=1)
    y = torch.nn.functional.normalize(torch.tensor(pair[1]), dim=1)
    t, b = (
        torch.tensor(scale, dtype=torch.float64),
        torch.tensor(bias, dtype=torch.float64),
    )
    ours = float(losses.sigmoid_loss(x, y, t, b))
    assert ours == pytest.approx(float(SigLipLoss()(x, y, t, b)), rel=1e-12)
    assert ours == pytest.approx(
        _slow_sigmoid_loss(x.numpy(), y.numpy(), scale, bias), rel=1e-9
    )
    with pytest.raises(ValueError, match="matched rows"):
        losses.sigmoid_loss(x, y[:1], t, b)


def test_the_training_loss_picks_the_sigmoid_loss():
    x = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    y = torch.nn.functional.normalize(torch.randn(5, 4), dim=1)
    raw, bias = torch.tensor(math.log(10.0)), torch.tensor(-10.0)
    got = training_loss(x, y, raw, _cfg(loss="sigmoid"), bias)
    torch.testing.assert_close(got, losses.sigmoid_loss(x, y, raw.exp(), bias))
    with pytest.raises(ValueError, match="logit_bias"):
        training_loss(x, y, raw, _cfg(loss="sigmoid"))


def test_a_sigmoid_run_has_siglips_bias_and_start():
    model = create_mad_model(loss="sigmoid")
    assert float(model.logit_bias.detach()) == SIGLIP_INIT_LOGIT_BIAS
    assert float(model.logit_scale.detach().exp()) == pytest.approx(
        SIGLIP_INIT_LOGIT_SCALE
    )
    # the towers' weights are the same seed's as without the bias
    plain, biased = create_mad_model().state_dict(), model.state_dict()
    assert set(biased) - set(plain) == {"logit_bias"}
    for name, p in plain.items():
        if name != "logit_scale":
            assert torch.equal(p, biased[name]), name
    run = train(_cfg(loss="sigmoid"), progress=False, device="cpu")
    assert run.history[0]["logit_bias"] == SIGLIP_INIT_LOGIT_BIAS
    assert run.history[-1]["logit_bias"] != SIGLIP_INIT_LOGIT_BIAS  # learned
    assert all(math.isfinite(h["loss"]) for h in run.history[1:])


# --- normalisation layer per encoder (I0T) -----------------------------------------------------------------


def test_the_normalisation_layers_are_in_the_model():
    model = create_mad_model(embed_norm=True)
    assert has_embedding_norm(model)
    assert isinstance(model.image_norm, torch.nn.BatchNorm1d)
    assert model.image_norm.num_features == model.text_norm.num_features == 128
    keys = set(model.state_dict())
    assert {"image_norm.weight", "text_norm.running_mean"} <= keys
    # the layer acts on the unit embedding of the tower it follows
    model.eval()
    images = torch.zeros(3, 3, 28, 28)
    inner = torch.nn.functional.normalize(
        type(model).__mro__[1].encode_image(model, images), dim=-1
    )
    torch.testing.assert_close(model.encode_image(images), model.image_norm(inner))


@torch.no_grad()
def test_calibration_sets_the_text_layer_from_captions():
    from gaplab.training.tokenizer import caption_tokens

    model = create_mad_model(embed_norm=True)
    data = mad_data(128, 0, "procedural", "cpu")
    tokens = caption_tokens(
        data.factors, 2, MADTokenizer(), torch.Generator().manual_seed(0)
    )
    # one batch: the running statistics are then that batch's mean and (unbiased) variance
    calibrate_batchnorm(model, data.images[:64], tokens=tokens, batch=len(tokens))
    model.eval()
    plain_encode_text = type(model).__mro__[1].encode_text
    inner = torch.nn.functional.normalize(plain_encode_text(model, tokens), dim=-1)
    torch.testing.assert_close(
        model.text_norm.running_mean, inner.mean(0), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        model.text_norm.running_var, inner.var(0, unbiased=True), atol=1e-6, rtol=1e-4
    )
    # without captions the text layer is left alone
    before = model.text_norm.running_mean.clone()
    calibrate_batchnorm(model, data.images[:64])
    assert torch.equal(model.text_norm.running_mean, before)


def test_a_normalised_run_is_stored_and_loaded_by_the_run_cache(tmp_path, monkeypatch):
    from gaplab import runs

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfg = runs.mad_config(
        "smoke", steps=4, eval_every=2, embed_norm=True, loss="sigmoid"
    )
    first = runs.get_or_train(cfg, device="cpu", progress=False)
    stored = torch.load(tmp_path / runs.run_key(cfg) / "final.pt", weights_only=True)
    assert (
        "text_norm.running_var" in stored["model"] and "logit_bias" in stored["model"]
    )
    again = runs.get_or_train(cfg, device="cpu", progress=False)
    assert again.seconds == first.seconds  # loaded, not trained
    assert has_embedding_norm(again.model)
    for (name, p), q in zip(
        first.model.state_dict().items(), again.model.state_dict().values()
    ):
        assert torch.equal(p.cpu(), q.cpu()), name
    from gaplab.training.train import encode, eval_set

    ev = eval_set(cfg, MADTokenizer(), torch.device("cpu"))
    img, txt = encode(again.model, ev["images"], ev["tokens"])
    assert np.allclose(img, first.eval_image, atol=1e-6)
    assert np.allclose(txt, first.eval_text, atol=1e-6)
    assert "embedding normalisation" in runs.describe(cfg)


# --- resumption, grids, fine-tuning ------------------------------------------------------------------------


def test_a_killed_remedy_run_resumes_to_the_same_numbers(tmp_path):
    cfg = _cfg(**SCHEDULE, swap_prob=0.5, loss="sigmoid", embed_norm=True)
    whole = train(cfg, tmp_path / "whole", progress=False, device="cpu")
    train(cfg, tmp_path / "killed", progress=False, device="cpu", stop_after=3)
    assert (tmp_path / "killed" / "ckpt.pt").exists()
    resumed = train(cfg, tmp_path / "killed", progress=False, device="cpu")
    assert resumed.history == whole.history
    assert _digest(resumed.model) == _digest(whole.model)


@pytest.mark.parametrize(
    "change, named",
    [(SCHEDULE, "temperature_end"), ({"swap_prob": 0.1}, "swap_prob")],
)
def test_grids_refuse_the_step_dependent_remedies(change, named):
    cfg = _cfg(**change)
    assert named in grid_refusal(cfg)
    with pytest.raises(GridError, match=named):
        train_grid(
            [cfg, dataclasses.replace(cfg, seed=1)], progress=False, device="cpu"
        )
    assert grid_refusal(_cfg(loss="sigmoid", embed_norm=True)) is None


def test_a_grid_trains_the_other_remedies_as_single_runs_do():
    cfg = _cfg(loss="sigmoid", embed_norm=True, temperature_param="softplus")
    cfgs = [cfg, dataclasses.replace(cfg, seed=1, k=3)]
    together = train_grid(cfgs, progress=False, device="cpu")
    for c, run in zip(cfgs, together):
        alone = train(c, progress=False, device="cpu")
        assert alone.history[0] == run.history[0]
        for a, b in zip(alone.history, run.history):
            for m in ("loss", "l2m", "rmg", "logit_scale", "entropy", "logit_bias"):
                if a[m] is not None:
                    # the tolerance of tests/test_grid.py: a stacked product rounds differently
                    assert a[m] == pytest.approx(b[m], abs=2e-3), (a["step"], m)


def test_the_run_cache_trains_ungriddable_runs_alone(tmp_path, monkeypatch):
    from gaplab import runs

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    configs = {
        "scheduled": runs.mad_config("smoke", steps=2, eval_every=2, **SCHEDULE),
        "swapped": runs.mad_config("smoke", steps=2, eval_every=2, swap_prob=0.5),
        "sigmoid": runs.mad_config("smoke", steps=2, eval_every=2, loss="sigmoid"),
    }
    got = runs.get_or_train_all(configs, device="cpu", progress=False, together=True)
    trainers = {
        name: json.loads((tmp_path / runs.run_key(c) / "meta.json").read_text())[
            "summary"
        ]["trainer"]
        for name, c in configs.items()
    }
    assert trainers == {
        "scheduled": "single run",
        "swapped": "single run",
        "sigmoid": "grid of 1",
    }
    assert got["scheduled"].history[-1]["logit_scale"] == pytest.approx(20.0)


def test_fine_tuning_adds_a_remedy_to_a_plain_run(tmp_path, monkeypatch):
    from gaplab import runs

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    source_cfg = runs.mad_config(
        "smoke", steps=4, eval_every=2, temperature_lr_mult=50.0
    )
    source = runs.get_or_train(source_cfg, device="cpu", progress=False)
    weights = tmp_path / runs.run_key(source_cfg) / "final.pt"
    tuned_cfg = runs.mad_config(
        "smoke",
        steps=4,
        eval_every=2,
        init_from=str(weights),
        loss="sigmoid",
        embed_norm=True,
        temperature_param="softplus",
    )
    start = train(tuned_cfg, device="cpu", progress=False, stop_after=0)
    for name, p in source.model.state_dict().items():
        if name != "logit_scale":
            assert torch.equal(p, start.model.state_dict()[name]), name
    # the new pieces start fresh; the scale is carried over as the scale it was, not as the raw number
    assert float(start.model.logit_bias.detach()) == SIGLIP_INIT_LOGIT_BIAS
    assert torch.equal(start.model.text_norm.weight, torch.ones(128))
    assert start.history[0]["logit_scale"] == pytest.approx(
        source.history[-1]["logit_scale"], rel=1e-5
    )
    other = create_mad_model(embed_dim=32)
    from gaplab.training.train import load_start_weights

    with pytest.raises(ValueError, match="do not fit"):
        load_start_weights(other, {"model": source.model.state_dict()}, tuned_cfg)


def test_describe_names_each_remedy():
    from gaplab import runs

    text = runs.describe(
        runs.mad_config(
            "smoke",
            swap_prob=0.05,
            swap_mode="soft",
            loss="sigmoid",
            temperature_param="softplus",
        )
    )
    assert "soft modality swap p=0.05" in text and "sigmoid loss" in text
    assert "softplus temperature" in text
    assert "scheduled from 100 to 20" in runs.describe(
        runs.mad_config("smoke", **SCHEDULE)
    )
