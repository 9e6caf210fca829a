"""A grid of whole runs against the same runs trained one at a time: wall time and how far the numbers differ.

    python benchmarks/compare_grid.py [--profile cpu] [--ks 0 2 4 5] [--seed 0] [--device cpu|cuda]

Trains the imbalance chapter's runs for the given caption levels at ``--profile`` twice, alone and as one grid
(gaplab.training.grid), with no run cache involved, and writes benchmarks/results/grid-<device>-<date>.json: both wall
times and, for each run, its final measures both ways and their differences. A stacked product rounds
differently from separate ones, so the two agree to a tolerance; this measures how close at a whole run's length.
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

from gaplab.experiments import imbalance
from gaplab.training.grid import train_grid
from gaplab.training.precision import choose_precision
from gaplab.training.train import train

OUT = Path(__file__).parent / "results"
MEASURES = ("loss", "l2m", "rmg", "logit_scale", "entropy", "zero_shot_digit_acc")


def compare(profile: str, ks, seed: int, device) -> dict:
    configs = [imbalance.imbalance_config(profile, k, seed) for k in ks]
    t = time.perf_counter()
    alone = []
    for cfg in configs:
        print(f"alone: k={cfg.k} ({cfg.steps} steps) ...", flush=True)
        alone.append(train(cfg, device=device, progress=False))
    alone_s = time.perf_counter() - t
    print(f"grid of {len(configs)} ...", flush=True)
    t = time.perf_counter()
    together = train_grid(configs, device=device, progress=False)
    grid_s = time.perf_counter() - t
    rows = []
    for cfg, a, b in zip(configs, alone, together):
        fa, fb = a.history[-1], b.history[-1]
        rows.append(
            {
                "k": cfg.k,
                "alone": {m: fa[m] for m in MEASURES},
                "grid": {m: fb[m] for m in MEASURES},
                "difference": {m: fb[m] - fa[m] for m in MEASURES},
            }
        )
    worst = {m: max(abs(r["difference"][m]) for r in rows) for m in MEASURES}
    return {
        "profile": profile,
        "steps": configs[0].steps,
        "batch_size": configs[0].batch_size,
        "seed": seed,
        "seconds_alone": alone_s,
        "seconds_grid": grid_s,
        "grid_over_alone_speed": alone_s / grid_s,
        "largest_difference": worst,
        "runs": rows,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--ks", type=int, nargs="+", default=[0, 2, 4, 5])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--out", type=Path, default=OUT, help="folder for the JSON (default results/)"
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "precision": choose_precision(device).name,
        },
        **compare(args.profile, args.ks, args.seed, device),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"grid-{device.type}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
