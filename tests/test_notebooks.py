"""Every chapter executed through papermill at profile="smoke", its glued values read back and checked."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from gaplab import metrics
from gaplab.book.record import read_glued
from gaplab.data.embeddings import load_embeddings

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.notebooks


def glue_references(nb) -> set[str]:
    refs = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            refs |= set(re.findall(r"\{glue(?::\w+)?\}`([A-Za-z_][\w]*)", cell.source))
    return refs


#: chapters that train nothing of their own: they compare the runs of other chapters
LOADS_OTHER_CHAPTERS_RUNS = {"models_compared"}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    cache = {}

    def run(stem: str):
        if stem not in cache:
            out = tmp_path_factory.mktemp("executed") / f"{stem}.ipynb"
            # a private run cache, so the test trains instead of loading what another run left behind; the
            # keys of the runs the chapter asks for are logged, to check the catalogue against them
            saved = os.environ.get("GAPLAB_CACHE")
            run_cache = tmp_path_factory.mktemp("cache")
            run_log = out.with_suffix(".runs")
            # a chapter that only compares other chapters' runs may load what they trained (after its own cache;
            # the chapters run in sorted order, so those it compares have run before it)
            shared = (
                [str(c[3]) for c in cache.values()]
                if stem in LOADS_OTHER_CHAPTERS_RUNS
                else []
            )
            os.environ["GAPLAB_CACHE"] = os.pathsep.join([str(run_cache), *shared])
            os.environ["GAPLAB_RUN_LOG"] = str(run_log)
            try:
                papermill.execute_notebook(
                    str(ROOT / "notebooks" / f"{stem}.ipynb"),
                    str(out),
                    parameters={"profile": "smoke"},
                    kernel_name="python3",
                    cwd=str(ROOT / "notebooks"),
                    progress_bar=False,
                )
            finally:
                os.environ.pop("GAPLAB_RUN_LOG")
                if saved is None:
                    os.environ.pop("GAPLAB_CACHE")
                else:
                    os.environ["GAPLAB_CACHE"] = saved
            nb = nbformat.read(out, as_version=4)
            used = set(run_log.read_text().split()) if run_log.exists() else set()
            cache[stem] = (nb, read_glued(nb), used, run_cache)
        return cache[stem][:2]

    def details(stem: str):
        """The keys of the runs the chapter asked for, and its private run cache."""
        run(stem)
        return cache[stem][2:]

    run.details = details
    # every private run cache so far: a rehearsal reads the chapters' runs instead of training them again
    run.caches = lambda: [str(c[3]) for c in cache.values()]
    return run


@pytest.mark.parametrize(
    "stem", [p.stem for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
)
def test_chapter_trains_exactly_the_runs_of_the_catalogue(executed, stem, monkeypatch):
    # what a teacher prepares and exports for a chapter is what the chapter really asks for
    from gaplab.book import catalogue

    used, run_cache = executed.details(stem)
    monkeypatch.setenv(
        "GAPLAB_CACHE", str(run_cache)
    )  # the frozen fine-tuning arm's key needs its source
    listed = (
        {r.key for r in catalogue.book_runs("smoke", (stem,))}
        if stem in catalogue.CHAPTERS
        else set()
    )
    assert None not in listed
    assert used == listed


def _is_unit_float(v):
    return type(v) is float and 0.0 <= v <= 1.0


@pytest.mark.parametrize(
    "stem", [p.stem for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
)
def test_every_cited_value_is_glued(executed, stem):
    nb, glued = executed(stem)
    missing = glue_references(nb) - set(glued)
    assert not missing, f"the prose cites values that were never glued: {missing}"
    for name, value in glued.items():
        flat = value if isinstance(value, list) else [value]
        assert all(not isinstance(v, float) or math.isfinite(v) for v in flat), name


def test_gap_geometry(executed):
    _, g = executed("gap_geometry")
    img, txt = load_embeddings("clip")
    rnd_img, rnd_txt = load_embeddings("clip_random")
    for key in ("clip_l2m", "clip_random_l2m", "clip_rmg", "clip_linear_separability"):
        assert type(g[key]) is float, key
    assert g["clip_l2m"] == pytest.approx(metrics.l2m(img, txt))
    assert g["clip_random_l2m"] == pytest.approx(metrics.l2m(rnd_img, rnd_txt))
    assert g["clip_rmg"] == pytest.approx(metrics.rmg(img, txt))
    assert g["clip_linear_separability"] == pytest.approx(
        metrics.linear_separability(img, txt, seed=0)
    )
    assert _is_unit_float(g["clip_rmg"]) and _is_unit_float(
        g["clip_linear_separability"]
    )


def test_dimension_ablation(executed):
    _, g = executed("dimension_ablation")
    img, txt = load_embeddings("clip")
    assert g["ablation_top_dims"] == metrics.top_gap_dimensions(img, txt, 10).tolist()
    assert all(type(d) is int for d in g["ablation_top_dims"])
    for key in ("ablation_l2m", "ablation_rmg", "ablation_i2t_r1", "ablation_t2i_r1"):
        assert (
            isinstance(g[key], list)
            and len(g[key]) == 21
            and all(type(v) is float for v in g[key])
        ), key
    assert g["ablation_l2m"][0] == pytest.approx(metrics.l2m(img, txt))
    dropped = g["ablation_top_dims"][:2]
    assert g["ablation_l2m"][2] == pytest.approx(
        metrics.l2m(metrics.ablate(img, dropped), metrics.ablate(txt, dropped))
    )
    assert all(
        _is_unit_float(v)
        for v in g["ablation_rmg"] + g["ablation_i2t_r1"] + g["ablation_t2i_r1"]
    )
    assert _is_unit_float(g["gap_share_top2"])
    assert g["gap_share_top2"] == pytest.approx(metrics.gap_share(img, txt, 2))


def test_mad_training(executed, monkeypatch):
    _, g = executed("mad_training")
    assert _is_unit_float(g["mad_zero_shot_acc"])
    assert type(g["mad_train_samples"]) is int and g["mad_train_samples"] > 0
    assert g["mad_final_l2m"] >= 0 and _is_unit_float(g["mad_final_rmg"])


def _unit_list(values, n):
    return (
        isinstance(values, list)
        and len(values) == n
        and all(_is_unit_float(v) for v in values)
    )


def test_imbalance_training(executed):
    from gaplab.experiments import imbalance

    _, g = executed("imbalance_training")
    assert g["imbalance_k"] == [0, 1, 2, 3, 4, 5]
    for key in ("imbalance_rmg", "imbalance_object_acc", "imbalance_attribute_acc"):
        assert _unit_list(g[key], 6), key
    for key in (
        "imbalance_l2m",
        "imbalance_moad_img",
        "imbalance_moad_txt",
        "imbalance_entropy",
    ):
        assert (
            isinstance(g[key], list)
            and len(g[key]) == 6
            and all(type(v) is float for v in g[key])
        ), key
        assert all(v >= 0 for v in g[f"{key}_std"]), key
    assert all(0 <= v <= 2 for v in g["imbalance_l2m"])
    assert all(-4 <= v <= 4 for v in g["imbalance_moad_img"] + g["imbalance_moad_txt"])
    assert all(0 <= v for v in g["imbalance_entropy"])
    # the glued correlations are the ones of the glued means
    assert g["imbalance_rho_rmg"] == pytest.approx(
        imbalance.spearman(g["imbalance_k"], g["imbalance_rmg"])
    )
    assert g["imbalance_rho_moad_img"] == pytest.approx(
        imbalance.spearman(g["imbalance_k"], g["imbalance_moad_img"])
    )
    assert (
        g["imbalance_rmg_k5"] == g["imbalance_rmg"][5]
        and g["imbalance_moad_img_k0"] == g["imbalance_moad_img"][0]
    )


def test_object_bias(executed):
    from gaplab.data import toy

    _, g = executed("object_bias")
    emb, obj, attr = toy.factor_embeddings(
        object_weight=1.0, attribute_weight=0.0, seed=0
    )
    assert g["toy_moad_object_only"] == pytest.approx(metrics.moad(emb, obj, attr))
    assert g["toy_moad_attribute_only"] < 0 < g["toy_moad_object_only"]
    for key in (
        "bias_object_acc",
        "bias_attribute_acc",
        "probe_attr_k0",
        "probe_attr_k5",
        "zs_attr_k0",
        "zs_attr_k5",
    ):
        assert _is_unit_float(g[key]), key
    for key in (
        "bias_moad_img",
        "bias_moad_txt",
        "presence_moad_color_in_colour_model",
        "presence_moad_color_in_digit_model",
        "presence_moad_digit_in_colour_model",
        "presence_moad_digit_in_digit_model",
    ):
        assert type(g[key]) is float and -4 <= g[key] <= 4, key


def test_entropy_link(executed):
    _, g = executed("entropy_link")
    assert type(g["entropy_gap_corr"]) is float and -1 <= g["entropy_gap_corr"] <= 1
    for key in (
        "finetune_gap_change_frozen",
        "finetune_gap_change_learnable",
        "finetune_entropy_change_frozen",
        "finetune_entropy_change_learnable",
    ):
        assert type(g[key]) is float and math.isfinite(g[key]), key
    assert (
        -1 <= g["finetune_gap_change_frozen"] <= 1
        and -1 <= g["finetune_gap_change_learnable"] <= 1
    )


def test_cone_temperature(executed):
    from gaplab.experiments import cone

    _, g = executed("cone_temperature")
    assert g["cone_mlp_relu"] == pytest.approx(
        cone.mlp_cone("relu", depth=10, seed=0)[-1]
    )
    assert -1 <= g["cone_mean_cos_init"] <= 1
    assert g["temperature_logit_scale"] == [1.0, 10.0, 20.0, 30.0, 50.0, 100.0]
    assert isinstance(g["temperature_l2m"], list) and len(g["temperature_l2m"]) == 6
    assert all(type(v) is float and 0 <= v <= 2 for v in g["temperature_l2m"])
    n = len(g["shift_distance"])
    assert n == 40 and g["shift_distance"][0] == -5.0 and 0.0 in g["shift_distance"]
    assert _unit_list(g["shift_i2t_r1"], n) and _unit_list(g["shift_mad_zero_shot"], n)
    img, txt = load_embeddings("clip")
    i0 = g["shift_distance"].index(0.0)
    assert g["shift_l2m"][i0] == pytest.approx(metrics.l2m(img, txt))
    assert g["shift_i2t_r1"][i0] == pytest.approx(
        metrics.recall_at_k(img, txt, k=1, direction="i2t")
    )
    # the loss landscape: one minimum per logit scale, on the grid; at CLIP's scale the shipped embeddings'
    # minimum does not depend on the profile
    from gaplab.experiments import landscape

    assert g["landscape_logit_scale"] == [1.0, 10.0, 20.0, 30.0, 50.0, 100.0]
    assert all(v in landscape.LIANG_SHIFTS for v in g["landscape_min_shift"])
    lows = landscape.landscape_minima(
        landscape.loss_landscape(img, txt, logit_scales=(100.0,))
    )
    assert g["landscape_min_shift"][-1] == lows["shift"].iloc[0]
    # closing the gap at initialisation: step 0 of the aligned run is closer than the plain run's
    assert g["init_aligned_l2m_start"] < g["init_plain_l2m_start"]
    # the paper's set-up of the mismatch toy needs no training: its minima are the same at every profile
    from gaplab.experiments import mismatch

    assert g["paper_toy_logit_scales"] == list(mismatch.LIANG_SPHERE_LOGIT_SCALES)
    assert g["paper_toy_tilt_matched"] == [0.0] * 5
    one = mismatch.loss_minima(
        mismatch.loss_against_tilt(logit_scales=(100.0,), swaps=(1,)), along="tilt"
    )
    assert g["paper_toy_tilt_100"] == one["tilt"].item() > 0
    assert g["paper_toy_gap_100"] == pytest.approx(one["gap"].item())
    assert g["paper_toy_tilt_swapped"][0] == 0.0  # logit scale 1: no gap


def test_models_compared(executed):

    nb, g = executed("models_compared")
    assert g["models_set"] == "mad"  # smoke runs offline on the MAD zoo
    assert g["models_n"] == 20
    for key in ("models_kendall_rmg", "models_kendall_moad"):
        assert type(g[key]) is float and -1 <= g[key] <= 1, key
    for key in ("models_kendall_rmg_p", "models_kendall_moad_p"):
        assert type(g[key]) is float and 0 < g[key] <= 1, key
    assert g["models_within_groups"] == ["k=2"]  # the only k with three or more models
    assert len(g["models_within_tau"]) == len(g["models_within_p"]) == 1
    # ten models at k = 2: every pairing is counted, ties or not
    assert g["models_within_method"] == ["exact over all 3,628,800 pairings"]
    # twenty models: exact without ties, else resampled with its Monte-Carlo s.e.
    assert re.fullmatch(
        r"exact over all 2,432,902,008,176,640,000 pairings"
        r"|from 99,999 resamples, MC s\.e\. [0-9.e-]+",
        g["models_kendall_rmg_method"],
    ), g["models_kendall_rmg_method"]
    text = "".join(
        o.get("text", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert (
        "L2M" in text and "0.851" in text
    )  # the shipped CLIP's report: the gap-geometry chapter's L2M


def test_contrastive_gap(executed):
    _, g = executed("contrastive_gap")
    for key in (
        "samemodality_l2m",
        "samemodality_separate_l2m_start",
        "samemodality_shared_l2m",
        "samemodality_pairs_100_l2m",
        "clip_l2m_mad",
        "cua_l2m",
        "cuax_l2m",
    ):
        assert type(g[key]) is float and 0 <= g[key] <= 2, key
    for key in (
        "clip_linear_separability_mad",
        "cua_linear_separability",
        "clip_zero_shot_mad",
        "cua_zero_shot",
        "samemodality_linear_separability",
    ):
        assert _is_unit_float(g[key]), key
    assert -8 <= g["cua_uniformity"] <= 0 and 0 <= g["cua_alignment"] <= 4
    assert g["samemodality_ratio_to_pairs"] == pytest.approx(
        g["samemodality_l2m"] / g["samemodality_pairs_100_l2m"]
    )
    # the crop set-up's three seeds, measured before and after training
    starts, ends = g["samemodality_crop_l2m_start"], g["samemodality_crop_l2m"]
    assert len(starts) == len(ends) == len(g["samemodality_crop_sep"]) == 3
    assert g["samemodality_l2m"] == pytest.approx(sum(ends) / 3)
    assert g["samemodality_crop_rise_min"] == pytest.approx(
        min(e - s for s, e in zip(starts, ends))
    )
    # the symmetry control: equal towers on equal inputs, exactly no gap at either end
    assert g["samemodality_symmetric_l2m_start"] == g["samemodality_symmetric_l2m"] == 0
    # the 128-dimensional rows of the size sweep are the runs of the CLIP-against-CUA section
    assert g["dims_clip_l2m"][0] == pytest.approx(g["clip_l2m_mad"])
    assert g["dims_cua_l2m"][0] == pytest.approx(g["cua_l2m"])
    assert len(g["dims_clip_l2m"]) == len(g["dims_cua_separability"]) == 3


def test_closing_gap(executed, monkeypatch):
    from gaplab.experiments import closing, imbalance, organisation

    _, g = executed("closing_gap")
    assert g["closing_ks"] == [0, 1, 2, 3, 4, 5]
    for key in (
        "closing_attribute_acc_before",
        "closing_attribute_acc_after",
        "closing_attribute_acc_ensemble",
        "closing_object_acc_before",
        "closing_object_acc_after",
        "closing_object_acc_ensemble",
    ):
        assert _unit_list(g[key], 6), key
    assert len(g["organisation_kendall_tau"]) == 6
    assert all(-1 <= v <= 1 for v in g["organisation_kendall_tau"])
    assert _unit_list(g["organisation_shuffled"], 6)
    # under the dot rule the ways of closing the gap cannot change an accuracy
    assert g["closing_dot_differ"] == 0
    # the page's verdicts are the tests', whichever way they come out
    both = g["closing_p_attr"] < 0.05 and g["closing_p_obj"] < 0.05
    assert g["closing_verdict"] == ("holds" if both else "does not hold")
    more = g["closing_p_more"] < 0.05
    assert g["closing_more"] == ("more" if more else "not significantly more")
    # the glued numbers are the experiment modules' on the chapter's own runs
    _, run_cache = executed.details("closing_gap")
    monkeypatch.setenv("GAPLAB_CACHE", str(run_cache))
    runs = imbalance.imbalance_runs("smoke", ks=(2,), seeds=(0, 1), progress=False)
    table = closing.closing_over_runs(runs)
    summary = closing.closing_summary(table)
    assert g["closing_attribute_acc_after"][2] == pytest.approx(
        summary.loc[0, "attribute ideal words - u0"]
    )
    assert g["closing_object_acc_before"][2] == pytest.approx(
        summary.loc[0, "object plain prompt"]
    )
    assert g["closing_n_ideal"] == 1000  # smoke trains on 1,000 images, all used
    org = organisation.organisation_over_runs(runs)
    digit = org[org["factor"] == "digit"]
    assert g["organisation_kendall_tau"][2] == pytest.approx(digit["tau"].mean())


@pytest.mark.parametrize(
    "stem", [p.stem for p in sorted((ROOT / "notebooks_py").glob("*.py"))]
)
def test_student_notebook_checks_blank_and_worked_answers(executed, stem, monkeypatch):
    # a teacher's dry run: the student notebook at smoke, each exercise checked blank and then with its
    # worked answer; the checks must say "not answered yet", then "correct", and nothing may fail
    from gaplab.teach import student

    executed(stem)
    monkeypatch.setenv("GAPLAB_CACHE", os.pathsep.join(executed.caches()))
    said = student.rehearse(stem, profile="smoke")
    labels = re.findall(
        r"^# :label: (\S+-ex\d+)$",
        (ROOT / "notebooks_py" / f"{stem}.py").read_text(),
        re.M,
    )
    assert sorted(said) == sorted(labels)
    for label, (blank, worked) in said.items():
        assert "not answered yet" in blank, (label, blank)
        assert worked.endswith(": correct."), (label, worked)


def test_remedies(executed, monkeypatch):
    from gaplab.experiments import remedies as rem

    _, g = executed("remedies")
    assert g["remedy_ks"] == [1, 4] and g["remedy_seeds"] == 1
    for name in [*rem.TRAINING_REMEDIES, *rem.POSTHOC_REMEDIES]:
        key = f"remedy_{rem.slug(name)}"
        assert 0 <= g[f"{key}_l2m"] <= 2 and 0 <= g[f"{key}_attribute_acc"] <= 1, name
    assert g["remedy_pred_n"] == 2 * (len(rem.TRAINING_REMEDIES) - 1)
    # the page's verdict is the test's, whichever way it comes out
    holds = g["remedy_pred_rho_entropy"] > 0 and g["remedy_pred_p_entropy"] < 0.05
    assert g["remedy_pred_verdict"] == ("supports" if holds else "does not support")
    assert g["remedy_clip_l2m_mean_subtraction"] < g["remedy_clip_l2m_none"]
    assert all(isinstance(g[f"remedy_best_{i}"], str) for i in range(len(rem.TASKS)))
    # the glued numbers are the experiment module's on the chapter's own runs
    _, run_cache = executed.details("remedies")
    monkeypatch.setenv("GAPLAB_CACHE", str(run_cache))
    runs = rem.remedy_runs("smoke", progress=False)
    table = rem.remedy_table(runs)
    swap = table[(table["remedy"] == "modality swapping") & (table["k"] == 1)]
    assert g["remedy_modality_swapping_l2m"] == pytest.approx(swap["l2m"].iloc[0])
    assert g["remedy_pred_rho_entropy"] == pytest.approx(
        rem.entropy_prediction(table)["rho_entropy"]
    )
