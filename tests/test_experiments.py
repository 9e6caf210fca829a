"""The experiment modules: closing the gap on MAD, the organisation test over runs, the loss landscape,
multimodal arithmetic."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab import metrics as M
from gaplab.data.mad import FACTORS
from gaplab.experiments import (
    arithmetic,
    closing,
    imbalance,
    landscape,
    organisation,
    temperature,
)
from gaplab.training import losses
from gaplab.training.tokenizer import MADTokenizer
from gaplab.training.train import class_prompts
from tests.conftest import smoke_grid


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    yield from smoke_grid(tmp_path_factory, ks=(0, 2))


# -- closing -----------------------------------------------------------------------------------------------------


def test_prompt_embeddings_are_the_zero_shot_prompts_before_averaging(smoke_runs):
    run = smoke_runs[(2, 0)]
    for factor in ("digit", "color"):
        p = closing.prompt_embeddings(run.model, factor, k=2, n_prompts=16, seed=3)
        assert p.shape[:2] == (len(FACTORS[factor]), 16)
        np.testing.assert_allclose(np.linalg.norm(p, axis=-1), 1.0, atol=1e-6)
        mean = p.mean(axis=1)
        expected = class_prompts(
            run.model,
            factor,
            MADTokenizer(),
            torch.device("cpu"),
            k=2,
            n_prompts=16,
            seed=3,
        )
        np.testing.assert_allclose(
            mean / np.linalg.norm(mean, axis=1, keepdims=True), expected, atol=1e-6
        )


def _slow_unit(v):
    return v / np.sqrt((v * v).sum())


def _slow_text(model, caption):
    # one caption at a time, straight through the tokenizer and the text tower
    with torch.no_grad():
        out = model.encode_text(MADTokenizer()([caption]))[0].double().numpy()
    return _slow_unit(out)


def _slow_row(run, factor, n_images):
    """The closing_by_factor row of ``factor``, rebuilt from loops over captions and images."""
    from gaplab.data.mad import CAPTION_WORDS, generate_mad
    from gaplab.training.models import mad_image_input

    cfg, model = run.config, run.model
    model.eval()
    obj = cfg.object_factor
    attrs = [f for f in FACTORS if f != obj]
    attr_words = [(f, v) for f in attrs for v in FACTORS[f]]
    comp = {
        (f, v, o): _slow_text(model, CAPTION_WORDS[f, v] + "-" + CAPTION_WORDS[obj, o])
        for f, v in attr_words
        for o in FACTORS[obj]
    }
    u0 = sum(comp.values()) / len(comp)
    if factor == obj:
        words = [
            sum(comp[f, v, o] for f, v in attr_words) / len(attr_words)
            for o in FACTORS[obj]
        ]
    else:
        words = [
            sum(comp[factor, v, o] for o in FACTORS[obj]) / len(FACTORS[obj])
            for v in FACTORS[factor]
        ]
    plain_all = {
        (f, v): _slow_text(model, CAPTION_WORDS[f, v])
        for f in FACTORS
        for v in FACTORS[f]
    }
    plain = [plain_all[factor, v] for v in FACTORS[factor]]

    data = generate_mad(cfg.n_train, seed=cfg.data_seed, glyphs=cfg.glyphs)
    train = []
    with torch.no_grad():
        for i in range(n_images):
            e = model.encode_image(mad_image_input(data.images[i : i + 1]))[0]
            train.append(_slow_unit(e.double().numpy()))
    codes = data.factors[factor][:n_images].tolist()
    images = []
    for c in range(len(FACTORS[factor])):
        members = [train[i] for i in range(n_images) if codes[i] == c]
        images.append(sum(members) / len(members))
    u0_img = sum(train) / n_images
    gap = u0_img - sum(plain_all.values()) / len(plain_all)

    x, labels = run.eval_image.astype(np.float64), run.eval_factors[factor]

    def accuracy(vectors, rule):
        hits = 0
        for xi, y in zip(x, labels):
            if rule == "cos":
                scores = [float(xi @ _slow_unit(v)) for v in vectors]
            else:
                scores = [float(xi @ v) for v in vectors]
            hits += int(np.argmax(scores) == y)
        return hits / len(x)

    def cos(a, b):
        return np.mean([float(_slow_unit(p) @ _slow_unit(q)) for p, q in zip(a, b)])

    return {
        "plain prompt": accuracy(plain, "cos"),
        "ideal words": accuracy(words, "dot"),
        "ideal words - u0": accuracy([w - u0 for w in words], "dot"),
        "ideal words + gap": accuracy([w + gap for w in words], "dot"),
        "ideal words - u0 + gap": accuracy([w - u0 + gap for w in words], "dot"),
        "cos plain prompt": np.mean(
            [float(_slow_unit(xi) @ plain[y]) for xi, y in zip(x, labels)]
        ),
        "cos ideal words": cos(images, words),
        "cos ideal words - u0": cos(
            [i - u0_img for i in images], [w - u0 for w in words]
        ),
        "cos ideal words + gap": cos(images, [w + gap for w in words]),
        "cos ideal words - u0 + gap": cos(
            [i - u0_img for i in images], [w - u0 + gap for w in words]
        ),
    }


@pytest.mark.parametrize("factor", ["digit", "color"])
def test_closing_row_equals_a_slow_rebuild(smoke_runs, factor):
    run = smoke_runs[(2, 1)]
    row = closing.closing_by_factor(run, n_images=300, factors=[factor]).iloc[0]
    slow = _slow_row(run, factor, 300)
    for name, value in slow.items():
        assert row[name] == pytest.approx(value, abs=1e-5), name
    assert row["role"] == ("object" if factor == "digit" else "attribute")
    assert row["chance"] == pytest.approx(1 / len(FACTORS[factor]))


def test_closing_by_factor_computes_each_variant(smoke_runs):
    run = smoke_runs[(2, 1)]
    table = closing.closing_by_factor(run, n_prompts=16, n_images=300)
    assert list(table["factor"]) == list(FACTORS)
    assert (
        set(table["role"]) == {"object", "attribute"}
        and (table["role"] == "object").sum() == 1
    )
    for v in closing.VARIANTS:
        assert table[v].between(0, 1).all()
    for c in closing.COSINES:
        assert table[c].between(-1, 1).all()
    row = table[table["factor"] == "color"].iloc[0]
    labels = run.eval_factors["color"]
    # one vector added to every class vector cannot change a dot-rule prediction
    for v in closing.DOT_VARIANTS:
        assert row[v] == row["ideal words"], v
    ensemble = closing.prompt_embeddings(run.model, "color", k=2, n_prompts=16)
    unit = ensemble.mean(axis=1)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert row["prompt ensemble"] == M.zero_shot_accuracy(run.eval_image, unit, labels)
    gap = run.eval_image.mean(axis=0) - run.eval_text.mean(axis=0)
    assert row["prompt ensemble, gap subtracted"] == M.zero_shot_accuracy(
        run.eval_image - gap, unit, labels
    )


def test_ideal_words_share_one_u0(smoke_runs):
    run = smoke_runs[(2, 0)]
    words, u0 = closing.ideal_words_by_factor(run.model)
    assert {f: len(w) for f, w in words.items()} == {
        f: len(v) for f, v in FACTORS.items()
    }
    # with every composition counted once, u0 is the mean of the object's ideal words and of all
    # attribute words together
    np.testing.assert_allclose(words["digit"].mean(axis=0), u0, atol=1e-12)
    attr = np.concatenate([w for f, w in words.items() if f != "digit"])
    np.testing.assert_allclose(attr.mean(axis=0), u0, atol=1e-12)


def test_closing_bad_inputs(smoke_runs):
    run = smoke_runs[(2, 0)]
    with pytest.raises(ValueError, match="unknown factor 'colour'"):
        closing.closing_by_factor(run, factors=["colour"])
    with pytest.raises(ValueError, match="factors is empty"):
        closing.closing_by_factor(run, factors=[])
    with pytest.raises(ValueError, match="unknown factor"):
        closing.plain_prompts(run.model, "shape")
    with pytest.raises(ValueError, match="unknown factor"):
        closing.compositions(run.model, object_factor="object")
    with pytest.raises(ValueError, match="n must be an integer of at least 2"):
        closing.training_images(run, 1)
    with pytest.raises(ValueError, match="no runs"):
        closing.closing_over_runs({})
    img = np.random.default_rng(0).normal(size=(40, 8))
    labels = {f: np.arange(40) % len(v) for f, v in FACTORS.items()}
    with pytest.raises(ValueError, match="lack the factors"):
        closing.ideal_images_by_factor(img, {"digit": labels["digit"]})
    with pytest.raises(ValueError, match="one integer label per image"):
        closing.ideal_images_by_factor(img[:30], labels)
    short = dict(labels, color=np.arange(40) % 6)  # no image is yellow
    with pytest.raises(ValueError, match="no image has color value 'yellow'"):
        closing.ideal_images_by_factor(img, short)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 80))
def test_ideal_images_are_class_means_of_unit_images(seed, n):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(n, 5))
    # every class present: a shuffled cycle through the codes
    labels = {f: rng.permutation(np.arange(n) % len(v)) for f, v in FACTORS.items()}
    means, u0_img = closing.ideal_images_by_factor(img, labels)
    unit = [_slow_unit(row) for row in img]
    for f, values in FACTORS.items():
        for c in range(len(values)):
            members = [unit[i] for i in range(n) if labels[f][i] == c]
            np.testing.assert_allclose(means[f][c], sum(members) / len(members))
    np.testing.assert_allclose(u0_img, sum(unit) / n)


def test_closing_summary_has_one_row_per_k(smoke_runs):
    table = closing.closing_over_runs(smoke_runs, n_prompts=8, n_images=200)
    summary = closing.closing_summary(table)
    assert list(summary["k"]) == [0, 2]
    part = table[(table["k"] == 2) & (table["role"] == "attribute")]
    expected = part.groupby("seed")["ideal words - u0"].mean().mean()
    assert summary.loc[1, "attribute ideal words - u0"] == pytest.approx(expected)
    cos = part.groupby("seed")["cos ideal words - u0"].mean().mean()
    assert summary.loc[1, "attribute cos ideal words - u0"] == pytest.approx(cos)
    assert summary.loc[1, "object gain"] == pytest.approx(
        summary.loc[1, "object ideal words - u0"]
        - summary.loc[1, "object plain prompt"]
    )


# -- organisation ------------------------------------------------------------------------------------------------


def test_organisation_over_runs_and_controls(smoke_runs):
    table = organisation.organisation_over_runs({(2, 0): smoke_runs[(2, 0)]})
    assert list(table["factor"]) == list(FACTORS)
    for col in ("distance", "script distance", "shuffled labels"):
        assert table[col].between(0, 1).all()
    assert np.allclose(table["tau"], 1 - 2 * table["distance"])
    same = organisation.seed_agreement(smoke_runs[(2, 0)], smoke_runs[(2, 0)])
    assert (same[["image vs image", "text vs text"]] == 0).all().all()
    seeds = organisation.seed_agreement(smoke_runs[(2, 0)], smoke_runs[(2, 1)])
    summary = organisation.organisation_summary(table, seeds)
    assert {"image vs image", "text vs text"} <= set(summary.columns)
    assert set(summary["role"]) == {"object", "attribute"}


def test_seed_agreement_refuses_runs_measured_on_other_images(smoke_runs):
    a = smoke_runs[(2, 0)]

    class Other:
        config = a.config
        eval_factors = {**a.eval_factors, "digit": np.roll(a.eval_factors["digit"], 1)}

    with pytest.raises(ValueError, match="different images"):
        organisation.seed_agreement(a, Other())


# -- landscape ---------------------------------------------------------------------------------------------------


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)) + np.array([2.0, 0, 0, 0, 0, 0])
    y = x + 0.3 * rng.normal(size=(100, 6)) - np.array([0, 2.0, 0, 0, 0, 0])
    return x / np.linalg.norm(x, axis=1, keepdims=True), y / np.linalg.norm(
        y, axis=1, keepdims=True
    )


def test_shift_zero_is_the_embeddings_and_large_shifts_cross(pairs):
    x, y = pairs
    g = landscape.unit_gap(x, y)
    xs, ys = landscape.shift_pairs(x, y, 0.0)
    np.testing.assert_allclose(xs, x)
    np.testing.assert_allclose(ys, y)
    assert landscape.signed_centroid_distance(x, y, g) == pytest.approx(M.l2m(x, y))
    far = landscape.shift_pairs(x, y, 4.0)
    assert landscape.signed_centroid_distance(*far, g) < 0


def test_batched_loss_equals_the_training_loss_per_batch(pairs):
    x, y = pairs
    direct = np.mean(
        [
            float(
                losses.clip_loss(
                    torch.tensor(x[s : s + 50]),
                    torch.tensor(y[s : s + 50]),
                    torch.tensor(20.0),
                )
            )
            for s in (0, 50)
        ]
    )
    assert landscape.batched_clip_loss(x, y, 20.0, batch=50) == pytest.approx(
        direct, rel=1e-9
    )
    i2t = landscape.batched_clip_loss(x, y, 20.0, directions="i2t")
    t2i = landscape.batched_clip_loss(x, y, 20.0, directions="t2i")
    assert (i2t + t2i) / 2 == pytest.approx(direct, rel=1e-9)


def test_landscape_minima(pairs):
    x, y = pairs
    frame = landscape.loss_landscape(
        x, y, logit_scales=(1.0, 100.0), shifts=(-1.0, 0.0, 1.0, 2.0), batch=25
    )
    assert len(frame) == 8
    minima = landscape.landscape_minima(frame)
    assert list(minima["logit scale"]) == [1.0, 100.0]
    for _, row in minima.iterrows():
        part = frame[frame["logit scale"] == row["logit scale"]]
        assert row["loss"] == part["loss"].min()


def test_landscape_bad_inputs(pairs):
    x, y = pairs
    with pytest.raises(ValueError, match="batch"):
        landscape.batched_clip_loss(x, y, 10.0, batch=1000)
    with pytest.raises(ValueError, match="logit_scale"):
        landscape.batched_clip_loss(x, y, -1.0)
    with pytest.raises(ValueError, match="directions"):
        landscape.batched_clip_loss(x, y, 10.0, directions="up")
    with pytest.raises(ValueError, match="same mean"):
        landscape.unit_gap(x, x)
    with pytest.raises(ValueError, match="finite"):
        landscape.shift_pairs(x, y, float("nan"))
    assert isinstance(
        landscape.loss_landscape(x, y, logit_scales=(1.0,), shifts=(0.0,)), pd.DataFrame
    )


def test_gain_test_is_a_one_sided_t_test_over_runs():
    from scipy import stats

    rows = []
    for k, seed, a, o in [
        (1, 0, 0.02, -0.01),
        (1, 1, 0.03, 0.01),
        (2, 0, 0.01, -0.02),
        (2, 1, 0.04, 0.0),
    ]:
        # two attribute factors per run, whose gains a - 0.01 and a + 0.01 average to a
        for shift in (-0.01, 0.01):
            rows.append(
                {
                    "k": k,
                    "seed": seed,
                    "role": "attribute",
                    "plain prompt": 0.5,
                    "ideal words - u0": 0.5 + a + shift,
                }
            )
        rows.append(
            {
                "k": k,
                "seed": seed,
                "role": "object",
                "plain prompt": 0.9,
                "ideal words - u0": 0.9 + o,
            }
        )
    rows.append(
        {
            "k": 0,
            "seed": 0,
            "role": "attribute",
            "plain prompt": 0.4,
            "ideal words - u0": 0.0,
        }
    )
    out = closing.gain_test(pd.DataFrame(rows))  # k = 0 is left out
    attr, obj = np.array([0.02, 0.03, 0.01, 0.04]), np.array([-0.01, 0.01, -0.02, 0.0])
    assert out["runs"] == 4
    assert out["attribute_gain"] == pytest.approx(attr.mean())
    assert out["object_gain"] == pytest.approx(obj.mean())
    # the one-sided p from the t statistic written out: mean / (sd / sqrt(n)), n - 1 degrees of freedom
    t = attr.mean() / (attr.std(ddof=1) / np.sqrt(4))
    assert out["p_attr"] == pytest.approx(stats.t.sf(t, df=3))
    assert out["p_obj"] == pytest.approx(
        stats.ttest_1samp(obj, 0, alternative="greater").pvalue
    )
    assert out["p_more"] == pytest.approx(
        stats.ttest_1samp(attr - obj, 0, alternative="greater").pvalue
    )
    with pytest.raises(ValueError, match="at least two runs"):
        closing.gain_test(pd.DataFrame(rows[:3]))
    old = pd.DataFrame(rows).rename(columns={"plain prompt": "class prompts"})
    with pytest.raises(ValueError, match=r"lacks the columns \['plain prompt'\]"):
        closing.gain_test(old)


# -- arithmetic --------------------------------------------------------------------------------------------------


def test_arithmetic_by_attribute_uses_the_runs_own_words(smoke_runs):
    from gaplab.experiments.organisation import class_text
    from gaplab.metrics.arithmetic import arithmetic_accuracy

    run = smoke_runs[(2, 0)]
    table = arithmetic.arithmetic_by_attribute(run, attributes=("color", "scale"))
    assert list(table["attribute"]) == ["color"] * 3 + ["scale"] * 3
    assert table[["top-1", "top-5"]].stack().between(0, 1).all()
    labels = {f: np.asarray(run.eval_factors[f]).astype(np.int64) for f in FACTORS}
    direct = arithmetic_accuracy(
        run.eval_image, labels, "color", class_text(run, "color"), keep=("digit",)
    )
    row = table[
        (table["attribute"] == "color") & (table["query"] == "image+text")
    ].iloc[0]
    assert row["top-1"] == direct["top-1"] and row["queries"] == direct["queries"]
    strict = arithmetic.arithmetic_by_attribute(
        run, attributes=("scale",), targets="all else unchanged"
    )
    loose = table[table["attribute"] == "scale"]
    assert (strict["queries"].to_numpy() <= loose["queries"].to_numpy()).all()
    with pytest.raises(ValueError, match="targets must be one of"):
        arithmetic.arithmetic_by_attribute(run, targets="same colour")


def test_arithmetic_over_runs_and_summary(smoke_runs):
    runs = {"a": smoke_runs[(0, 0)], "b": smoke_runs[(2, 0)]}
    frame = arithmetic.arithmetic_over_runs(
        runs, attributes=("scale", "fracture"), queries=("image+text",)
    )
    assert len(frame) == 2 * len(arithmetic.SETTINGS) * 2
    summary = arithmetic.arithmetic_summary(frame)
    key = ("b", "same digit", "as trained")
    mine = frame[
        (frame["model"] == "b")
        & (frame["targets"] == "same digit")
        & (frame["gap"] == "as trained")
    ]
    assert summary.loc[key, "image+text"] == pytest.approx(mine["top-1"].mean())


def test_bootstrap_difference_is_paired(smoke_runs):
    a, b = smoke_runs[(2, 0)], smoke_runs[(2, 1)]
    same = arithmetic.bootstrap_difference(a, a, attributes=("scale",), n_boot=200)
    assert (
        same["difference"] == same["low"] == same["high"] == 0.0
        and same["share not better"] == 1.0
    )
    d = arithmetic.bootstrap_difference(
        a, b, attributes=("scale", "color"), n_boot=300, seed=1
    )
    assert d["low"] <= d["difference"] <= d["high"]
    one = arithmetic.arithmetic_by_attribute(
        a, attributes=("scale", "color"), queries=("image+text",)
    )
    two = arithmetic.arithmetic_by_attribute(
        b, attributes=("scale", "color"), queries=("image+text",)
    )
    assert d["difference"] == pytest.approx(two["top-1"].mean() - one["top-1"].mean())


def test_bootstrap_difference_refuses_different_held_out_sets(smoke_runs):
    a = smoke_runs[(2, 0)]
    other = type(
        "Run",
        (),
        {
            "eval_factors": {
                f: np.roll(np.asarray(v), 1) for f, v in a.eval_factors.items()
            },
            "eval_image": a.eval_image,
            "model": a.model,
            "config": a.config,
        },
    )()
    with pytest.raises(ValueError, match="different held-out images"):
        arithmetic.bootstrap_difference(a, other)


# -- temperature -------------------------------------------------------------------------------------------------


def _fake_run(l2m_start, l2m_end, acc, scale=30.0, peak=None):
    """A stand-in for a TrainResult: only the history and final numbers the readers use."""
    history = [{"step": 0, "l2m": l2m_start}]
    if peak is not None:
        history.append({"step": 5, "l2m": peak})
    history.append({"step": 10, "l2m": l2m_end})
    final = {
        "l2m": l2m_end,
        "rmg": l2m_end / 2,
        "zero_shot_digit_acc": acc,
        "entropy": 1.0 + acc,
        "logit_scale": scale,
    }
    return SimpleNamespace(history=history, final=final)


def test_temperature_table_reads_each_run():
    runs = {1.0: _fake_run(0.9, 0.2, 0.5), 100.0: _fake_run(0.8, 0.6, 0.9)}
    table = temperature.temperature_table(runs)
    assert list(table.columns) == [
        "logit scale",
        "l2m",
        "rmg",
        "zero-shot digit accuracy",
        "entropy",
        "l2m at init",
    ]
    assert list(table["logit scale"]) == [1.0, 100.0]
    for (s, run), row in zip(runs.items(), table.itertuples(index=False)):
        assert row[1] == run.final["l2m"] and row[2] == run.final["rmg"]
        assert row[3] == run.final["zero_shot_digit_acc"]
        assert row[4] == run.final["entropy"] and row[5] == run.history[0]["l2m"]


def test_align_init_summary():
    runs = {
        "plain": _fake_run(0.8, 0.6, 0.9),
        "aligned": _fake_run(0.1, 0.3, 0.8),
        "learnable_plain": _fake_run(0.8, 0.4, 0.95),
        "learnable_aligned": _fake_run(0.1, 0.2, 0.9, scale=12.5, peak=0.5),
    }
    per_run, overall = temperature.align_init_summary(runs)
    assert per_run["aligned"] == {"l2m_start": 0.1, "l2m_end": 0.3, "acc_end": 0.8}
    assert list(per_run) == list(runs)
    assert overall == {
        "share": 0.3 / 0.6,
        "learnable_share": 0.2 / 0.4,
        "learnable_peak": 0.5,
        "learnable_peak_step": 5,
        "learnable_scale": 12.5,
    }
    assert set(temperature.ALIGN_INIT_LABELS) == set(runs)


def test_align_init_configs_are_the_chapter_runs():
    configs = temperature.align_init_configs("smoke")
    assert configs["plain"] == temperature.temperature_config("smoke", 100.0)
    assert configs["learnable_plain"] == imbalance.imbalance_config("smoke", 2, 0)
    assert configs["aligned"].align_init and configs["aligned"].temperature == 100.0
    assert configs["learnable_aligned"] == imbalance.imbalance_config(
        "smoke", 2, 0, align_init=True
    )
    listed = temperature.chapter_runs("smoke")
    assert all(c in listed.values() for c in configs.values())
