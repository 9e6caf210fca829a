"""Speed of MAD generation and of the device-resident training pipeline against a per-sample one.

    python benchmarks/bench_mad.py [--device cpu|cuda] [--steps N]

Writes benchmarks/results/mad-<device>-<date>.json with the machine it ran on. It also times whole training runs
of the `smoke` and `cpu` profiles against their budgets (smoke under 20 s; cpu under 90 s on two CPU cores,
reaching zero-shot digit accuracy >= 0.9); `--no-budgets` skips them. The two training pipelines feed
the same model (same preset, batch size, optimiser) on the same device in one run:
- resident: uint8 images held on the device, batches indexed and captions sampled with tensor ops (gaplab.training.train);
- grid: `--grid` runs stepped together under vmap (gaplab.training.grid), every run's samples counted;
- per-sample: a Dataset returning one PIL image and one caption string per item, torchvision's ToTensor and
  Normalize, the tokenizer per caption, batched by a DataLoader (the usual image-text pipeline).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from gaplab.data.mad import generate_mad
from gaplab.training.models import create_mad_model
from gaplab.training.precision import choose_precision, make_scaler
from gaplab.training.tokenizer import MADTokenizer, caption_tokens
from gaplab.training.train import TrainConfig, make_optimizer, train_step

OUT = Path(__file__).parent / "results"


class PerSampleMAD(Dataset):
    def __init__(self, mad, k: int, seed: int = 0):
        from torchvision import transforms

        self.images = mad.images.cpu()
        self.captions = mad.captions(k, seed=seed)
        self.tok = MADTokenizer()
        self.to_tensor = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]
        )

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        img = Image.fromarray(self.images[i].permute(1, 2, 0).numpy())
        return self.to_tensor(img), self.tok(self.captions[i])[0]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _samples_per_second(step, steps: int, batch: int, device) -> float:
    """Training samples per second over ``steps`` calls of ``step``, after three warm-up calls."""
    for _ in range(3):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def bench_generation(n: int, device) -> float:
    generate_mad(
        256, seed=1, glyphs="procedural", device=device
    )  # glyph templates built once per process
    _sync(device)
    t = time.perf_counter()
    generate_mad(n, seed=0, glyphs="procedural", device=device)
    _sync(device)
    return n / (time.perf_counter() - t)


def resident_step(mad, cfg, device):
    """One run's training step on the device-resident pipeline, as a function returning the loss."""
    model = create_mad_model(cfg.preset, device=device)
    opt = make_optimizer(model, cfg)
    precision = choose_precision(device)
    scaler = make_scaler(precision, device)
    tok, gen = MADTokenizer(), torch.Generator(device=device).manual_seed(0)

    def one():
        idx = torch.randint(
            0, len(mad), (cfg.batch_size,), generator=gen, device=device
        )
        tokens = caption_tokens(
            {k: v[idx] for k, v in mad.factors.items()}, cfg.k, tok, gen
        )
        return train_step(model, opt, mad.images[idx], tokens, cfg, precision, scaler)

    return one


def grid_steps(mad, cfg, device, size: int):
    """A step of ``size`` runs stacked together (gaplab.training.grid), as a function returning their losses."""
    from gaplab.training.grid import StackedRuns, grid_step, stacked_losses

    models = [create_mad_model(cfg.preset, seed=i, device=device) for i in range(size)]
    stack = StackedRuns(models, [make_optimizer(m, cfg) for m in models], cfg)
    precision = choose_precision(device)
    losses_of = stacked_losses(stack, cfg, precision)
    scaler = make_scaler(precision, device)
    tok, gen = MADTokenizer(), torch.Generator(device=device).manual_seed(0)

    def one():
        idx = torch.randint(
            0, len(mad), (size * cfg.batch_size,), generator=gen, device=device
        )
        tokens = caption_tokens(
            {k: v[idx] for k, v in mad.factors.items()}, cfg.k, tok, gen
        )
        shape = (size, cfg.batch_size)
        return grid_step(
            stack,
            losses_of,
            mad.images[idx].view(*shape, *mad.images.shape[1:]),
            tokens.view(*shape, -1),
            scaler,
        )

    return one


def bench_resident(mad, cfg, steps, device) -> float:
    one = resident_step(mad, cfg, device)
    return _samples_per_second(one, steps, cfg.batch_size, device)


def bench_grid(mad, cfg, steps, device, size: int) -> float:
    """Training samples per second of ``size`` runs stepped together, all runs counted."""
    one = grid_steps(mad, cfg, device, size)
    return _samples_per_second(one, steps, size * cfg.batch_size, device)


def bench_per_sample(mad, cfg, steps, device, workers) -> float:
    model = create_mad_model(cfg.preset, device=device)
    opt = make_optimizer(model, cfg)
    precision = choose_precision(device)
    scaler = make_scaler(precision, device)
    loader = DataLoader(
        PerSampleMAD(mad, cfg.k),
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    it = iter(loader)

    def one():
        nonlocal it
        try:
            x, tokens = next(it)
        except StopIteration:
            it = iter(loader)
            x, tokens = next(it)
        x, tokens = (
            x.to(device, non_blocking=True),
            tokens.to(device, non_blocking=True),
        )
        # the same step as the resident pipeline, from float input: undo its uint8 -> [-1, 1] mapping
        train_step(
            model,
            opt,
            ((x + 1) * 127.5).round().to(torch.uint8),
            tokens,
            cfg,
            precision,
            scaler,
        )

    return _samples_per_second(one, steps, cfg.batch_size, device)


def step_flops(mad, cfg, device) -> float:
    """Floating-point operations of one training step (forward and backward matrix products and convolutions),
    counted by torch's FlopCounterMode; elementwise work and the optimiser are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    model = create_mad_model(cfg.preset, device=device)
    opt = make_optimizer(model, cfg)
    precision = choose_precision(device)
    scaler = make_scaler(precision, device)
    tok, gen = MADTokenizer(), torch.Generator(device=device).manual_seed(0)
    idx = torch.randint(0, len(mad), (cfg.batch_size,), generator=gen, device=device)
    tokens = caption_tokens(
        {k: v[idx] for k, v in mad.factors.items()}, cfg.k, tok, gen
    )
    with FlopCounterMode(display=False) as counter:
        train_step(model, opt, mad.images[idx], tokens, cfg, precision, scaler)
    return float(counter.get_total_flops())


def matmul_rate(device, size: int = 2048) -> float:
    """The device's measured matrix-multiply rate (FLOP/s) in the precision training uses there."""
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(
        choose_precision(device).name, torch.float32
    )
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    reps = 5 if device.type == "cpu" else 50
    for _ in range(2):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * size**3 * reps / (time.perf_counter() - t)


def bench_profile_run(name: str, device) -> dict:
    """A whole training run of a profile's MAD configuration (data generation and evaluation included)."""
    from gaplab import runs
    from gaplab.training.train import train

    print(f"whole training run at profile {name} ...", flush=True)
    t = time.perf_counter()
    res = train(runs.mad_config(name), device=device, progress=False)
    seconds = time.perf_counter() - t
    final = res.history[-1]
    budget = {"smoke": 20.0, "cpu": 90.0}[name]
    return {
        "seconds": seconds,
        "budget_seconds": budget,
        "within_budget": seconds < budget,
        "samples": final["samples"],
        "zero_shot_digit_acc": final["zero_shot_digit_acc"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument(
        "--grid", type=int, default=8, help="runs stepped together in the grid timing"
    )
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument(
        "--no-budgets",
        action="store_true",
        help="skip the whole-run timings of the smoke and cpu profiles",
    )
    ap.add_argument(
        "--out", type=Path, default=OUT, help="folder for the JSON (default results/)"
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = TrainConfig(n_train=args.n, batch_size=args.batch, k=2)
    print(f"MAD generation ({args.n} images) on {device} ...", flush=True)
    gen_rate = bench_generation(args.n, device)
    mad = generate_mad(args.n, seed=0, glyphs="procedural", device=device)
    print("training, device-resident pipeline ...", flush=True)
    resident = bench_resident(mad, cfg, args.steps, device)
    print(f"training, a grid of {args.grid} runs stepped together ...", flush=True)
    grid = bench_grid(mad, cfg, args.steps, device, args.grid)
    print(
        f"training, per-sample PIL + DataLoader pipeline ({args.workers} workers) ...",
        flush=True,
    )
    per_sample = bench_per_sample(mad, cfg, args.steps, device, args.workers)
    print("FLOPs of one step and the device's matrix-multiply rate ...", flush=True)
    flops = step_flops(mad, cfg, device)
    peak = matmul_rate(device)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "capability": list(torch.cuda.get_device_capability(device))
            if device.type == "cuda"
            else None,
            "precision": choose_precision(device).name,
        },
        "settings": {
            "preset": cfg.preset,
            "batch_size": args.batch,
            "steps": args.steps,
            "n_images": args.n,
            "dataloader_workers": args.workers,
            "grid_runs": args.grid,
        },
        "mad_images_per_second": gen_rate,
        "train_samples_per_second": {
            "resident": resident,
            "per_sample_dataloader": per_sample,
            f"grid_of_{args.grid}": grid,
        },
        "grid_over_single_run": grid / resident,
        "resident_over_per_sample": resident / per_sample,
        "flops_per_sample": flops / cfg.batch_size,
        "achieved_flops_per_second": flops / cfg.batch_size * resident,
        "matmul_flops_per_second": peak,
        "share_of_matmul_rate": flops / cfg.batch_size * resident / peak,
    }
    if not args.no_budgets:
        result["profile_runs"] = {
            name: bench_profile_run(name, device) for name in ("smoke", "cpu")
        }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"mad-{device.type}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
