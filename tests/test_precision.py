"""Mixed precision chosen by the device's hardware, the float16 + gradient scaler path (run on the CPU), and
bfloat16 on the CPU as an opt-in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gaplab.training.precision as precision_module
from gaplab import runs
from gaplab.book import record
from gaplab.data.mad import generate_mad
from gaplab.training.models import create_mad_model
from gaplab.training.precision import (
    CPU_PRECISION_ENV,
    FLOAT32,
    Precision,
    choose_precision,
    cpu_has_native_bfloat16,
    make_scaler,
)
from gaplab.training.tokenizer import MADTokenizer, caption_tokens
from gaplab.training.train import TrainConfig, make_optimizer, train, train_step


@pytest.mark.parametrize(
    "capability, gpu, name, scaler",
    [
        (
            (7, 5),
            "Tesla T4",
            "float16",
            True,
        ),  # Colab's free GPU: bfloat16 only emulated
        ((7, 0), "Tesla V100-SXM2-16GB", "float16", True),
        ((6, 0), "Tesla P100-PCIE-16GB", "float16", True),
        ((8, 0), "NVIDIA A100-SXM4-40GB", "bfloat16", False),
        ((8, 9), "NVIDIA L4", "bfloat16", False),
        ((9, 0), "NVIDIA H100 80GB HBM3", "bfloat16", False),
    ],
)
def test_precision_follows_the_compute_capability(
    monkeypatch, capability, gpu, name, scaler
):
    monkeypatch.setattr(
        torch.cuda, "get_device_capability", lambda device=None: capability
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: gpu)
    # torch counts emulation here and says True even on a T4: the choice must not rest on it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    p = choose_precision("cuda")
    assert (p.name, p.scaler) == (name, scaler)
    assert p.dtype == {"float16": torch.float16, "bfloat16": torch.bfloat16}[name]
    assert gpu in p.reason and f"{capability[0]}.{capability[1]}" in p.reason


def test_cpu_trains_in_float32():
    p = choose_precision("cpu")
    assert p.name == "float32" and p.dtype is None and not p.scaler
    assert not make_scaler(p, "cpu").is_enabled()


def _batch(n=32, seed=0):
    data = generate_mad(n, seed=seed, glyphs="procedural")
    gen = torch.Generator().manual_seed(seed)
    return data.images, caption_tokens(data.factors, 2, MADTokenizer(), gen, "digit")


def test_float16_with_a_scaler_runs_on_the_cpu():
    cfg = TrainConfig(
        n_train=64, steps=3, batch_size=32, eval_n=16, eval_every=1, warmup=0
    )
    model = create_mad_model(seed=0)
    opt = make_optimizer(model, cfg)
    for group in opt.param_groups:
        group["lr"] = 1e-3
    fp16 = Precision("float16", torch.float16, True, "float16 (test)")
    scaler = make_scaler(fp16, "cpu")
    seen = []
    hook = model.visual.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    before = [p.detach().clone() for p in model.parameters()]
    images, tokens = _batch()
    with pytest.raises(ValueError, match="needs a gradient scaler"):
        train_step(model, opt, images, tokens, cfg, fp16)
    losses = [
        float(train_step(model, opt, images, tokens, cfg, fp16, scaler))
        for _ in range(3)
    ]
    hook.remove()
    assert set(seen) == {torch.float16}  # the image tower really ran in float16
    assert all(torch.isfinite(torch.tensor(losses)))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert scaler.get_scale() > 0


def test_scaler_skips_a_step_whose_gradients_overflow():
    cfg = TrainConfig(
        n_train=64, steps=3, batch_size=32, eval_n=16, eval_every=1, warmup=0
    )
    model = create_mad_model(seed=0)
    opt = make_optimizer(model, cfg)
    fp16 = Precision("float16", torch.float16, True, "float16 (test)")
    scaler = torch.amp.GradScaler(
        "cpu", init_scale=2.0**100
    )  # scaled gradients overflow float16 at once
    before = [p.detach().clone() for p in model.parameters()]
    images, tokens = _batch()
    train_step(model, opt, images, tokens, cfg, fp16, scaler)
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.parameters())
    )  # the step was skipped
    assert scaler.get_scale() < 2.0**100


def test_the_run_records_its_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfg = runs.mad_config("smoke", steps=2, eval_every=2)
    first = runs.get_or_train(cfg, device="cpu", progress=False)
    assert first.precision == "float32"
    from gaplab.runs import store

    assert (
        store.read_meta(tmp_path / runs.run_key(cfg))["summary"]["precision"]
        == "float32"
    )
    assert runs.get_or_train(cfg, device="cpu", progress=False).precision == "float32"


def test_float32_steps_equal_a_plain_float32_step():
    # the CPU path must not change the arithmetic: one step with the default precision equals FLOAT32's
    cfg = TrainConfig(
        n_train=64, steps=3, batch_size=32, eval_n=16, eval_every=1, warmup=0
    )
    images, tokens = _batch()
    out = []
    for precision in (None, FLOAT32):
        model = create_mad_model(seed=0)
        opt = make_optimizer(model, cfg)
        train_step(model, opt, images, tokens, cfg, precision)
        out.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*out))
    result = train(cfg, device="cpu", progress=False)
    assert result.precision == "float32"


# --- bfloat16 on the CPU: an opt-in, allowed only where the processor has the instructions ---


def _native(monkeypatch, present: bool):
    monkeypatch.setattr(precision_module, "cpu_has_native_bfloat16", lambda: present)


def test_cpu_bfloat16_is_refused_without_the_instructions(monkeypatch):
    _native(monkeypatch, False)
    with pytest.raises(ValueError, match="avx512_bf16 or amx_bf16"):
        choose_precision("cpu", "bfloat16")
    # the refusal is about the CPU: a GPU picks by its hardware whatever the run's CPU choice
    assert choose_precision("meta", "bfloat16").name == "float32"


def test_cpu_bfloat16_autocasts_where_the_instructions_exist(monkeypatch):
    _native(monkeypatch, True)
    p = choose_precision("cpu", "bfloat16")
    assert (p.name, p.dtype, p.scaler) == ("bfloat16", torch.bfloat16, False)
    assert choose_precision("cpu", "float32") == choose_precision("cpu")


@pytest.mark.parametrize(
    "found, native",
    [
        ({"avx512_bf16": True, "amx_bf16": False}, True),
        ({"avx512_bf16": False, "amx_bf16": True}, True),
        ({"avx512_bf16": False, "amx_bf16": False, "avx512_f": True}, False),
        ({}, False),
    ],
)
def test_native_bfloat16_is_read_from_the_processor_features(
    monkeypatch, found, native
):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: found, raising=False)
    assert cpu_has_native_bfloat16() is native


def test_without_torch_s_feature_list_the_kernel_s_flags_decide(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    assert isinstance(cpu_has_native_bfloat16(), bool)


@pytest.mark.parametrize("bad", ["float16", "bf16", "", None])
def test_an_unknown_cpu_precision_is_refused(bad):
    with pytest.raises(ValueError, match="cpu_precision=.*float32, bfloat16"):
        choose_precision("cpu", bad)
    with pytest.raises(ValueError, match="cpu_precision"):
        TrainConfig(cpu_precision=bad)


def test_the_environment_sets_the_cpu_precision_of_profile_runs(monkeypatch):
    monkeypatch.delenv(CPU_PRECISION_ENV, raising=False)
    plain = runs.mad_config("smoke")
    assert plain.cpu_precision == "float32"
    monkeypatch.setenv(CPU_PRECISION_ENV, "bfloat16")
    bf16 = runs.mad_config("smoke")
    assert bf16.cpu_precision == "bfloat16"
    # another computation, another run: the cache never serves one for the other
    assert runs.run_key(bf16) != runs.run_key(plain)
    assert "bfloat16 on a CPU" in runs.describe(bf16)
    assert runs.mad_config("smoke", cpu_precision="float32") == plain
    monkeypatch.setenv(CPU_PRECISION_ENV, "half")
    with pytest.raises(ValueError, match=f"{CPU_PRECISION_ENV}='half'"):
        runs.mad_config("smoke")


def test_a_record_names_the_cpu_precision_its_runs_train_in(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(CPU_PRECISION_ENV, raising=False)
    assert record.machine()["precision"] == "float32"
    _native(monkeypatch, True)
    monkeypatch.setenv(CPU_PRECISION_ENV, "bfloat16")
    assert record.machine()["precision"] == "bfloat16"


def test_a_bfloat16_cpu_run_trains_in_bfloat16_and_says_so(tmp_path, monkeypatch):
    # autocast to bfloat16 runs on any CPU (slowly where emulated), so the path is tested everywhere
    _native(monkeypatch, True)
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfgs = {
        p: runs.mad_config("smoke", steps=4, eval_every=2, cpu_precision=p)
        for p in ("float32", "bfloat16")
    }
    seen = []
    real = torch.autocast

    def spy(*args, **kwargs):
        seen.append(kwargs.get("dtype"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    out = {
        p: runs.get_or_train(c, device="cpu", progress=False) for p, c in cfgs.items()
    }
    assert seen and set(seen) == {torch.bfloat16}  # only the bfloat16 run autocast
    assert out["bfloat16"].precision == "bfloat16"
    from gaplab.runs import store

    meta = store.read_meta(tmp_path / runs.run_key(cfgs["bfloat16"]))
    assert meta["summary"]["precision"] == "bfloat16"
    a, b = out["float32"].eval_image, out["bfloat16"].eval_image
    assert np.isfinite(b).all()
    # rounded differently, yet the same model: the embeddings differ, but by little
    assert not np.array_equal(a, b)
    assert np.abs(a - b).max() < 0.05
