"""Dimension ablation: the decomposition of the squared gap and the ablation curves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from gaplab import metrics
from tests.conftest import embedding_pair, normalise


@given(embedding_pair())
def test_squared_gap_is_the_sum_of_squared_mean_differences(pair):
    x, y = pair
    diff = metrics.mean_differences(x, y)
    assert float(diff @ diff) == pytest.approx(metrics.l2m(x, y) ** 2, abs=1e-12)
    if metrics.l2m(x, y) > 1e-6:
        assert metrics.gap_share(x, y, top=x.shape[1]) == pytest.approx(1.0)
        shares = [metrics.gap_share(x, y, top=t) for t in range(x.shape[1] + 1)]
        assert shares[0] == 0.0 and all(
            a <= b + 1e-12 for a, b in zip(shares, shares[1:])
        )


def test_top_dimensions_and_share(rng):
    x = normalise(rng.normal(size=(100, 8)) * 0.1 + np.array([2, 0, 0, 0, 0, 0, 0, 0]))
    y = normalise(rng.normal(size=(100, 8)) * 0.1 + np.array([0, 2, 0, 0, 0, 0, 0, 0]))
    top = metrics.top_gap_dimensions(x, y, 2)
    assert set(top.tolist()) == {0, 1}
    assert metrics.gap_share(x, y, 2) > 0.95
    with pytest.raises(ValueError, match="identical means"):
        metrics.gap_share(x, x, 2)
    with pytest.raises(ValueError, match="top must lie"):
        metrics.gap_share(x, y, 9)


def test_ablate(rng):
    x = rng.normal(size=(10, 5))
    a = metrics.ablate(x, [1, 3])
    assert np.allclose(a[:, [1, 3]], 0)
    assert np.allclose(np.linalg.norm(a, axis=1), 1)
    kept = normalise(x)[:, [0, 2, 4]]
    assert np.allclose(
        a[:, [0, 2, 4]], kept / np.linalg.norm(kept, axis=1, keepdims=True)
    )
    assert np.allclose(metrics.ablate(x, []), normalise(x))
    with pytest.raises(ValueError, match="all zero"):
        metrics.ablate(np.eye(3), [0])
    with pytest.raises(ValueError, match="must lie in 0..4"):
        metrics.ablate(x, [5])


def test_ablation_curve_matches_step_by_step(rng):
    x, y = rng.normal(size=(40, 12)) + 1.0, rng.normal(size=(40, 12)) - 0.5
    curve = metrics.ablation_curve(x, y, max_k=5)
    order = metrics.top_gap_dimensions(x, y)
    assert curve["dims"] == order[:5].tolist()
    for k in range(6):
        xa, ya = metrics.ablate(x, order[:k]), metrics.ablate(y, order[:k])
        assert curve["l2m"][k] == pytest.approx(metrics.l2m(xa, ya))
        assert curve["rmg"][k] == pytest.approx(metrics.rmg(xa, ya))
        assert curve["i2t_r1"][k] == pytest.approx(
            metrics.recall_at_k(xa, ya, 1, "i2t")
        )
        assert curve["t2i_r1"][k] == pytest.approx(
            metrics.recall_at_k(xa, ya, 1, "t2i")
        )
    assert curve["l2m"][0] == pytest.approx(metrics.l2m(x, y))
    assert all(type(v) is float for v in curve["l2m"])


def test_random_ablation_curve(rng):
    x, y = rng.normal(size=(30, 10)) + 1.0, rng.normal(size=(30, 10))
    ctrl = metrics.random_ablation_curve(x, y, max_k=4, repeats=5, seed=1)
    assert ctrl == metrics.random_ablation_curve(x, y, max_k=4, repeats=5, seed=1)
    assert len(ctrl["l2m"]["mean"]) == 5 and ctrl["l2m"]["std"][0] == 0.0
    assert ctrl["l2m"]["mean"][0] == pytest.approx(metrics.l2m(x, y))
    with pytest.raises(ValueError, match="repeats"):
        metrics.random_ablation_curve(x, y, max_k=4, repeats=0)
    with pytest.raises(ValueError, match="max_k"):
        metrics.ablation_curve(x, y, max_k=10)
