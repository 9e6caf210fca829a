"""Multimodal arithmetic (gaplab.metrics.arithmetic) against a direct query-by-query implementation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.metrics.arithmetic import arithmetic_accuracy


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _slow(img, factors, factor, words, keep, ks, query, lam=1.0):
    """Every query on its own: sort the gallery with ties against the targets, look at the first k."""
    x, w = _unit(img), _unit(words)
    n = len(x)
    hits, asked, skipped = {k: 0 for k in ks}, 0, 0
    for i in range(n):
        a = factors[factor][i]
        for b in range(len(w)):
            if b == a:
                continue
            q = {"image+text": x[i] + lam * (w[b] - w[a]), "image": x[i], "text": w[b]}[
                query
            ]
            others = [j for j in range(n) if j != i]
            is_target = {
                j: factors[factor][j] == b
                and all(factors[f][j] == factors[f][i] for f in keep)
                for j in others
            }
            if not any(is_target.values()):
                skipped += 1
                continue
            asked += 1
            order = sorted(others, key=lambda j: (-float(q @ x[j]), is_target[j]))
            for k in ks:
                hits[k] += any(is_target[j] for j in order[:k])
    return {
        **{f"top-{k}": hits[k] / asked for k in ks},
        "queries": asked,
        "skipped": skipped,
    }


def _data(seed, n=24, d=6, values=3, digits=2):
    rng = np.random.default_rng(seed)
    factors = {
        "digit": rng.integers(0, digits, n),
        "colour": rng.integers(0, values, n),
        "size": rng.integers(0, 2, n),
    }
    img = rng.normal(size=(n, d))
    words = rng.normal(size=(values, d))
    return img, factors, words


@pytest.mark.parametrize("query", ["image+text", "image", "text"])
@pytest.mark.parametrize("keep", [(), ("digit",), ("digit", "size")])
def test_matches_the_direct_implementation(query, keep):
    for seed in range(3):
        img, factors, words = _data(seed)
        fast = arithmetic_accuracy(
            img, factors, "colour", words, keep=keep, ks=(1, 3, 5), query=query
        )
        slow = _slow(img, factors, "colour", words, keep, (1, 3, 5), query)
        assert fast == pytest.approx(slow)


def test_lambda_scales_the_text_difference():
    img, factors, words = _data(4)
    fast = arithmetic_accuracy(img, factors, "colour", words, keep=("digit",), lam=2.5)
    assert fast == pytest.approx(
        _slow(img, factors, "colour", words, ("digit",), (1, 5), "image+text", 2.5)
    )
    # lam = 0 is the image alone
    zero = arithmetic_accuracy(img, factors, "colour", words, keep=("digit",), lam=0.0)
    assert zero == arithmetic_accuracy(
        img, factors, "colour", words, keep=("digit",), query="image"
    )


def test_ties_count_against_the_query():
    # two gallery images with the same embedding, one of them the target: the tie is a miss at rank 1
    img = _unit([[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    factors = {"colour": np.array([0, 1, 0])}
    words = _unit([[1, 0, 0], [0, 1, 0]])
    res = arithmetic_accuracy(img, factors, "colour", words, ks=(1, 2), query="text")
    # query 0 (b=1): target image 1 ties with image 2 -> miss at 1, hit at 2
    assert res["queries"] == 3 and res["top-2"] == 1.0 and res["top-1"] < 1.0


def test_a_perfectly_compositional_model_scores_one():
    # image = digit part + colour part; word = colour part: the text difference moves exactly to the target
    digits, colours = np.eye(4)[:, :4], np.eye(3)
    factors = {"digit": np.repeat(np.arange(4), 3), "colour": np.tile(np.arange(3), 4)}
    img = np.c_[digits[factors["digit"]], colours[factors["colour"]]]
    words = np.c_[np.zeros((3, 4)), colours]
    res = arithmetic_accuracy(img, factors, "colour", words, keep=("digit",))
    assert res["top-1"] == 1.0 and res["queries"] == 12 * 2 and res["skipped"] == 0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0))
def test_invariances_and_ranges(seed, scale):
    img, factors, words = _data(seed, n=18)
    base = arithmetic_accuracy(
        img, factors, "colour", words, keep=("digit",), ks=(1, 5), per_image=True
    )
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    rotated = arithmetic_accuracy(
        img @ q, factors, "colour", words @ q, keep=("digit",), ks=(1, 5)
    )
    scaled = arithmetic_accuracy(
        img * scale, factors, "colour", words / scale, keep=("digit",), ks=(1, 5)
    )
    for other in (rotated, scaled):
        assert other["top-1"] == pytest.approx(base["top-1"]) and other[
            "top-5"
        ] == pytest.approx(base["top-5"])
    if base["queries"]:
        assert 0.0 <= base["top-1"] <= base["top-5"] <= 1.0
    assert base["image queries"].sum() == base["queries"]
    assert (
        base["image top-1"].sum() == round(base["top-1"] * base["queries"])
        if base["queries"]
        else True
    )
    assert (base["image top-1"] <= base["image top-5"]).all()
    n_values = np.array([len(words) - 1] * len(img))
    assert base["queries"] + base["skipped"] == n_values.sum()


def test_no_target_anywhere_is_skipped_not_scored():
    img, factors, words = _data(1)
    factors = {**factors, "colour": np.zeros(len(img), dtype=int)}
    res = arithmetic_accuracy(img, factors, "colour", words)
    assert (
        res["queries"] == 0
        and np.isnan(res["top-1"])
        and res["skipped"] == len(img) * (len(words) - 1)
    )


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(words=np.ones((3, 5))), "same dimension"),
        (dict(factor="shape"), "unknown factor 'shape'"),
        (dict(keep=("colour",)), "keep must name other factors"),
        (dict(keep=("weight",)), "keep must name other factors"),
        (dict(query="both"), "query must be one of"),
        (dict(ks=(0,)), "ks must be positive"),
        (dict(factors={"colour": np.zeros(5, dtype=int)}), "expected one per image"),
        (dict(factors={"colour": np.zeros(24)}), "integer codes"),
        (dict(factors={"colour": np.full(24, 7)}), "must lie in 0..2"),
        (dict(factors=[1, 2]), "mapping"),
    ],
)
def test_bad_input_is_named(change, match):
    img, factors, words = _data(0)
    args = dict(
        img=img,
        factors=factors,
        factor="colour",
        words=words,
        keep=(),
        ks=(1,),
        query="image+text",
    )
    args.update(change)
    with pytest.raises((ValueError, TypeError), match=match):
        arithmetic_accuracy(
            args["img"],
            args["factors"],
            args["factor"],
            args["words"],
            keep=args["keep"],
            ks=args["ks"],
            query=args["query"],
        )
