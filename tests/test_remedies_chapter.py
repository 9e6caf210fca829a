"""The remedies chapter's experiment module (gaplab.experiments.remedies) against direct computations on real
smoke runs: which runs it trains, every measure of its table, the changes against the plain run, the entropy
prediction's test, the "which remedy for which task" table and the post-hoc remedies on the shipped embeddings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gaplab import metrics as M
from gaplab.data.embeddings import load_embeddings
from gaplab.data.mad import FACTORS
from gaplab.experiments import imbalance
from gaplab.experiments import remedies as rem
from gaplab.metrics.arithmetic import arithmetic_accuracy
from gaplab.profiles import resolve_profile
from gaplab.runs import run_key
from gaplab.training.evaluate import eval_set
from gaplab.training.tokenizer import MADTokenizer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GAPLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    runs = rem.remedy_runs("smoke", ks=(1,), seeds=(0,), progress=False)
    table = rem.remedy_table(runs)
    yield runs, table
    mp.undo()


# --- which runs ---------------------------------------------------------------------------------------------


def test_each_remedy_changes_only_its_own_options_and_plain_is_the_imbalance_run():
    plain = rem.remedy_config("cpu", rem.PLAIN, k=1, seed=0)
    assert run_key(plain) == run_key(imbalance.imbalance_config("cpu", 1, 0))
    for name, overrides in rem.TRAINING_REMEDIES.items():
        cfg = rem.remedy_config("cpu", name, k=1, seed=0)
        changed = {
            f.name
            for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != getattr(plain, f.name)
        }
        assert changed == {f for f, v in overrides.items() if getattr(plain, f) != v}, (
            name
        )
        assert (name == rem.PLAIN) == (run_key(cfg) == run_key(plain))


def test_every_remedy_has_its_settings_and_sources_named():
    assert set(rem.SETTINGS) == set(rem.TRAINING_REMEDIES) | set(rem.POSTHOC_REMEDIES)
    assert all(len(v) == 3 and all(v) for v in rem.SETTINGS.values())


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_the_grid_is_the_profiles_and_the_catalogue_lists_it(profile):
    prof = resolve_profile(profile)
    configs = rem.remedy_configs(prof)
    n = len(rem.TRAINING_REMEDIES) * len(prof.remedy_ks) * prof.remedy_seeds
    assert len(configs) == n
    assert {k for _, k, _ in configs} == set(prof.remedy_ks)
    listed = rem.chapter_runs(prof)
    assert len(listed) == n and len({run_key(c) for c in listed.values()}) == n


def test_cpu_stays_within_its_budget_and_paper_runs_both_levels():
    # the build adds one run per training-time remedy at cpu; paper runs a strong and a weak imbalance
    assert (
        resolve_profile("cpu").remedy_ks == (1,)
        and resolve_profile("cpu").remedy_seeds == 1
    )
    paper = resolve_profile("paper")
    assert paper.remedy_ks == (1, 4) and paper.remedy_seeds == 3


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="unknown training-time remedy 'dropout'"):
        rem.remedy_config("smoke", "dropout")
    with pytest.raises(ValueError, match="no runs for 'closing_gap'"):
        rem.chapter_runs("smoke", "closing_gap")
    with pytest.raises(ValueError, match="at least one k"):
        rem.remedy_configs("smoke", ks=())
    assert rem.slug("CLIP (plain)") == "CLIP_plain"
    assert rem.slug("uniformity + alignment") == "uniformity_alignment"
    with pytest.raises(ValueError, match="no letters"):
        rem.slug(" + ")


# --- the measures -------------------------------------------------------------------------------------------


def test_caption_pairs_are_exactly_the_pairs_with_the_same_words(trained):
    runs, _ = trained
    run = runs[(rem.PLAIN, 1, 0)]
    pairs = rem.caption_pairs(run)
    tokens = eval_set(run.config, MADTokenizer(), "cpu")["tokens"].numpy()
    n = len(tokens)
    direct = {
        (i, j)
        for i in range(n)
        for j in range(n)
        if np.array_equal(tokens[i], tokens[j])
    }
    assert set(map(tuple, pairs.tolist())) == direct
    assert all((i, i) in direct for i in range(n))
    # captions repeat at k = 1, so the pairs are more than the diagonal
    assert len(direct) > n


def test_every_measure_of_a_trained_row_is_the_direct_one(trained):
    runs, table = trained
    run = runs[(rem.PLAIN, 1, 0)]
    row = table[(table["remedy"] == rem.PLAIN)].iloc[0]
    img, txt = run.eval_image, run.eval_text
    pairs = rem.caption_pairs(run)
    scale = run.history[-1]["logit_scale"]
    f = {name: np.asarray(v) for name, v in run.eval_factors.items()}
    prompts = {name: rem.class_text(run, name) for name in FACTORS}
    attrs = [a for a in FACTORS if a != "digit"]
    assert row["l2m"] == pytest.approx(M.l2m(img, txt))
    assert row["rmg"] == pytest.approx(M.rmg(img, txt))
    assert row["entropy"] == pytest.approx(M.logits_entropy(img, txt, scale))
    assert row["logit_scale"] == pytest.approx(scale)
    assert row["object_acc"] == pytest.approx(
        M.zero_shot_accuracy(img, prompts["digit"], f["digit"])
    )
    assert row["attribute_acc"] == pytest.approx(
        np.mean([M.zero_shot_accuracy(img, prompts[a], f[a]) for a in attrs])
    )
    assert row["i2t_r1"] == pytest.approx(
        M.recall_at_k(img, txt, 1, "i2t", pairs=pairs)
    )
    assert row["t2i_r1"] == pytest.approx(
        M.recall_at_k(img, txt, 1, "t2i", pairs=pairs)
    )
    stacked = np.stack([f[a] for a in attrs], axis=1)
    assert row["moad_img"] == pytest.approx(M.moad(img, f["digit"], stacked))
    assert row["moad_txt"] == pytest.approx(M.moad(txt, f["digit"], stacked))
    labels = {k: v.astype(np.int64) for k, v in f.items()}
    direct = np.mean(
        [
            arithmetic_accuracy(img, labels, a, prompts[a], keep=("digit",), ks=(1,))[
                "top-1"
            ]
            for a in attrs
        ]
    )
    assert row["arithmetic"] == pytest.approx(direct)


@pytest.mark.parametrize("name", list(rem.POSTHOC_REMEDIES))
def test_a_post_hoc_row_measures_the_remedied_embeddings_and_prompts(trained, name):
    runs, table = trained
    run = runs[(rem.PLAIN, 1, 0)]
    row = table[table["remedy"] == name].iloc[0]
    assert row["kind"] == "post-hoc"
    fn = rem.POSTHOC_REMEDIES[name]
    img, txt = fn(run.eval_image, run.eval_text)
    assert row["l2m"] == pytest.approx(M.l2m(img, txt))
    # the prompts move with the captions' statistics, not with their own
    colour = fn(
        run.eval_image,
        rem.class_text(run, "color"),
        fit=(run.eval_image, run.eval_text),
    )[1]
    acc = M.zero_shot_accuracy(img, colour, run.eval_factors["color"])
    others = [
        M.zero_shot_accuracy(
            img,
            fn(
                run.eval_image,
                rem.class_text(run, a),
                fit=(run.eval_image, run.eval_text),
            )[1],
            run.eval_factors[a],
        )
        for a in FACTORS
        if a not in ("digit", "color")
    ]
    assert row["attribute_acc"] == pytest.approx(np.mean([acc, *others]))
    # the entropy is taken at the plain run's own scale
    plain = table[table["remedy"] == rem.PLAIN].iloc[0]
    assert row["logit_scale"] == plain["logit_scale"]
    with pytest.raises(ValueError, match="unknown post-hoc remedy"):
        rem.run_measures(run, "whitening")


def test_post_hoc_remedies_close_the_gap_they_are_built_to_close(trained):
    _, table = trained
    l2m = table.set_index("remedy")["l2m"]
    for name in rem.POSTHOC_REMEDIES:
        assert l2m[name] < l2m[rem.PLAIN] / 2, name


def test_the_table_has_every_run_and_every_measure(trained):
    runs, table = trained
    assert len(table) == len(runs) + len(rem.POSTHOC_REMEDIES)
    assert set(rem.MEASURES) <= set(table.columns)
    assert table[list(rem.MEASURES)].notna().all().all()
    assert list(table["remedy"]) == [*rem.TRAINING_REMEDIES, *rem.POSTHOC_REMEDIES]
    for m in ("object_acc", "attribute_acc", "i2t_r1", "t2i_r1", "arithmetic"):
        assert table[m].between(0, 1).all(), m
    assert table["l2m"].between(0, 2).all()


# --- summaries and tests ------------------------------------------------------------------------------------


def _two_seed_table(table):
    other = table.copy()
    other["seed"] = 1
    other[list(rem.MEASURES)] = other[list(rem.MEASURES)] * 1.1
    return pd.concat([table, other], ignore_index=True)


def test_summary_means_and_spreads_over_seeds(trained):
    _, table = trained
    both = _two_seed_table(table)
    summary = rem.remedy_summary(both)
    for remedy in ("modality swapping", "standardisation"):
        rows = both[both["remedy"] == remedy]["l2m"]
        kind = both[both["remedy"] == remedy]["kind"].iloc[0]
        got = summary.loc[(1, remedy, kind)]
        assert got[("l2m", "mean")] == pytest.approx(rows.mean())
        assert got[("l2m", "std")] == pytest.approx(rows.std(ddof=1))
        assert got["n_seeds"].item() == 2


def test_changes_are_each_row_minus_the_plain_run_of_its_seed(trained):
    _, table = trained
    both = _two_seed_table(table)
    diff = rem.changes(both)
    assert rem.PLAIN not in set(diff["remedy"])
    for _, d in diff.iterrows():
        row = both[(both["remedy"] == d["remedy"]) & (both["seed"] == d["seed"])].iloc[
            0
        ]
        base = both[(both["remedy"] == rem.PLAIN) & (both["seed"] == d["seed"])].iloc[0]
        assert d["entropy"] == pytest.approx(row["entropy"] - base["entropy"])
    with pytest.raises(ValueError, match="no 'CLIP \\(plain\\)' rows"):
        rem.changes(table[table["remedy"] != rem.PLAIN])


def test_the_entropy_prediction_is_scipys_spearman_over_training_remedies(trained):
    _, table = trained
    got = rem.entropy_prediction(table)
    diff = rem.changes(table)
    diff = diff[diff["kind"] == "training"]
    assert got["n"] == len(rem.TRAINING_REMEDIES) - 1 == len(diff)
    want = stats.spearmanr(diff["l2m"], diff["entropy"])
    assert got["rho_entropy"] == pytest.approx(want.statistic)
    assert got["p_entropy"] == pytest.approx(want.pvalue)
    assert -1 <= got["rho_scale"] <= 1 and 0 <= got["p_scale"] <= 1
    few = table[table["remedy"].isin([rem.PLAIN, "sigmoid loss", "modality swapping"])]
    with pytest.raises(ValueError, match="at least 3"):
        rem.entropy_prediction(few)


def test_the_entropy_prediction_sees_a_planted_link():
    # remedies whose entropy change is a monotone function of their gap change give rho = 1
    rows = [
        {
            "remedy": rem.PLAIN,
            "kind": "training",
            "k": 1,
            "seed": 0,
            **dict.fromkeys(rem.MEASURES, 0.0),
        }
    ]
    for i, name in enumerate(list(rem.TRAINING_REMEDIES)[1:]):
        m = dict.fromkeys(rem.MEASURES, 0.0)
        m.update(l2m=0.1 * i - 0.3, entropy=(0.1 * i - 0.3) ** 3, logit_scale=-i)
        rows.append({"remedy": name, "kind": "training", "k": 1, "seed": 0, **m})
    got = rem.entropy_prediction(pd.DataFrame(rows))
    assert got["rho_entropy"] == pytest.approx(1.0) and got["p_entropy"] < 0.01
    assert got["rho_scale"] == pytest.approx(-1.0)


def test_best_for_picks_the_lowest_gap_and_the_highest_scores(trained):
    _, table = trained
    summary = rem.remedy_summary(table)
    best = rem.best_for(summary)
    assert len(best) == len(rem.TASKS)
    by_task = best.set_index("task")
    for measure, lower, label in rem.TASKS:
        values = table.set_index("remedy")[measure]
        want = values.idxmin() if lower else values.idxmax()
        assert by_task.loc[label, "best remedy"] == want
        assert by_task.loc[label, "plain"] == pytest.approx(values[rem.PLAIN])
        assert by_task.loc[label, "difference"] == pytest.approx(
            values[want] - values[rem.PLAIN]
        )


# --- real models --------------------------------------------------------------------------------------------


def test_post_hoc_on_shipped_embeddings_is_the_direct_computation():
    table = rem.real_posthoc_table(["clip"])
    assert list(table["remedy"]) == ["none", *rem.POSTHOC_REMEDIES]
    img, txt = load_embeddings("clip")
    row = table.set_index("remedy")
    assert row.loc["none", "i2t_r1"] == pytest.approx(M.recall_at_k(img, txt, 1, "i2t"))
    x, y = M.standardise(img, txt)
    assert row.loc["standardisation", "l2m"] == pytest.approx(M.l2m(x, y))
    assert row.loc["standardisation", "t2i_r1"] == pytest.approx(
        M.recall_at_k(x, y, 1, "t2i")
    )
    # centring moves every row of one side by the same vector: CLIP's gap goes, retrieval barely moves
    assert row.loc["mean subtraction", "l2m"] < 0.1 * row.loc["none", "l2m"]


# --- the chapter's chart ------------------------------------------------------------------------------------


def test_labelled_points_draws_one_labelled_point_per_row_and_names_missing_columns():
    alt = pytest.importorskip("altair")
    from gaplab.book import charts

    frame = pd.DataFrame(
        {"gap": [0.1, 0.3], "acc": [0.8, 0.7], "remedy": ["a", "b"], "k": [1, 4]}
    )
    chart = charts.labelled_points(frame, "gap", "acc", label="remedy", facet="k")
    assert isinstance(chart, alt.FacetChart)
    spec = chart.to_dict()
    marks = [layer["mark"]["type"] for layer in spec["spec"]["layer"]]
    assert marks == ["point", "text"]
    assert spec["spec"]["layer"][1]["encoding"]["text"]["field"] == "remedy"
    assert len(spec["datasets"][next(iter(spec["datasets"]))]) == 2
    single = charts.labelled_points(frame, "gap", "acc", label="remedy", color="k")
    assert isinstance(single, alt.LayerChart)
    with pytest.raises(ValueError, match=r"lacks the columns \['entropy'\]"):
        charts.labelled_points(frame, "gap", "entropy", label="remedy")
