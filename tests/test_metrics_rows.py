"""The single-pass row sums behind the gap and bias measures (gaplab.metrics._rows): no copies, float64-grade
accuracy from float32 data at the book's largest sizes, and the same answers for every input type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gaplab import metrics as M
from gaplab.metrics._rows import BLOCK, as_rows, class_sums, same_device, unit_sum
from tests.conftest import load_benchmark


def _bench():
    return load_benchmark("bench_metrics")


def _reference(x, y, objects, attributes):
    """The closed forms in float64 numpy, as the measures were computed before (and as the tests' slow
    formulas confirm at small N); the benchmark records its distance from the same reference."""
    return _bench().float64_reference(x, y, objects, attributes)


def _measures(x, y, objects, attributes):
    return {
        "l2m": M.l2m(x, y),
        "l2i": M.l2i(x, y),
        "rmg": M.rmg(x, y),
        "mean_cosine": M.mean_cosine(x),
        "moad": M.moad(x, objects, attributes),
    }


@pytest.mark.parametrize("kind", ["spread", "narrow cone", "nearly identical pairs"])
def test_float32_at_the_largest_size_matches_float64_to_1e6(kind):
    rng = np.random.default_rng(0)
    n, d = 8000, 512
    if kind == "spread":
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.3
    elif kind == "narrow cone":
        c = rng.normal(size=d)
        x, y = (
            c + 0.3 * rng.normal(size=(n, d)),
            c + 0.5 + 0.3 * rng.normal(size=(n, d)),
        )
    else:
        x = rng.normal(size=(n, d))
        y = x + 1e-4 * rng.normal(size=(n, d))
    x, y = x.astype(np.float32), y.astype(np.float32)
    objects, attributes = rng.integers(0, 10, n), rng.integers(0, 5, (n, 3))
    got, want = (
        _measures(x, y, objects, attributes),
        _reference(x, y, objects, attributes),
    )
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


def test_inputs_are_not_copied():
    t = torch.randn(300, 16)
    a = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    assert as_rows(t)[0].data_ptr() == t.data_ptr()
    # numpy stays numpy, whatever its strides: the same memory, no copy
    for view in (a, a[::-1], a.T.copy().T, a[::2]):
        assert as_rows(view)[0] is view
    assert as_rows(a.astype(np.float64))[0].dtype == np.float64
    # with a tensor beside it, an array is wrapped for torch, not copied
    x, _, y, _ = same_device(*as_rows(t), *as_rows(a))
    assert x.data_ptr() == t.data_ptr() and y.data_ptr() == a.ctypes.data


def test_every_input_type_gives_the_same_answer():
    rng = np.random.default_rng(1)
    x64 = rng.normal(size=(700, 12))
    y64 = rng.normal(size=(700, 12)) + 0.2
    base = (M.l2m(x64, y64), M.rmg(x64, y64), M.l2i(x64, y64))
    for x, y in [
        (torch.from_numpy(x64), torch.from_numpy(y64)),  # torch float64
        (x64.T.copy().T, y64[::-1][::-1]),  # non-contiguous numpy
        (x64[::-1].copy()[::-1], y64),  # negative strides
        (x64.tolist(), y64.tolist()),  # lists
        (torch.from_numpy(x64).T.contiguous().T, torch.from_numpy(y64)),
    ]:  # non-contiguous torch
        assert (M.l2m(x, y), M.rmg(x, y), M.l2i(x, y)) == pytest.approx(base, abs=1e-12)
    ints = rng.integers(-5, 5, size=(50, 4))
    assert M.mean_cosine(ints) == pytest.approx(
        M.mean_cosine(ints.astype(np.float64)), abs=1e-12
    )
    half = x64[:50].astype(np.float16)
    assert M.mean_cosine(half) == pytest.approx(
        M.mean_cosine(half.astype(np.float64)), abs=1e-12
    )
    mixed = M.l2m(x64.astype(np.float32), torch.from_numpy(y64))
    assert mixed == pytest.approx(base[0], abs=1e-6)


def test_huge_finite_values_are_measured_not_called_infinite():
    x = np.ones((4, 3), dtype=np.float32) * 1e30  # squares overflow float32
    x[1] *= -1
    t, inv = as_rows(x)
    assert t.dtype == np.float64 and np.isfinite(inv).all()
    t, inv = as_rows(torch.from_numpy(x))
    assert t.dtype == torch.float64 and torch.isfinite(inv).all()
    assert M.mean_cosine(x) == pytest.approx(
        M.mean_cosine(x.astype(np.float64) / 1e30), abs=1e-12
    )


@pytest.mark.parametrize("backend", [np.asarray, torch.from_numpy])
@pytest.mark.parametrize(
    "n", [1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17, 64 * BLOCK + 3]
)
def test_block_edges(n, backend):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    unit = x.astype(np.float64) / np.linalg.norm(
        x.astype(np.float64), axis=1, keepdims=True
    )
    # float32 products: the rounding of a sum of n unit rows grows with n
    atol = max(1e-5, 3e-9 * n)
    t, inv = as_rows(backend(x), min_rows=1)
    np.testing.assert_allclose(unit_sum(t, inv), unit.sum(0), atol=atol)
    codes = rng.integers(0, 3, n)
    codes[: 3 if n >= 3 else n] = np.arange(min(n, 3))
    sums = class_sums(t, inv, [codes])[0]
    for c in range(codes.max() + 1):
        np.testing.assert_allclose(sums[c], unit[codes == c].sum(0), atol=atol)


def test_the_metrics_benchmark_writes_its_record(tmp_path):
    import json

    out = _bench().main(
        ["--n", "300", "--d", "16", "--device", "cpu", "--out", str(tmp_path)]
    )
    record = json.loads(out.read_text())
    assert (
        record["machine"]["device"] == "cpu"
        and record["machine"]["torch"] == torch.__version__
    )
    assert set(record["measures"]) == {"l2m", "l2i", "rmg", "mean_cosine", "moad"}
    for r in record["measures"].values():
        assert r["ms"] > 0 and r["max_abs_diff_float64"] < 1e-6
    assert record["rmg_direct_abs_diff"] < 1e-6


def test_row_lengths_without_numpy_2s_vecdot(monkeypatch):
    # numpy 1 (which the core allows) has no vecdot: the einsum path gives the same lengths
    x = np.random.default_rng(2).normal(size=(300, 7)).astype(np.float32)
    want = as_rows(x)[1]
    monkeypatch.delattr(np, "vecdot", raising=False)
    np.testing.assert_allclose(as_rows(x)[1], want, rtol=1e-6)
    np.testing.assert_allclose(
        want, 1 / np.linalg.norm(x.astype(np.float64), axis=1), rtol=1e-6
    )


def test_numpy_measures_allocate_far_less_than_their_input():
    import tracemalloc  # only this test traces allocations

    rng = np.random.default_rng(5)
    x = rng.normal(size=(20000, 128)).astype(np.float32)
    y = x[::-1]  # a view with negative strides, which numpy reads as it is
    objects, attributes = rng.integers(0, 10, len(x)), rng.integers(0, 5, (len(x), 3))
    tracemalloc.start()
    try:
        M.l2m(x, y), M.l2i(x, y), M.rmg(x, y), M.mean_cosine(y)
        M.moad(y, objects, attributes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a normalised copy, or x * x, would allocate the whole input (10 MB) at least once
    assert peak < 0.5 * x.nbytes, (peak, x.nbytes)
