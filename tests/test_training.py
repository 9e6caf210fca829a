"""Tokenizer, caption sampling, losses, logits entropy, model presets and the training loop (determinism, resume)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gaplab import metrics
from gaplab.data.mad import CAPTION_WORDS, FACTORS, generate_mad
from gaplab.training import losses
from gaplab.training.models import MAD_PRESETS, create_mad_model, load_open_clip
from gaplab.training.tokenizer import MADTokenizer, caption_tokens
from gaplab.training.train import TrainConfig, init_weights_path, train
from tests.conftest import embedding_pair, normalise

WORD_FACTOR = {w: f for (f, _), w in CAPTION_WORDS.items()}


@pytest.fixture(scope="module")
def mad():
    return generate_mad(64, seed=3, glyphs="procedural")


def test_tokenizer_round_trip(mad):
    tok = MADTokenizer()
    caps = mad.captions(3, seed=1)
    assert tok.decode(tok(caps)) == caps
    ids = tok(caps)
    assert (ids.argmax(dim=1) == 5).all(), (
        "the end token must have the largest id (open_clip pools there)"
    )
    with pytest.raises(ValueError, match="not a MAD caption word"):
        tok("2-purple")
    with pytest.raises(ValueError, match="at most 6"):
        tok("-".join(["2"] * 7))


@pytest.mark.parametrize("k", range(6))
@pytest.mark.parametrize("object_factor", ["digit", "color"])
def test_caption_tokens_name_the_samples_factors(mad, k, object_factor):
    tok = MADTokenizer()
    gen = torch.Generator().manual_seed(0)
    caps = tok.decode(caption_tokens(mad.factors, k, tok, gen, object_factor))
    for i, cap in enumerate(caps):
        words = cap.split("-")
        facs = [WORD_FACTOR[w] for w in words]
        assert len(words) == k + 1 and len(set(facs)) == k + 1 and object_factor in facs
        for w, f in zip(words, facs):
            assert w == CAPTION_WORDS[(f, FACTORS[f][int(mad.factors[f][i])])]
    extra = caption_tokens(
        mad.factors, min(k, 4), tok, gen, object_factor, extra="scale"
    )
    assert all(
        "large" in c.split("-") or "small" in c.split("-") for c in tok.decode(extra)
    )


def test_caption_tokens_errors(mad):
    tok, gen = MADTokenizer(), torch.Generator()
    with pytest.raises(ValueError, match="0..5"):
        caption_tokens(mad.factors, 6, tok, gen)
    with pytest.raises(ValueError, match="unknown object factor"):
        caption_tokens(mad.factors, 1, tok, gen, "shape")


def slow_entropy(x, y, s):
    x, y = normalise(x), normalise(y)
    out = []
    for i in range(len(x)):
        z = [s * float(x[i] @ y[j]) for j in range(len(y))]
        m = max(z)
        p = [math.exp(v - m) for v in z]
        tot = sum(p)
        out.append(-sum(q / tot * math.log(q / tot) for q in p if q > 0))
    return sum(out) / len(out)


@given(embedding_pair(same_rows=False), st.floats(0.1, 100))
def test_logits_entropy(pair, scale):
    x, y = pair
    h = metrics.logits_entropy(x, y, scale)
    assert h == pytest.approx(slow_entropy(x, y, scale), abs=1e-9)
    assert -1e-12 <= h <= math.log(len(y)) + 1e-9


def test_logits_entropy_edges(rng):
    x, y = rng.normal(size=(5, 4)), rng.normal(size=(6, 4))
    assert math.isfinite(metrics.logits_entropy(x, y, 1e6))
    assert metrics.logits_entropy(
        np.ones((3, 2)), np.ones((4, 2)), 10
    ) == pytest.approx(math.log(4))
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="logit_scale"):
            metrics.logits_entropy(x, y, bad)


def test_losses_match_direct_formulas(rng):
    x = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(6, 3))), dim=1)
    y = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(6, 3))), dim=1)
    pairs = [(i, j) for i, j in itertools.permutations(range(6), 2)]
    unif = math.log(
        sum(math.exp(-2 * float((x[i] - x[j]).pow(2).sum())) for i, j in pairs)
        / len(pairs)
    )
    assert float(losses.uniformity(x)) == pytest.approx(unif)
    cross = math.log(
        sum(math.exp(-2 * float((x[i] - y[j]).pow(2).sum())) for i, j in pairs)
        / len(pairs)
    )
    assert float(losses.cross_uniformity(x, y)) == pytest.approx(cross)
    assert float(losses.alignment(x, y)) == pytest.approx(
        float(((x - y) ** 2).sum(1).mean())
    )
    logits = 10 * x @ y.T
    manual = (
        -torch.log_softmax(logits, 1).diag().mean()
        - torch.log_softmax(logits, 0).diag().mean()
    ) / 2
    assert float(losses.clip_loss(x, y, torch.tensor(10.0))) == pytest.approx(
        float(manual)
    )


@pytest.mark.parametrize("preset", MAD_PRESETS)
def test_presets_build_through_open_clip(preset):
    model = create_mad_model(preset, seed=0)
    tok = MADTokenizer(model.context_length)
    assert model.encode_image(torch.zeros(2, 3, 28, 28)).shape[0] == 2
    assert model.encode_text(tok(["2-red", "3"])).shape[0] == 2
    a, b = create_mad_model(preset, seed=0), create_mad_model(preset, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), a.parameters()))
    assert not all(
        torch.equal(p, q) for p, q in zip(model.parameters(), b.parameters())
    )


def test_temperature_and_errors():
    m = create_mad_model(temperature=10.0)
    assert (
        m.logit_scale.exp().item() == pytest.approx(10.0)
        and not m.logit_scale.requires_grad
    )
    assert create_mad_model().logit_scale.requires_grad
    with pytest.raises(ValueError, match="temperature"):
        create_mad_model(temperature=-1)
    with pytest.raises(ValueError, match="unknown MAD model preset.*mad-cnn"):
        create_mad_model("mad-huge")


def test_local_checkpoint_loads_through_open_clip(tmp_path):
    model = create_mad_model("mad-cnn", seed=5)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    loaded, _, tok = load_open_clip("mad-cnn", pretrained=str(path))
    assert all(
        torch.equal(p, q)
        for p, q in zip(model.state_dict().values(), loaded.state_dict().values())
    )
    assert isinstance(tok, MADTokenizer)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_open_clip("mad-cnn", pretrained=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_open_clip("no-such-model")


SMOKE = dict(n_train=256, steps=6, batch_size=32, eval_every=2, eval_n=64, warmup=2)


def test_training_is_deterministic_and_learns_something():
    a = train(TrainConfig(**SMOKE), progress=False, device="cpu")
    b = train(TrainConfig(**SMOKE), progress=False, device="cpu")
    assert a.history == b.history
    assert [h["step"] for h in a.history] == [0, 2, 4, 6]
    assert np.array_equal(a.eval_image, b.eval_image)
    assert a.eval_image.shape == (64, 128)
    c = train(TrainConfig(**{**SMOKE, "seed": 1}), progress=False, device="cpu")
    assert c.history != a.history


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
    whole = train(
        TrainConfig(**SMOKE), tmp_path / "whole", progress=False, device="cpu"
    )
    run_dir = tmp_path / "killed"
    train(
        TrainConfig(**SMOKE), run_dir, progress=False, device="cpu", stop_after=3
    )  # "killed" after step 3
    assert (run_dir / "ckpt.pt").exists()
    resumed = train(TrainConfig(**SMOKE), run_dir, progress=False, device="cpu")
    assert resumed.history == whole.history
    for p, q in zip(
        whole.model.state_dict().values(), resumed.model.state_dict().values()
    ):
        assert torch.equal(p, q)


def test_embedding_size_is_a_setting():
    r = train(TrainConfig(**{**SMOKE, "embed_dim": 32}), progress=False, device="cpu")
    assert r.eval_image.shape == r.eval_text.shape == (64, 32)
    assert r.model.text_projection.shape[1] == 32
    with pytest.raises(ValueError, match="embed_dim"):
        create_mad_model("mad-cnn", embed_dim=0)


def test_gap_closed_at_initialisation():
    plain = train(TrainConfig(**SMOKE), progress=False, device="cpu")
    aligned = train(
        TrainConfig(**{**SMOKE, "align_init": True}), progress=False, device="cpu"
    )
    # a rotation of the text side onto the images: the gap at step 0 is much smaller, the text cone's shape kept
    assert aligned.history[0]["l2m"] < 0.5 * plain.history[0]["l2m"]


@torch.no_grad()
def test_alignment_is_a_rotation_folded_into_the_text_projection():
    from gaplab.training.train import align_text_to_images, mad_data

    cfg = TrainConfig(**{**SMOKE, "align_init": True})
    model = create_mad_model("mad-cnn", seed=0)
    before = model.text_projection.detach().clone()
    align_text_to_images(
        model,
        mad_data(cfg.n_train, cfg.data_seed, cfg.glyphs, "cpu"),
        cfg,
        MADTokenizer(),
    )
    rot = torch.linalg.solve(before.double(), model.text_projection.double())
    torch.testing.assert_close(
        rot @ rot.T, torch.eye(len(rot), dtype=torch.float64), atol=1e-4, rtol=0
    )


def test_killed_aligned_run_resumes_to_the_same_numbers(tmp_path):
    cfg = TrainConfig(**{**SMOKE, "align_init": True})
    whole = train(cfg, tmp_path / "whole", progress=False, device="cpu")
    train(cfg, tmp_path / "killed", progress=False, device="cpu", stop_after=3)
    resumed = train(cfg, tmp_path / "killed", progress=False, device="cpu")
    assert resumed.history == whole.history


def test_frozen_temperature_stays_frozen():
    r = train(
        TrainConfig(**{**SMOKE, "temperature": 30.0}), progress=False, device="cpu"
    )
    assert all(h["logit_scale"] == pytest.approx(30.0) for h in r.history)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"k": 6}, "0..5"),
        ({"preset": "big"}, "mad-cnn"),
        ({"glyphs": "fonts"}, "procedural"),
        ({"steps": 0}, "positive integer"),
        ({"object_factor": "size"}, "digit"),
        ({"temperature": "hot"}, "learnable"),
        ({"batch_size": 1000}, "exceed n_train"),
        ({"embed_dim": 1}, "embed_dim"),
        ({"embed_dim": 32.0}, "embed_dim"),
        ({"align_init": 1}, "align_init"),
        ({"align_init": True, "init_from": "run:abc"}, "fine-tuning"),
    ],
)
def test_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{**SMOKE, **change})


def test_run_cache(tmp_path, monkeypatch):
    from gaplab import runs

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfg = runs.mad_config("smoke", steps=4, eval_every=2)
    assert cfg.n_train == 1000 and cfg.glyphs == "procedural"
    first = runs.get_or_train(cfg, device="cpu", progress=False)
    entry = tmp_path / runs.run_key(cfg)
    assert (entry / "final.pt").exists() and not (entry / "ckpt.pt").exists()
    again = runs.get_or_train(cfg, device="cpu", progress=False)
    assert (
        again.history == first.history and again.seconds == first.seconds
    )  # loaded, not retrained
    assert np.array_equal(again.eval_image, first.eval_image)
    assert runs.run_key(
        runs.mad_config("smoke", steps=4, eval_every=2, k=3)
    ) != runs.run_key(cfg)
    (entry / "final.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="could not be read"):
        redone = runs.get_or_train(cfg, device="cpu", progress=False)
    assert redone.history == first.history
    with pytest.raises(ValueError, match="unknown settings"):
        runs.mad_config("smoke", epochs=3)


def test_smoke_profile_run_is_within_its_budget():
    import time

    from gaplab import runs

    t = time.perf_counter()
    result = train(runs.mad_config("smoke"), progress=False, device="cpu")
    assert time.perf_counter() - t < 20.0, (
        "the smoke profile's MAD run must take under 20 s on two cores"
    )
    assert len(result.history) == 1 + 20 // 5


def test_fine_tuning_starts_from_another_runs_weights(tmp_path, monkeypatch):
    from gaplab import runs

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    source_cfg = runs.mad_config("smoke", steps=4, eval_every=2)
    source = runs.get_or_train(source_cfg, device="cpu", progress=False)
    weights = tmp_path / runs.run_key(source_cfg) / "final.pt"
    tuned_cfg = runs.mad_config(
        "smoke", steps=4, eval_every=2, k=4, temperature=30.0, init_from=str(weights)
    )
    start = train(tuned_cfg, device="cpu", progress=False, stop_after=0)
    for (name, p), q in zip(
        source.model.state_dict().items(), start.model.state_dict().values()
    ):
        if name != "logit_scale":
            assert torch.equal(p, q), name
    assert start.model.logit_scale.exp().item() == pytest.approx(30.0)
    assert not start.model.logit_scale.requires_grad
    # step 0 measures the loaded model as it is (its own BatchNorm statistics) on the new run's captions
    from gaplab import metrics as M
    from gaplab.training.tokenizer import MADTokenizer
    from gaplab.training.train import encode, eval_set

    ev = eval_set(tuned_cfg, MADTokenizer(), torch.device("cpu"))
    img, txt = encode(source.model, ev["images"], ev["tokens"])
    assert start.history[0]["l2m"] == pytest.approx(M.l2m(img, txt), abs=1e-6)
    tuned = runs.get_or_train(tuned_cfg, device="cpu", progress=False)
    assert tuned.history[-1]["step"] == 4 and tuned.history[-1][
        "logit_scale"
    ] == pytest.approx(30.0)


def test_training_leaves_subnormal_floats_alone():
    # flushing denormals is processor-wide state: left on, it would break later code (hypothesis refuses to run)
    import numpy as np

    train(
        TrainConfig(
            n_train=64, steps=1, batch_size=8, eval_n=16, eval_every=1, warmup=0
        ),
        progress=False,
        device="cpu",
    )
    assert (np.array([5e-324]) * 1.0)[0] > 0


def test_a_cached_start_needs_the_run_cache():
    # training reads files only: "run:<key>" is for the run cache to resolve (gaplab.runs.get_or_train)
    cfg = TrainConfig(n_train=64, batch_size=16, init_from="run:abc")
    with pytest.raises(ValueError, match="run cache"):
        init_weights_path(cfg)
    assert str(init_weights_path(cfg, "/x/final.pt")) == "/x/final.pt"
    assert init_weights_path(TrainConfig(n_train=64, batch_size=16)) is None
