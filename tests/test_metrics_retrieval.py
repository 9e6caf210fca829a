"""Retrieval and zero-shot accuracy against a slow full ranking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaplab import metrics
from gaplab.metrics import retrieval
from tests.conftest import embedding_pair, normalise, random_orthogonal


def slow_recall(x, y, k, pairs):
    """Per query, walk the candidates from the best score down; a non-match tied (within 1e-10) with the best
    match is ranked before it."""
    x, y = normalise(x), normalise(y)
    matches = {}
    for a, b in pairs:
        matches.setdefault(a, set()).add(b)
    hits = []
    for q, good in matches.items():
        scores = [float(x[q] @ y[j]) for j in range(len(y))]
        best = max(scores[j] for j in good)
        ahead = [
            j
            for j in range(len(y))
            if j not in good and scores[j] >= best - retrieval.TIE_TOLERANCE
        ]
        hits.append(len(ahead) < k)
    return sum(hits) / len(hits)


@given(embedding_pair(max_rows=12), st.integers(1, 4))
def test_recall_matches_full_ranking(pair, k):
    x, y = pair
    k = min(k, len(y))
    ident = [(i, i) for i in range(len(x))]
    assert metrics.recall_at_k(x, y, k, "i2t") == pytest.approx(
        slow_recall(x, y, k, ident)
    )
    assert metrics.recall_at_k(x, y, k, "t2i") == pytest.approx(
        slow_recall(y, x, k, ident)
    )


@given(
    embedding_pair(same_rows=False, max_rows=12),
    st.integers(0, 2**31 - 1),
    st.integers(1, 3),
)
def test_recall_with_several_matches(pair, seed, k):
    x, y = pair
    rng = np.random.default_rng(seed)
    p = np.unique(
        np.stack([rng.integers(0, len(x), 9), rng.integers(0, len(y), 9)], axis=1),
        axis=0,
    )
    k = min(k, len(y), len(x))
    assert metrics.recall_at_k(x, y, k, "i2t", pairs=p) == pytest.approx(
        slow_recall(x, y, k, p.tolist())
    )
    assert metrics.recall_at_k(x, y, k, "t2i", pairs=p) == pytest.approx(
        slow_recall(y, x, k, p[:, ::-1].tolist())
    )


def test_recall_chunking_gives_the_same_answer(rng, monkeypatch):
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    p = np.stack([rng.integers(0, 50, 80), rng.integers(0, 50, 80)], axis=1)
    full = metrics.recall_at_k(x, y, 3, pairs=p)
    monkeypatch.setattr(retrieval, "_CHUNK", 7)
    assert metrics.recall_at_k(x, y, 3, pairs=p) == full


@given(embedding_pair(), st.integers(0, 2**31 - 1))
def test_recall_invariant_to_rotation_and_bounded(pair, seed):
    x, y = pair
    q = random_orthogonal(x.shape[1], seed)
    r = metrics.recall_at_k(x, y)
    assert 0.0 <= r <= 1.0
    assert metrics.recall_at_k(x @ q, y @ q) == pytest.approx(r)
    assert metrics.recall_at_k(x, y, k=len(y)) == 1.0


def test_ties_count_against_the_query():
    same = np.ones((4, 3))
    assert metrics.recall_at_k(same, same, 1) == 0.0
    assert metrics.recall_at_k(same, same, 4) == 1.0
    assert metrics.recall_at_k(np.eye(3), np.eye(3), 1) == 1.0


def test_recall_errors(rng):
    x = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="direction"):
        metrics.recall_at_k(x, x, 1, "sideways")
    with pytest.raises(ValueError, match="k must be"):
        metrics.recall_at_k(x, x, 0)
    with pytest.raises(ValueError, match="k must be"):
        metrics.recall_at_k(x, x, 6)


def test_zero_shot_accuracy(rng):
    classes = normalise(rng.normal(size=(4, 6)))
    labels = rng.integers(0, 4, 40)
    img = classes[labels] + 0.05 * rng.normal(size=(40, 6))
    assert metrics.zero_shot_accuracy(img, classes, labels) == 1.0
    wrong = (labels + 1) % 4
    assert metrics.zero_shot_accuracy(img, classes, wrong) == 0.0
    # slow form
    x, y = normalise(rng.normal(size=(30, 6))), normalise(rng.normal(size=(4, 6)))
    lab = rng.integers(0, 4, 30)
    slow = np.mean([int(np.argmax(x[i] @ y.T)) == lab[i] for i in range(30)])
    assert metrics.zero_shot_accuracy(x, y, lab) == pytest.approx(slow)
    with pytest.raises(ValueError, match="must lie in 0..3"):
        metrics.zero_shot_accuracy(x, y, lab + 4)
    with pytest.raises(ValueError, match=r"shape \(30,\)"):
        metrics.zero_shot_accuracy(x, y, lab[:5])
    with pytest.raises(ValueError, match="integers"):
        metrics.zero_shot_accuracy(x, y, lab.astype(float))
