"""Speed of the gap and bias measures at the book's largest size, against one pass over the same data.

    python benchmarks/bench_metrics.py [--device cpu|cuda] [--n 8000] [--d 512] [--out DIR]

The reference is one float32 normalise-and-sum pass (``(x / |x|).sum(0)``) over the data a measure reads:
one matrix for the mean cosine and MOAD, two for L2M, L2I and RMG. It is timed both in torch and in numpy.
Each measure is also compared with the float64 closed form (its largest difference is recorded) and RMG with
its direct N x N form. Writes ``metrics-<device>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gaplab import metrics as M

OUT = Path(__file__).parent / "results"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_seconds(fn, device: torch.device, repeats: int = 30) -> float:
    """The fastest of ``repeats`` timed calls after one warm-up: the machine's other work only slows a call."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return min(times)


def float64_reference(
    x: np.ndarray, y: np.ndarray, objects, attributes
) -> dict[str, float]:
    x = x.astype(np.float64) / np.linalg.norm(
        x.astype(np.float64), axis=1, keepdims=True
    )
    y = y.astype(np.float64) / np.linalg.norm(
        y.astype(np.float64), axis=1, keepdims=True
    )
    n = len(x)

    def mean_cos(a):
        s = a.sum(0)
        return (s @ s - np.einsum("ij,ij->", a, a)) / (n * (n - 1))

    def contrast(a, c):
        sums = np.zeros((c.max() + 1, a.shape[1]))
        np.add.at(sums, c, a)
        counts = np.bincount(c)
        same = (sums * sums).sum() - n
        total = a.sum(0) @ a.sum(0) - n
        n_same = (counts * (counts - 1)).sum()
        return same / n_same - (total - same) / (n * (n - 1) - n_same)

    cos = np.einsum("ij,ij->i", x, y)
    m = max(((1 - cos) / 2).mean(), M.gap.RMG_MIN_MATCHED_DISTANCE)
    return {
        "l2m": float(np.linalg.norm(x.mean(0) - y.mean(0))),
        "l2i": float(np.linalg.norm(x - y, axis=1).mean()),
        "rmg": float(m / (m + ((1 - mean_cos(x)) / 2 + (1 - mean_cos(y)) / 2) / 2)),
        "mean_cosine": float(mean_cos(x)),
        "moad": float(
            contrast(x, objects)
            - np.mean(
                [contrast(x, attributes[:, f]) for f in range(attributes.shape[1])]
            )
        ),
    }


def direct_rmg(x: torch.Tensor, y: torch.Tensor) -> float:
    """RMG from the full N x N similarity matrices, as one would write it without the closed form."""
    x = x / x.norm(dim=1, keepdim=True)
    y = y / y.norm(dim=1, keepdim=True)
    n = x.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    d_img = ((1 - x @ x.T) / 2)[off].mean()
    d_txt = ((1 - y @ y.T) / 2)[off].mean()
    m = ((1 - (x * y).sum(1)) / 2).mean().clamp(min=M.gap.RMG_MIN_MATCHED_DISTANCE)
    return float(m / (m + (d_img + d_txt) / 2))


def run(n: int, d: int, device: torch.device, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=d)
    x_np = (centre + 0.6 * rng.normal(size=(n, d))).astype(np.float32)
    y_np = (centre + 0.4 + 0.6 * rng.normal(size=(n, d))).astype(np.float32)
    objects, attributes = rng.integers(0, 10, n), rng.integers(0, 5, (n, 3))
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)

    def one_pass_torch(t):
        return (t / t.norm(dim=1, keepdim=True)).sum(0)

    def one_pass_numpy(a):
        return (a / np.linalg.norm(a, axis=1, keepdims=True)).sum(0)

    ref_torch = best_seconds(lambda: one_pass_torch(x), device)
    ref_numpy = best_seconds(lambda: one_pass_numpy(x_np), torch.device("cpu"))
    measures = {
        "l2m": (lambda: M.l2m(x, y), 2),
        "l2i": (lambda: M.l2i(x, y), 2),
        "rmg": (lambda: M.rmg(x, y), 2),
        "mean_cosine": (lambda: M.mean_cosine(x), 1),
        "moad": (lambda: M.moad(x, objects, attributes), 1),
    }
    reference = float64_reference(x_np, y_np, objects, attributes)
    out = {}
    for name, (fn, matrices) in measures.items():
        seconds = best_seconds(fn, device)
        out[name] = {
            "ms": 1e3 * seconds,
            "matrices_read": matrices,
            "over_torch_pass": seconds / (matrices * ref_torch),
            "over_numpy_pass": seconds / (matrices * ref_numpy),
            "max_abs_diff_float64": abs(fn() - reference[name]),
        }
    direct = best_seconds(lambda: direct_rmg(x, y), device, repeats=3)
    return {
        "reference_pass_ms": {"torch": 1e3 * ref_torch, "numpy": 1e3 * ref_numpy},
        "measures": out,
        "rmg_direct_nxn_ms": 1e3 * direct,
        "rmg_speedup_over_direct": direct / (out["rmg"]["ms"] / 1e3),
        "rmg_direct_abs_diff": abs(direct_rmg(x, y) - reference["rmg"]),
    }


def machine(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device.type,
        "gpu": None,
        "capability": None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["capability"] = ".".join(
            map(str, torch.cuda.get_device_capability(device))
        )
    return info


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    print(
        f"gap and bias measures at N = {args.n}, d = {args.d} on {device} ...",
        flush=True,
    )
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(device),
        "settings": {"n": args.n, "d": args.d, "dtype": "float32"},
        **run(args.n, args.d, device),
    }
    for name, r in result["measures"].items():
        print(
            f"  {name:12s} {r['ms']:7.2f} ms  {r['over_torch_pass']:.2f}x a torch pass, "
            f"{r['over_numpy_pass']:.2f}x a numpy pass, |diff| {r['max_abs_diff_float64']:.1e}"
        )
    print(
        f"  RMG direct N x N: {result['rmg_direct_nxn_ms']:.0f} ms "
        f"({result['rmg_speedup_over_direct']:.0f}x slower)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"metrics-{device.type}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
