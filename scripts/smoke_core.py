"""The core install's smoke suite: run by scripts/test_wheel.sh in an environment holding the
gaplab wheel with its core dependencies only, from a folder outside the clone.

    python scripts/smoke_core.py EMBEDDINGS.npy

Importing gaplab and gaplab.metrics loads no torch; L2M, L2I, RMG and MOAD on numpy arrays
equal their papers' definitions written out here in numpy; ``gaplab --version`` prints the
package's version; ``gaplab report --embeddings`` prints its table; ``gaplab report --model``
names the models extra in one line and exits with code 2.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

MODELS_LINE = (
    "error: gaplab report --model needs the models extra (torch is not installed): "
    'pip install "gaplab[models]"'
)


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _mean_distinct_cos(u):
    """Mean cosine over pairs of distinct rows of unit rows ``u``."""
    return float(np.mean([u[i] @ u[j] for i, j in combinations(range(len(u)), 2)]))


def check_imports() -> None:
    assert importlib.util.find_spec("torch") is None, (
        "torch is installed: not a core install"
    )
    import gaplab
    import gaplab.metrics  # noqa: F401

    here = Path(gaplab.__file__).resolve()
    assert "site-packages" in here.parts, f"gaplab imported from {here}, not the wheel"
    heavy = sorted({"torch", "pandas", "PIL", "open_clip"} & set(sys.modules))
    assert not heavy, f"importing gaplab.metrics loaded {heavy}"
    print(f"gaplab {gaplab.__version__} from {here.parent}: no torch loaded")


def check_metrics() -> None:
    from gaplab import metrics as M

    rng = np.random.default_rng(0)
    img = rng.normal(size=(20, 6)) + 0.8
    txt = rng.normal(size=(20, 6)) - 0.3
    ui, ut = _unit(img), _unit(txt)
    # Liang et al. (2022): distance between the modalities' mean normalised embeddings
    l2m = np.linalg.norm(ui.mean(0) - ut.mean(0))
    # mean distance between matched pairs
    l2i = np.linalg.norm(ui - ut, axis=1).mean()
    # Schrodi et al. (2025): m / (m + (d_img + d_txt) / 2) with d = (1 - cos) / 2
    m = ((1 - (ui * ut).sum(1)) / 2).mean()
    d_img, d_txt = (1 - _mean_distinct_cos(ui)) / 2, (1 - _mean_distinct_cos(ut)) / 2
    rmg = m / (m + (d_img + d_txt) / 2)
    # MOAD: (sim_o - sim_no) - (sim_a - sim_na) over pairs of distinct samples
    objects, attributes = rng.integers(0, 3, 20), rng.integers(0, 4, 20)
    pairs = list(combinations(range(20), 2))
    cos = {(i, j): ui[i] @ ui[j] for i, j in pairs}

    def contrast(labels):
        same = [c for (i, j), c in cos.items() if labels[i] == labels[j]]
        other = [c for (i, j), c in cos.items() if labels[i] != labels[j]]
        return np.mean(same) - np.mean(other)

    moad = contrast(objects) - contrast(attributes)
    got = {
        "l2m": M.l2m(img, txt),
        "l2i": M.l2i(img, txt),
        "rmg": M.rmg(img, txt),
        "moad": M.moad(img, objects, attributes),
    }
    want = {"l2m": l2m, "l2i": l2i, "rmg": rmg, "moad": moad}
    for name, value in got.items():
        assert isinstance(value, float), f"{name} returned {type(value).__name__}"
        assert np.isclose(value, want[name], rtol=1e-9, atol=1e-12), (
            name,
            value,
            want[name],
        )
    assert "torch" not in sys.modules, "a metric loaded torch"
    print(
        "metrics equal their formulas: "
        + ", ".join(f"{k} {v:.4f}" for k, v in got.items())
    )


def gaplab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gaplab", *args], capture_output=True, text=True, timeout=300
    )


def check_command(embeddings: str) -> None:
    import gaplab as pkg

    done = gaplab("--version")
    assert done.returncode == 0 and done.stdout == f"gaplab {pkg.__version__}\n", done
    done = gaplab("report", "--embeddings", embeddings)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"embeddings   {embeddings} (precomputed"), lines[0]
    l2m = next(ln for ln in lines if ln.startswith("L2M "))
    pair = np.load(embeddings)
    from gaplab.metrics import l2m as measure

    assert l2m.split()[-1] == f"{measure(pair[0], pair[1]):.3f}", l2m
    print(
        f"gaplab report --embeddings: {len(lines)} lines, {l2m.split()[0]} {l2m.split()[-1]}"
    )
    done = gaplab("report", "--model", "ViT-B-32", "--data", "coco:/x")
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.strip() == MODELS_LINE, done.stderr
    assert done.stdout == ""
    print(f"gaplab report --model: exit 2, {done.stderr.strip()}")


if __name__ == "__main__":
    check_imports()
    check_metrics()
    check_command(sys.argv[1])
