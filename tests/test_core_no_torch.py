"""The metrics core without torch: importing gaplab.metrics never loads torch, numpy inputs are computed in
numpy (as on a core install, where torch is absent), and the numpy and torch backends of the row sums agree
with each other and with the slow direct formulas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gaplab import metrics as M
from gaplab.metrics._rows import as_rows
from gaplab.metrics.gap import RMG_MIN_MATCHED_DISTANCE
from tests.conftest import embedding_pair, normalise
from tests.test_metrics_bias import slow_contrast, slow_moad
from tests.test_metrics_gap import slow_l2i, slow_l2m, slow_mean_cos, slow_rmg

METRICS_DIR = Path(M.__file__).parent
METRICS_MODULES = sorted(
    f"gaplab.metrics.{p.stem}" for p in METRICS_DIR.glob("*.py") if p.stem != "__init__"
)

#: a meta path finder that refuses torch, as a core install without it would
BLOCK_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, NoTorch())
"""

#: every public metric on small numpy arrays
EVERY_METRIC = """
import numpy as np
from gaplab import metrics as M
from gaplab.metrics._rows import as_rows
from gaplab.metrics.gap import RMG_MIN_MATCHED_DISTANCE
from gaplab.metrics import geometry as G

rng = np.random.default_rng(0)
x, y = rng.normal(size=(40, 6)) + 0.5, rng.normal(size=(40, 6)) - 0.5
obj, attrs = rng.integers(0, 3, 40), rng.integers(0, 2, (40, 2))
pairs = np.stack([np.arange(40), rng.permutation(40)], axis=1)
values = {
    "l2m": M.l2m(x, y), "l2i": M.l2i(x, y, pairs), "rmg": M.rmg(x, y),
    "mean_cosine": M.mean_cosine(x), "moad": M.moad(x, obj, attrs),
    "similarity_contrast": M.similarity_contrast(x, obj),
    "linear_separability": M.linear_separability(x, y),
    "neighbour_overlap": M.neighbour_overlap(x, y, k=3),
    "logits_entropy": M.logits_entropy(x, y, 10.0),
    "alignment": M.alignment(x, y), "uniformity": M.uniformity(x),
    "cross_uniformity": M.cross_uniformity(x, y),
    "recall_at_k": M.recall_at_k(x, y, k=5),
    "zero_shot_accuracy": M.zero_shot_accuracy(x, y[:3], obj),
    "gap_share": M.gap_share(x, y),
    "ablate": M.ablate(x, [0, 1]).sum(),
    "top_gap_dimensions": M.top_gap_dimensions(x, y, k=2).sum(),
    "mean_differences": M.mean_differences(x, y).sum(),
    "ablation_curve": M.ablation_curve(x, y, max_k=2)["l2m"][-1],
    "random_ablation_curve": M.random_ablation_curve(x, y, max_k=2, repeats=2)["l2m"]["mean"][-1],
    "joint_pca": G.joint_pca(x, y)[2].sum(),
    "shift_along_gap": G.shift_along_gap(x, y, 0.3)[0].sum(),
    "unit_gap": G.unit_gap(x, y).sum(),
    "subtract_gap": G.subtract_gap(x, y).sum(),
    "modality_means": M.modality_means(x, y)[0].sum(),
    "center": M.center(x, y)[0].sum(),
    "standardise": M.standardise(x, y)[0].sum(),
    "remove_gap_vector": M.remove_gap_vector(x, y)[0].sum(),
    "gap_statistics": M.gap_statistics(x, y)["image_share"],
}
assert set(M.__all__) <= set(values), set(M.__all__) - set(values)
assert all(np.isfinite(float(v)) for v in values.values()), values
assert "torch" not in sys.modules
print(len(values), "metrics computed without torch")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )


#: measures the gap and bias of numpy arrays, then checks torch is still absent
MEASURE_NUMPY = """
import numpy as np
from gaplab import metrics as M

rng = np.random.default_rng(0)
x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 0.3
labels, attrs = rng.integers(0, 3, 30), rng.integers(0, 2, (30, 2))
M.l2m(x, y), M.l2i(x, y), M.rmg(x, y), M.mean_cosine(x)
M.moad(x, labels, attrs), M.similarity_contrast(x, labels)
M.l2m(x.astype(np.float32), y.tolist())
assert "torch" not in sys.modules, "measuring numpy arrays loaded torch"
"""


def test_every_metrics_module_imports_without_torch():
    assert len(METRICS_MODULES) >= 12
    imports = "\n".join(f"import {m}" for m in ["gaplab", *METRICS_MODULES])
    check = 'assert "torch" not in sys.modules, "importing the metrics loaded torch"'
    done = _run(f"import sys\n{imports}\n{check}\n{MEASURE_NUMPY}")
    assert done.returncode == 0, done.stderr


def test_the_check_sees_torch_when_it_is_loaded():
    # the subprocess checks above can fail: the same assertion after importing torch does
    done = _run("import sys, torch; assert 'torch' not in sys.modules")
    assert done.returncode != 0 and "AssertionError" in done.stderr


def test_every_public_metric_runs_with_torch_blocked():
    done = _run(BLOCK_TORCH + EVERY_METRIC)
    assert done.returncode == 0, done.stderr
    assert "29 metrics computed without torch" in done.stdout
    # and the block is real: importing torch under it fails
    blocked = _run(BLOCK_TORCH + "import torch")
    assert blocked.returncode != 0 and "blocked by the test" in blocked.stderr


def _measures(x, y, objects, attributes):
    return np.array(
        [
            M.l2m(x, y),
            M.l2i(x, y),
            M.rmg(x, y),
            M.mean_cosine(x),
            M.moad(x, objects, attributes),
            M.similarity_contrast(x, objects),
        ]
    )


def _direct(x, y, objects, attributes):
    ident = [(i, i) for i in range(len(x))]
    return np.array(
        [
            slow_l2m(x, y),
            slow_l2i(x, y, ident),
            slow_rmg(x, y, ident),
            slow_mean_cos(x),
            slow_moad(x, objects, attributes),
            slow_contrast(x, objects),
        ]
    )


def _rmg_denominator(x, y) -> float:
    """m + (d_img + d_txt) / 2 of RMG, from float64 arrays: m over RMG."""
    xn, yn = normalise(x), normalise(y)
    matched = np.mean((1 - np.einsum("ij,ij->i", xn, yn)) / 2)
    return max(matched, RMG_MIN_MATCHED_DISTANCE) / M.rmg(x, y)


@st.composite
def labelled_pair(draw):
    """A matched pair of embeddings with object labels and two attribute columns that each hold both a shared
    and a differing value."""
    x, y = draw(embedding_pair(min_rows=4, max_rows=12))
    n = len(x)
    labels = hnp.arrays(np.int64, (n, 3), elements=st.integers(0, 2))
    cols = draw(labels)
    cols[:3] = [[0, 0, 0], [0, 0, 0], [1, 1, 1]]
    return x, y, cols[:, 0], cols[:, 1:]


@given(labelled_pair())
def test_numpy_and_torch_backends_agree_with_each_other_and_the_direct_formulas(case):
    x, y, objects, attributes = case
    got_numpy = _measures(x, y, objects, attributes)
    got_torch = _measures(torch.from_numpy(x), torch.from_numpy(y), objects, attributes)
    np.testing.assert_allclose(got_numpy, got_torch, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        got_numpy, _direct(x, y, objects, attributes), rtol=0, atol=1e-9
    )
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    got32_numpy = _measures(x32, y32, objects, attributes)
    got32_torch = _measures(
        torch.from_numpy(x32), torch.from_numpy(y32), objects, attributes
    )
    # RMG = m / den: a rounding error e in a cosine moves it by up to e / den, and den can be as small as the
    # clamp on m (1e-3) when every row of a modality points one way
    tol = np.full(6, 1e-6)
    tol[2] = 1e-6 / _rmg_denominator(x, y)
    assert np.all(np.abs(got32_numpy - got32_torch) <= tol), (got32_numpy, got32_torch)


@given(embedding_pair(same_rows=False), st.integers(0, 2**31 - 1))
def test_backends_agree_with_explicit_pairs_and_mixed_inputs(pair, seed):
    x, y = pair
    rng = np.random.default_rng(seed)
    p = np.stack([rng.integers(0, len(x), 7), rng.integers(0, len(y), 7)], axis=1)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for f in (M.l2i, M.rmg):
        want = f(x, y, pairs=p)
        assert want == pytest.approx(f(tx, ty, pairs=p), abs=1e-12)
        # one tensor and one array: both measured in torch
        assert want == pytest.approx(f(x, ty, pairs=p), abs=1e-12)
        assert want == pytest.approx(f(tx, y, pairs=p), abs=1e-12)


def test_nearly_coinciding_pairs_keep_their_digits_in_both_backends():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 8))
    y = x + 1e-9 * rng.normal(size=(50, 8))
    # the distances of such pairs are ~1e-9; sqrt(2 - 2 cos) would give ~1e-8 noise or 0
    want = np.mean(
        np.linalg.norm(
            x / np.linalg.norm(x, axis=1, keepdims=True)
            - y / np.linalg.norm(y, axis=1, keepdims=True),
            axis=1,
        )
    )
    assert M.l2i(x, y) == pytest.approx(want, rel=1e-6)
    assert M.l2i(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        want, rel=1e-6
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_tensors_are_measured_on_their_device():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3000, 64)), rng.normal(size=(3000, 64)) + 0.2
    objects, attributes = rng.integers(0, 5, 3000), rng.integers(0, 3, (3000, 2))
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        a, b = x.astype(dtype), y.astype(dtype)
        want = _measures(a, b, objects, attributes)
        ga, gb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        rows, inv = as_rows(ga)
        assert rows.data_ptr() == ga.data_ptr() and inv.device == ga.device
        np.testing.assert_allclose(
            _measures(ga, gb, objects, attributes), want, rtol=0, atol=tol
        )
        assert M.l2m(a, gb) == pytest.approx(want[0], abs=tol)
