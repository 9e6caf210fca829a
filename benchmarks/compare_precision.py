"""float32 against bfloat16 autocast on the CPU: wall time, and whether the imbalance chapter's verdicts survive.

    python benchmarks/compare_precision.py [--profile cpu] [--ks 0 1 2 3 4 5] [--seeds 0 1]

Trains the imbalance chapter's grid at ``--profile`` twice on the CPU, once per ``cpu_precision``, with no run
cache involved, and writes benchmarks/results/precision-cpu-<date>.json: the wall time of each precision, each
run's final numbers both ways, the Spearman of k with each seed-mean trend measure both ways, and the chapter's
two enforced trend checks (RMG and image MOAD, Spearman <= -0.8) under each. Runs alternate between the two
precisions, so a machine that slows down midway slows both alike. On a processor without bfloat16 instructions
it says so and trains nothing: there gaplab refuses bfloat16, which would only be emulated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from gaplab.experiments import imbalance
from gaplab.experiments.readout import run_summary
from gaplab.storage import StorageError, atomic_write_json, check_output_dir
from gaplab.training.precision import CPU_PRECISIONS, cpu_has_native_bfloat16
from gaplab.training.train import train

OUT = Path(__file__).parent / "results"
#: the imbalance chapter's enforced trend checks: Spearman of k with the seed mean must be at most this
CHECKS = {"rmg": -0.8, "moad_img": -0.8}
RUN_MEASURES = ("rmg", "l2m", "moad_img", "moad_txt", "entropy", "logit_scale")


def compare(profile: str, ks, seeds, device="cpu") -> dict:
    """Train every (k, seed) of the grid in each CPU precision; their times, numbers and verdicts."""
    grids = {
        p: imbalance.grid_configs(profile, ks, seeds, cpu_precision=p)
        for p in CPU_PRECISIONS
    }
    seconds = dict.fromkeys(CPU_PRECISIONS, 0.0)
    rows = {p: [] for p in CPU_PRECISIONS}
    for key in grids["float32"]:
        for p in CPU_PRECISIONS:
            print(f"{p}: k={key[0]} seed {key[1]} ...", flush=True)
            t = time.perf_counter()
            result = train(grids[p][key], device=device, progress=False)
            seconds[p] += time.perf_counter() - t
            if result.precision != p:
                raise RuntimeError(
                    f"asked for {p}, the run trained in {result.precision}"
                )
            rows[p].append(run_summary(result))
    tables = {
        p: pd.DataFrame(rows[p]).sort_values(["k", "seed"]) for p in CPU_PRECISIONS
    }
    trends = {p: imbalance.trends(imbalance.by_k(tables[p])) for p in CPU_PRECISIONS}
    verdicts = {
        p: {m: bool(trends[p][m] <= bound) for m, bound in CHECKS.items()}
        for p in CPU_PRECISIONS
    }
    runs = []
    for a, b in zip(rows["float32"], rows["bfloat16"]):
        runs.append(
            {
                "k": a["k"],
                "seed": a["seed"],
                "float32": {m: a[m] for m in RUN_MEASURES},
                "bfloat16": {m: b[m] for m in RUN_MEASURES},
                "difference": {m: b[m] - a[m] for m in RUN_MEASURES},
            }
        )
    return {
        "profile": profile,
        "steps": grids["float32"][next(iter(grids["float32"]))].steps,
        "ks": list(ks),
        "seeds": list(seeds),
        "seconds": seconds,
        "bfloat16_speed_up": seconds["float32"] / seconds["bfloat16"],
        "trends": trends,
        "checks": {
            m: f"Spearman of k with the seed mean {m} <= {b}" for m, b in CHECKS.items()
        },
        "verdicts": verdicts,
        "same_verdicts": verdicts["float32"] == verdicts["bfloat16"],
        "largest_difference": {
            m: max(abs(r["difference"][m]) for r in runs) for m in RUN_MEASURES
        },
        "runs": runs,
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--ks", type=int, nargs="+", default=list(imbalance.IMBALANCE_KS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument(
        "--out", type=Path, default=OUT, help="folder for the JSON (default results/)"
    )
    args = ap.parse_args()
    # before twenty minutes of training, not after
    try:
        out = check_output_dir(args.out, "results folder")
    except StorageError as exc:
        raise SystemExit(str(exc)) from None
    if not cpu_has_native_bfloat16():
        # not a failure: on this processor gaplab refuses bfloat16, so float32 is the only choice
        print(
            "nothing to compare: this processor has no bfloat16 instructions (avx512_bf16 or amx_bf16), "
            "so bfloat16 would be emulated and gaplab trains in float32 here",
            file=sys.stderr,
        )
        return
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "command": "python benchmarks/compare_precision.py "
        + f"--profile {args.profile} --ks {' '.join(map(str, args.ks))} "
        + f"--seeds {' '.join(map(str, args.seeds))}",
        "machine": {
            "platform": platform.platform(),
            "processor": torch.cpu.get_capabilities().get("cpu_name")
            if hasattr(torch.cpu, "get_capabilities")
            else platform.processor(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
        **compare(args.profile, args.ks, args.seeds),
    }
    path = out / f"precision-cpu-{dt.date.today().isoformat()}.json"
    out.mkdir(parents=True, exist_ok=True)
    # written whole or not at all: an interrupted write must not leave a result the how-to page could quote
    atomic_write_json(path, result)
    summary = {k: result[k] for k in ("seconds", "bfloat16_speed_up", "verdicts")}
    print(json.dumps(summary, indent=2), f"\nwrote {path}")


if __name__ == "__main__":
    main()
