"""Shared helpers: hypothesis strategies for embeddings and slow direct formulas to check the fast ones."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def pytest_configure(config):
    # Under pytest-xdist (make test runs ``-n auto``) the workers share the cores: each torch takes its
    # share of threads, or OpenMP pools spinning on the same cores slow each other down many times over
    # (a smoke chapter ran for minutes instead of seconds). Set before any test imports torch, so the
    # kernels and scripts the tests start inherit it too.
    # The Makefile's OMP_NUM_THREADS=2 (a two-core laptop's share for one process) is lowered here.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        asked = os.environ.get("OMP_NUM_THREADS", "")
        threads = (
            min(share, int(asked)) if asked.isdigit() and int(asked) > 0 else share
        )
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:  # a plugin imported it first
            sys.modules["torch"].set_num_threads(threads)


settings.register_profile("ci", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("ci")


@st.composite
def embedding_pair(draw, min_rows=2, max_rows=10, max_dim=6, same_rows=True):
    """Two (N, d) float arrays with rows of clearly non-zero length."""
    d = draw(st.integers(1, max_dim))
    n = draw(st.integers(min_rows, max_rows))
    m = n if same_rows else draw(st.integers(min_rows, max_rows))
    elems = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64)
    x = draw(hnp.arrays(np.float64, (n, d), elements=elems))
    y = draw(hnp.arrays(np.float64, (m, d), elements=elems))
    # keep rows away from zero length, where the direction is undefined
    x[np.linalg.norm(x, axis=1) < 1e-2, 0] = 1.0
    y[np.linalg.norm(y, axis=1) < 1e-2, 0] = -1.0
    return x, y


def normalise(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def smoke_grid(tmp_path_factory, ks, seeds=(0, 1)):
    """Yield the imbalance grid's smoke runs for ``ks`` x ``seeds``, trained into a private run cache that stays
    GAPLAB_CACHE while the caller's fixture lives (for a module-scoped fixture: ``yield from smoke_grid(...)``)."""
    from gaplab.experiments import imbalance

    mp = pytest.MonkeyPatch()
    mp.setenv("GAPLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        yield imbalance.imbalance_runs("smoke", ks=ks, seeds=seeds, progress=False)
    finally:
        mp.undo()


def load_benchmark(name: str):
    """The module benchmarks/``name``.py (the benchmarks are scripts, not a package)."""
    return load_script("benchmarks", name)


def load_script(folder: str, name: str):
    """The module ``folder``/``name``.py of the repository (scripts are not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
