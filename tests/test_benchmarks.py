"""The training benchmark's FLOP accounting (benchmarks/bench_mad.py), on a tiny set."""

from __future__ import annotations

import pytest
import torch

from gaplab.data.mad import generate_mad
from gaplab.training.train import TrainConfig
from tests.conftest import load_benchmark


def _bench_mad():
    return load_benchmark("bench_mad")


def test_step_flops_grow_with_the_batch_and_the_matmul_rate_is_positive():
    bench = _bench_mad()
    device = torch.device("cpu")
    mad = generate_mad(64, seed=0, glyphs="procedural", device=device)
    small = bench.step_flops(mad, TrainConfig(n_train=64, batch_size=8, k=2), device)
    large = bench.step_flops(mad, TrainConfig(n_train=64, batch_size=16, k=2), device)
    assert small > 0
    # the towers' work is per sample; the 16 x 16 logits add a little more than twice 8 x 8
    assert large == pytest.approx(2 * small, rel=0.05)
    assert bench.matmul_rate(device, size=128) > 1e6


def test_the_grid_timing_steps_every_run():
    bench = _bench_mad()
    device = torch.device("cpu")
    mad = generate_mad(64, seed=0, glyphs="procedural", device=device)
    cfg = TrainConfig(n_train=64, batch_size=8, k=2)
    assert bench.bench_grid(mad, cfg, 2, device, size=3) > 0


def test_the_precision_comparison_trains_both_ways_and_judges_both(monkeypatch):
    import gaplab.training.precision as precision_module

    # bfloat16 autocast runs on any CPU; the script's own refusal guards real measurements
    monkeypatch.setattr(precision_module, "cpu_has_native_bfloat16", lambda: True)
    bench = load_benchmark("compare_precision")
    out = bench.compare("smoke", [0, 2, 5], [0])
    assert [(r["k"], r["seed"]) for r in out["runs"]] == [(0, 0), (2, 0), (5, 0)]
    assert set(out["verdicts"]) == {"float32", "bfloat16"}
    for p in ("float32", "bfloat16"):
        assert out["seconds"][p] > 0
        assert set(out["verdicts"][p]) == set(bench.CHECKS)
        for m, bound in bench.CHECKS.items():
            assert out["verdicts"][p][m] == (out["trends"][p][m] <= bound)
    assert out["same_verdicts"] == (
        out["verdicts"]["float32"] == out["verdicts"]["bfloat16"]
    )
    # the two arms really computed differently
    assert any(r["difference"]["rmg"] != 0 for r in out["runs"])
