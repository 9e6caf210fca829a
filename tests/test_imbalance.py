"""The imbalance experiments' helpers: run summaries, seed statistics, rank correlation, the fine-tuning arms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gaplab import metrics as M
from gaplab import runs
from gaplab.data import toy
from gaplab.data.mad import FACTORS
from gaplab.experiments import imbalance, readout
from tests.conftest import smoke_grid


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    yield from smoke_grid(tmp_path_factory, ks=(0, 3))


def test_run_summary_is_computed_from_the_run(smoke_runs):
    run = smoke_runs[(3, 1)]
    s = readout.run_summary(run)
    f = run.eval_factors
    attrs = np.stack([f[n] for n in FACTORS if n != "digit"], axis=1)
    assert (s["k"], s["seed"]) == (3, 1)
    assert s["rmg"] == pytest.approx(M.rmg(run.eval_image, run.eval_text))
    assert s["moad_img"] == pytest.approx(M.moad(run.eval_image, f["digit"], attrs))
    assert s["moad_txt"] == pytest.approx(M.moad(run.eval_text, f["digit"], attrs))
    assert s["object_acc"] == s["acc_digit"]
    assert s["attribute_acc"] == pytest.approx(
        np.mean([s[f"acc_{n}"] for n in FACTORS if n != "digit"])
    )
    assert s["attribute_chance"] == pytest.approx(
        np.mean([1 / len(FACTORS[n]) for n in FACTORS if n != "digit"])
    )


def test_table_and_seed_statistics(smoke_runs):
    table = imbalance.imbalance_table(smoke_runs)
    assert list(table["k"]) == [0, 0, 3, 3] and list(table["seed"]) == [0, 1, 0, 1]
    summary = imbalance.by_k(table)
    for k in (0, 3):
        rows = table[table.k == k]
        assert summary.loc[k, ("rmg", "mean")] == pytest.approx(rows.rmg.mean())
        assert summary.loc[k, ("rmg", "std")] == pytest.approx(rows.rmg.std(ddof=1))
        assert summary.loc[k, "n_seeds"].item() == 2
    with pytest.raises(ValueError, match="no column"):
        imbalance.by_k(table, metrics=("nonsense",))


def test_runs_are_shared_through_the_cache(smoke_runs):
    again = imbalance.imbalance_runs("smoke", ks=(0,), seeds=(1,), progress=False)
    assert np.array_equal(again[(0, 1)].eval_image, smoke_runs[(0, 1)].eval_image)


def test_spearman_matches_scipy_and_rejects_bad_input():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    assert imbalance.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert imbalance.spearman([0, 1, 2, 3], [3, 2, 1, 0]) == pytest.approx(-1.0)
    for bad in (
        ([1, 2], [2, 1]),
        ([1, 2, 3], [1, 2]),
        ([1, 2, np.nan], [1, 2, 3]),
        ([1, 1, 1], [1, 2, 3]),
    ):
        with pytest.raises(ValueError):
            imbalance.spearman(*bad)


def test_finetune_arms(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    cfgs = imbalance.finetune_configs("cpu", source_scale=42.5)
    src = cfgs["source"]
    assert src.k == 5 and src.temperature == "learnable" and src.temperature_lr_mult > 1
    for arm in ("frozen", "learnable"):
        # the source by key: the fine-tuning runs' keys do not depend on where the cache lives
        assert cfgs[arm].k == 1 and cfgs[arm].init_from == f"run:{runs.run_key(src)}"
        assert str(tmp_path) not in cfgs[arm].init_from
    assert cfgs["frozen"].temperature == 42.5
    assert cfgs["learnable"].temperature == "learnable"
    with pytest.raises(ValueError, match="must add imbalance"):
        imbalance.finetune_configs("cpu", source_scale=20.0, source_k=1, target_k=3)


def test_finetune_experiment_changes_are_after_minus_before(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    ft = imbalance.finetune_experiment("smoke", progress=False)
    for arm in ("frozen", "learnable"):
        hist = ft[arm].history
        assert ft[f"{arm}_rmg_change"] == pytest.approx(
            hist[-1]["rmg"] - hist[0]["rmg"]
        )
        assert ft[f"{arm}_entropy_before"] == pytest.approx(hist[0]["entropy"])
    # both arms start from the same model on the same captions
    assert ft["frozen_rmg_before"] == pytest.approx(ft["learnable_rmg_before"])
    assert ft["frozen_logit_scale_after"] == pytest.approx(
        ft["source_logit_scale"], rel=1e-5
    )


def test_linear_probe_and_chance():
    emb, obj, attr = toy.factor_embeddings(
        n=400, object_weight=1.0, attribute_weight=0.0, seed=1
    )
    assert readout.linear_probe(emb, obj) > 0.9
    # the attribute left no trace: the probe cannot do much better than chance (4 values)
    assert readout.linear_probe(emb, attr) < 0.45
    with pytest.raises(ValueError, match="labels must have shape"):
        readout.linear_probe(emb, obj[:-1])
    assert readout.chance("color") == pytest.approx(1 / 7)
    with pytest.raises(ValueError, match="unknown factor"):
        readout.chance("texture")


def test_toy_embeddings_follow_their_weights():
    obj_only = toy.factor_embeddings(object_weight=1.0, attribute_weight=0.0)
    attr_only = toy.factor_embeddings(object_weight=0.0, attribute_weight=1.0)
    assert M.moad(*obj_only) > 0.5 > -0.5 > M.moad(*attr_only)
    with pytest.raises(ValueError):
        toy.factor_embeddings(n_objects=1)


def test_attribute_readout(smoke_runs):
    frame = readout.attribute_readout(smoke_runs[(3, 0)])
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame.factor) == sorted(n for n in FACTORS if n != "digit")
    assert (
        frame["linear probe"].between(0, 1).all()
        and frame["zero-shot"].between(0, 1).all()
    )


def test_moad_towards(smoke_runs):
    run = smoke_runs[(3, 0)]
    s = readout.run_summary(run)
    assert readout.moad_towards(run, "digit") == pytest.approx(s["moad_img"])
    assert readout.moad_towards(run, "digit", side="text") == pytest.approx(
        s["moad_txt"]
    )
    with pytest.raises(ValueError, match="unknown factor"):
        readout.moad_towards(run, "shape")
    with pytest.raises(ValueError, match="side"):
        readout.moad_towards(run, "color", side="audio")


def test_contrast_table_matches_the_inline_loop():
    emb, obj, attr = toy.factor_embeddings(n=60, seed=2)
    factors = {n: np.arange(60) % len(FACTORS[n]) for n in FACTORS}
    factors["digit"], factors["color"] = obj % 10, attr % 7
    table = readout.contrast_table(
        {"images": (emb, factors), "captions": (-emb, factors)}, by="embeddings"
    )
    rows = []
    for side, e in (("images", emb), ("captions", -emb)):
        for name, value in readout.factor_contrasts(
            e, {n: factors[n] for n in FACTORS}
        ).items():
            rows.append(
                {"factor": name, "embeddings": side, "similarity contrast": value}
            )
    assert table.to_dict("records") == rows


def test_zero_shot_table(smoke_runs):
    run = smoke_runs[(3, 0)]
    acc = readout.zero_shot_by_factor(run)
    table = readout.zero_shot_table(run)
    expected = [
        {"factor": n, "which": "zero-shot accuracy", "accuracy": a}
        for n, a in acc.items()
    ] + [{"factor": n, "which": "chance", "accuracy": readout.chance(n)} for n in acc]
    assert table.to_dict("records") == expected
