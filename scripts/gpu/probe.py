"""A first look at a GPU: what precision training chooses there, and whether every training path runs on it.

    python scripts/gpu/probe.py [--device cuda] [--steps 20] [--batch 512] [--grid 8] [--out FILE]

Writes one JSON object: the device, its compute capability, the precision gaplab chooses and why; the losses
and speed of single-run steps and of grid steps at the given batch; a short whole run against the same run
in a grid of two (their largest difference); and the gap measures computed on GPU tensors against the same
measures on the host copy. Every number is measured here; nothing is assumed. It runs on the CPU too (for
its own test), where the precision is float32.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch

from gaplab import metrics
from gaplab.data.mad import generate_mad
from gaplab.training.grid import train_grid
from gaplab.training.precision import choose_precision
from gaplab.training.train import TrainConfig, train


def _bench_mad():
    """benchmarks/bench_mad.py, a script, loaded as a module."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mad.py"
    spec = importlib.util.spec_from_file_location("bench_mad", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(step, steps, device) -> tuple[float, list[float]]:
    step()  # warm-up: kernels chosen, memory allocated
    _sync(device)
    t = time.perf_counter()
    losses = [step() for _ in range(steps)]
    _sync(device)
    return time.perf_counter() - t, [float(x) for x in losses]


def steps_probe(device, steps: int, batch: int, grid: int) -> dict:
    # the same steps the training benchmark times, here also checked for finite losses
    bench = _bench_mad()
    cfg = TrainConfig(n_train=4 * batch, batch_size=batch, k=2)
    mad = generate_mad(cfg.n_train, seed=0, glyphs="procedural", device=device)
    single_s, single_losses = _timed(
        bench.resident_step(mad, cfg, device), steps, device
    )
    grid_step = bench.grid_steps(mad, cfg, device, grid)
    grid_s, grid_losses = _timed(lambda: grid_step().mean(), steps, device)
    return {
        "batch": batch,
        "steps": steps,
        "single_run": {
            "samples_per_second": steps * batch / single_s,
            "first_loss": single_losses[0],
            "last_loss": single_losses[-1],
            "all_finite": all(map(_finite, single_losses)),
        },
        "grid": {
            "runs": grid,
            "samples_per_second": steps * batch * grid / grid_s,
            "first_mean_loss": grid_losses[0],
            "last_mean_loss": grid_losses[-1],
            "all_finite": all(map(_finite, grid_losses)),
        },
    }


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def grid_against_single(device) -> dict:
    base = TrainConfig(
        n_train=2000, steps=30, batch_size=128, eval_n=500, eval_every=15, warmup=5
    )
    cfgs = [dataclasses.replace(base, k=k, seed=k) for k in (1, 4)]
    alone = [train(c, device=device, progress=False) for c in cfgs]
    together = train_grid(cfgs, device=device, progress=False)
    measures = ("loss", "l2m", "rmg", "logit_scale", "entropy")
    return {
        "steps": base.steps,
        "largest_difference": {
            m: max(
                abs(a.history[-1][m] - b.history[-1][m])
                for a, b in zip(alone, together)
            )
            for m in measures
        },
    }


def metrics_on_device(device, n: int = 8000, d: int = 512) -> dict:
    """Each gap measure on tensors on ``device`` (time of the first call) against the host copy's value."""
    gen = torch.Generator(device=device).manual_seed(0)
    img = torch.randn(n, d, generator=gen, device=device) + 0.5
    txt = torch.randn(n, d, generator=gen, device=device) - 0.5
    out = {}
    measures = {
        "l2m": lambda a, b: metrics.l2m(a, b),
        "l2i": lambda a, b: metrics.l2i(a, b),
        "rmg": lambda a, b: metrics.rmg(a, b),
        "mean_cosine": lambda a, b: metrics.mean_cosine(a),
    }
    for name, fn in measures.items():
        _sync(device)
        t = time.perf_counter()
        on_device = fn(img, txt)
        _sync(device)
        ms = (time.perf_counter() - t) * 1e3
        host = fn(img.cpu(), txt.cpu())
        out[name] = {
            "ms": ms,
            "difference_from_host": abs(float(on_device) - float(host)),
        }
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    precision = choose_precision(device)
    cuda = device.type == "cuda"
    result = {
        "torch": torch.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "capability": list(torch.cuda.get_device_capability(device)) if cuda else None,
        "is_bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
        "precision": precision.name,
        "precision_reason": precision.reason,
    }
    for name, probe in (
        ("steps", lambda: steps_probe(device, args.steps, args.batch, args.grid)),
        ("grid_against_single", lambda: grid_against_single(device)),
        ("metrics_on_device", lambda: metrics_on_device(device)),
    ):
        print(f"probe: {name} ...", file=sys.stderr, flush=True)
        try:
            result[name] = probe()
        except Exception as exc:  # noqa: BLE001 - a probe reports what broke and goes on to the next
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
