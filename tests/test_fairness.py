"""gaplab.zoo.fairness: Liang et al.'s FairFace probe under a shifted gap, offline.

The faces are a tiny FairFace-layout folder of random images written into tmp_path; the model is test_zoo's tiny
open_clip architecture saved as a local checkpoint.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from gaplab.metrics.geometry import unit_gap
from gaplab.zoo import fairness as F
from gaplab.zoo.datasets import DataError, load_data
from gaplab.zoo.models import load_model
from tests.test_zoo import embed_cache, tiny  # noqa: F401 - the tiny checkpoint and a private embedding cache
from tests.test_zoo_datasets import coco  # noqa: F401 - a tiny COCO layout for the gap vector

HEADER = "file,age,gender,race,service_test\n"


def _write_faces(root, n=14, seed=0):
    """n faces, every race and gender present, random pixels so that the embeddings differ."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        race, gender = F.RACES[i % len(F.RACES)], F.GENDERS[(i // len(F.RACES)) % 2]
        path = root / "val" / f"{i + 1}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path)
        rows.append(f"val/{i + 1}.jpg,20-29,{gender},{race},True\n")
    (root / "fairface_label_val.csv").write_text(HEADER + "".join(rows))
    return root


@pytest.fixture
def fairface(tmp_path):
    return _write_faces(tmp_path / "fairface")


# --------------------------------------------------------------------------------------------------------
# the data


def test_load_fairface_reads_the_published_layout(fairface):
    d = F.load_fairface(fairface)
    assert d.split == "val" and len(d.images) == 14
    assert d.images.ids()[:2] == ["val/1.jpg", "val/2.jpg"]
    assert (
        list(d.labels["race"][:2]) == ["Black", "White"]
        and d.labels["gender"][7] == "Female"
    )
    assert d.labels["age"][0] == "20-29"  # strings as written
    assert d.images[0].mode == "RGB" and d.images[0].size == (12, 12)
    sub = F.load_fairface(fairface, limit=5, seed=3)
    assert len(sub.images) == 5 and sub.images.ids() == sorted(
        sub.images.ids(), key=lambda s: int(s[4:-4])
    )
    assert sub.images.ids() == F.load_fairface(fairface, limit=5, seed=3).images.ids()
    assert list(sub.labels["file"]) == sub.images.ids()


def test_load_fairface_errors_name_the_problem(fairface, tmp_path):
    with pytest.raises(
        DataError,
        match=r"(?s)no label file fairface_label_val\.csv.*github\.com/joojs/fairface",
    ):
        F.load_fairface(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no label file fairface_label_train.csv"):
        F.load_fairface(fairface, split="train")
    with pytest.raises(DataError, match="splits 'val' and 'train', not 'test'"):
        F.load_fairface(fairface, split="test")
    with pytest.raises(DataError, match="limit must be a whole number"):
        F.load_fairface(fairface, limit=0)
    csv = fairface / "fairface_label_val.csv"
    good = csv.read_text()
    csv.write_text(good.replace(",race,", ",ethnicity,"))
    with pytest.raises(DataError, match=r"lacks the column\(s\) race \(it has"):
        F.load_fairface(fairface)
    csv.write_text(HEADER)
    with pytest.raises(DataError, match="no rows in the label file"):
        F.load_fairface(fairface)
    csv.write_text("")
    with pytest.raises(DataError, match="the label file is empty"):
        F.load_fairface(fairface)
    csv.write_text(good.replace(",Black,", ",Martian,"))
    with pytest.raises(DataError, match=r"unknown race value\(s\) \['Martian'\]"):
        F.load_fairface(fairface)
    csv.write_text(good)
    (fairface / "val" / "3.jpg").unlink()
    (fairface / "val" / "9.jpg").unlink()
    with pytest.raises(
        DataError,
        match=r"2 of 14 images listed in fairface_label_val\.csv are missing \(first: "
        r".*val/3\.jpg\)",
    ):
        F.load_fairface(fairface)


# --------------------------------------------------------------------------------------------------------
# the interval


def test_wilson_interval_known_values():
    low, high = F.wilson_interval(5, 10)
    assert (round(float(low), 4), round(float(high), 4)) == (0.2366, 0.7634)
    from scipy.stats import binomtest

    for k, n in [(0, 7), (1, 50), (14, 100), (99, 100), (30, 30)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        got = F.wilson_interval(k, n)
        assert got[0] == pytest.approx(ref.low, abs=1e-12) and got[1] == pytest.approx(
            ref.high, abs=1e-12
        )
    assert F.wilson_interval(0, 7)[0] == 0 and F.wilson_interval(30, 30)[
        1
    ] == pytest.approx(1)
    with pytest.raises(ValueError, match="0 <= k <= n"):
        F.wilson_interval(3, 2)


# --------------------------------------------------------------------------------------------------------
# the probe on embeddings


def _synthetic(seed=0, n=60, d=8):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(n, d)) + 1.5
    txt = rng.normal(size=(len(F.PROMPTS), d)) - 1.5
    groups = {"race": rng.choice(F.RACES, n), "gender": rng.choice(F.GENDERS, n)}
    return img, txt, groups, unit_gap(img, txt)


def test_probe_rows_columns_and_intervals():
    img, txt, groups, gap = _synthetic()
    df = F.probe_embeddings(img, groups, txt, list(F.PROMPTS), gap, (0, -0.2))
    assert list(df.columns) == [
        "lam",
        "by",
        "group",
        "category",
        "n",
        "count",
        "share",
        "ci_low",
        "ci_high",
    ]
    assert set(df["by"]) == {"race", "gender", "all"} and set(df["category"]) == {
        "crime",
        "non_human",
    }
    assert list(
        df[(df.by == "race") & (df.lam == 0) & (df.category == "crime")].group
    ) == [r for r in F.RACES if r in set(groups["race"])]
    assert df["share"].between(0, 1).all()
    assert (df["ci_low"] <= df["share"]).all() and (df["share"] <= df["ci_high"]).all()
    assert (df[df.by == "all"]["n"] == 60).all()


def test_bad_lambdas_and_classes_are_named():
    img, txt, groups, gap = _synthetic()
    names = list(F.PROMPTS)
    with pytest.raises(
        ValueError, match="lambdas must be a number or a list of numbers; got '0.2'"
    ):
        F.probe_embeddings(img, groups, txt, names, gap, "0.2")
    with pytest.raises(
        ValueError, match=r"each lambda must be a finite number; got None \(NoneType\)"
    ):
        F.probe_embeddings(img, groups, txt, names, gap, [0, None])
    with pytest.raises(
        ValueError, match="each lambda must be a finite number; got nan"
    ):
        F.probe_embeddings(img, groups, txt, names, gap, [math.nan])
    with pytest.raises(
        ValueError, match=r"crime classes \['burglar'\] are not among the class names"
    ):
        F.probe_embeddings(img, groups, txt, names, gap, crime=("burglar",))
    with pytest.raises(
        ValueError, match=r"groups\['race'\] has 3 labels for 60 images"
    ):
        F.probe_embeddings(img, {"race": ["Black"] * 3}, txt, names, gap)
    with pytest.raises(ValueError, match="move must be 'image' or 'both'"):
        F.shifted_predictions(img, txt, gap, 0.1, move="text")
    with pytest.raises(ValueError, match="delta must be a finite vector of shape"):
        F.shifted_predictions(img, txt, gap[:3], 0.1)


def test_share_table_and_disparity():
    rows = [
        (lam, "race", g, "crime", 10, c)
        for lam, counts in ((0.0, (5, 1, 2)), (-0.2, (3, 1, 1)))
        for g, c in zip(("White", "Black", "East Asian"), counts)
    ]
    df = pd.DataFrame(rows, columns=["lam", "by", "group", "category", "n", "count"])
    df["share"] = df["count"] / df["n"]
    table = F.share_table(df)
    assert list(table.index) == ["Black", "White", "East Asian"]  # Table 6's order
    assert table.loc["White", 0.0] == 0.5
    gaps = F.disparity(df)
    assert gaps.loc[0.0, "highest"] == "White" and gaps.loc[0.0, "lowest"] == "Black"
    assert gaps.loc[0.0, "difference"] == pytest.approx(0.4) and gaps.loc[
        -0.2, "difference"
    ] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no rows for category 'non_human'"):
        F.share_table(df, "non_human")


rows_and_dim = st.tuples(st.integers(3, 25), st.integers(2, 6))


@st.composite
def probe_case(draw):
    n, d = draw(rows_and_dim)
    elems = st.floats(-3, 3, allow_nan=False, allow_infinity=False)
    img = draw(hnp.arrays(np.float64, (n, d), elements=elems))
    img[np.linalg.norm(img, axis=1) < 0.1, 0] = 1.0
    txt = draw(hnp.arrays(np.float64, (5, d), elements=elems))
    txt[np.linalg.norm(txt, axis=1) < 0.1, 0] = -1.0
    groups = np.asarray(
        draw(st.lists(st.sampled_from(F.RACES[:3]), min_size=n, max_size=n))
    )
    gap = draw(hnp.arrays(np.float64, (d,), elements=st.floats(-1, 1)))
    gap = gap / np.linalg.norm(gap) if np.linalg.norm(gap) > 0.1 else np.eye(d)[0]
    lam = draw(st.sampled_from([0.0, -0.2, -0.5, 0.3]))
    return img, txt, groups, gap, lam


NAMES = ["a", "b", "thief", "criminal", "gorilla"]


def _probe(img, txt, groups, gap, lam):
    return F.probe_embeddings(
        img,
        {"race": groups},
        txt,
        NAMES,
        gap,
        [lam],
        crime=("thief", "criminal"),
        non_human=("gorilla",),
    )


@given(probe_case())
def test_group_counts_add_up_to_all(case):
    img, txt, groups, gap, lam = case
    df = _probe(img, txt, groups, gap, lam)
    for category in ("crime", "non_human"):
        race = df[(df.by == "race") & (df.category == category)]
        everyone = df[(df.by == "all") & (df.category == category)].iloc[0]
        assert race["n"].sum() == everyone["n"] == len(img)
        assert race["count"].sum() == everyone["count"]
        # the overall share is the n-weighted mean of the group shares
        assert np.average(race["share"], weights=race["n"]) == pytest.approx(
            everyone["share"]
        )
    per_group = df[df.by == "race"].groupby("group")["share"].sum()
    assert (per_group <= 1 + 1e-12).all()


@given(probe_case(), st.lists(st.floats(0.1, 10), min_size=25, max_size=25))
def test_predictions_do_not_depend_on_the_image_norms(case, scales):
    img, txt, groups, gap, lam = case
    scaled = img * np.asarray(scales[: len(img)])[:, None]
    a, b = _probe(img, txt, groups, gap, lam), _probe(scaled, txt, groups, gap, lam)
    pd.testing.assert_frame_equal(a, b)


@given(probe_case())
def test_image_shift_is_a_per_class_bias(case):
    # the exercise's claim: renormalising x - lam*g divides every class's score by one number, so the winner is
    # the argmax of <x, t_c> - lam * <g, t_c> over unit x and t_c
    img, txt, groups, gap, lam = case
    x = img / np.linalg.norm(img, axis=1, keepdims=True)
    t = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    if np.any(np.linalg.norm(x - lam * gap, axis=1) < 1e-6):
        return  # the shift sends a row to zero; shift_along_gap refuses that
    scores = x @ t.T - lam * (t @ gap)[None, :]
    top2 = np.sort(scores, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-9  # ties may break either way
    got = F.shifted_predictions(img, txt, gap, lam)
    assert np.array_equal(got[clear], scores.argmax(axis=1)[clear])


def test_the_exercise_example():
    x, t, g = np.array([[0.6, 0.8]]), np.eye(2), np.array([0.6, -0.8])
    assert F.shifted_predictions(x, t, g, 0.0)[0] == 1
    assert F.shifted_predictions(x, t, g, -0.14)[0] == 1  # just above -1/7
    assert F.shifted_predictions(x, t, g, -0.15)[0] == 0


def test_both_sides_shift_moves_classes_too():
    img, txt, groups, gap = _synthetic(1)
    x = img / np.linalg.norm(img, axis=1, keepdims=True)
    t = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    xs, ts = x - 0.25 * gap, t + 0.25 * gap
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    ts /= np.linalg.norm(ts, axis=1, keepdims=True)
    assert np.array_equal(
        F.shifted_predictions(img, txt, gap, 0.5, move="both"),
        (xs @ ts.T).argmax(axis=1),
    )


# --------------------------------------------------------------------------------------------------------
# the probe with a model


def _slow_embeddings(loaded, data):
    """Image and prompt embeddings straight from the model, one at a time, normalised by hand."""
    with torch.no_grad():
        img = [
            loaded.model.encode_image(loaded.preprocess(data.images[i])[None])[
                0
            ].tolist()
            for i in range(len(data.images))
        ]
        txt = [
            loaded.model.encode_text(loaded.tokenizer([p]))[0].tolist()
            for p in F.PROMPTS.values()
        ]

    def unit(v):
        s = math.sqrt(sum(a * a for a in v))
        return [a / s for a in v]

    return [unit(v) for v in img], [unit(v) for v in txt]


def test_probe_end_to_end_and_lambda_zero_is_the_plain_argmax(tiny, fairface, coco):
    loaded = load_model(*tiny, device="cpu")
    data = F.load_fairface(fairface)
    df = F.fairness_probe(
        loaded,
        data,
        lambdas=(0, -0.2, 0.5),
        gap=load_data("coco", coco),
        progress=False,
    )
    assert df.attrs["gap_source"] == "coco val2017" and df.attrs["model"] == tiny[0]
    assert sorted(df["lam"].unique()) == [-0.2, 0.0, 0.5]
    assert set(df["category"]) == {"crime", "non_human", "correct"}
    assert df["share"].between(0, 1).all() and (df["ci_low"] <= df["share"]).all()
    assert (df["share"] <= df["ci_high"]).all()
    assert (
        df[(df.by == "race") & (df.category == "crime") & (df.lam == 0)]["n"].sum()
        == 14
    )

    # lambda = 0: the class of largest cosine, computed slowly from the model's own outputs
    img, txt = _slow_embeddings(loaded, data)
    names = list(F.PROMPTS)
    cos = [[sum(a * b for a, b in zip(x, t)) for t in txt] for x in img]
    pred = [max(range(len(names)), key=row.__getitem__) for row in cos]
    margins = [sorted(row)[-1] - sorted(row)[-2] for row in cos]
    assert min(margins) > 1e-5, (
        "a near tie would make the comparison depend on rounding"
    )
    at0 = df[df.lam == 0].set_index(["by", "group", "category"])["count"]
    for race in F.RACES:
        faces = [i for i, r in enumerate(data.labels["race"]) if r == race]
        assert at0["race", race, "crime"] == sum(
            names[pred[i]] in F.CRIME for i in faces
        )
        assert at0["race", race, "non_human"] == sum(
            names[pred[i]] in F.NON_HUMAN for i in faces
        )
        own = [f"{race}_{g}" for g in data.labels["gender"][faces]]
        assert at0["race", race, "correct"] == sum(
            names[pred[i]] == o for i, o in zip(faces, own)
        )


def test_probe_gap_sources_and_early_lambda_check(tiny, fairface, coco, monkeypatch):
    loaded = load_model(*tiny, device="cpu")
    data = F.load_fairface(fairface, limit=6)
    from gaplab.zoo import encode as E

    calls = []
    monkeypatch.setattr(E, "encode_images", lambda *a, **k: calls.append(1))
    with pytest.raises(
        ValueError, match="each lambda must be a finite number; got '0.2'"
    ):
        F.fairness_probe(loaded, data, lambdas=[0, "0.2"], progress=False)
    assert not calls  # refused before any encoding
    monkeypatch.undo()
    own = F.fairness_probe(loaded, data, lambdas=0, progress=False)
    assert own.attrs["gap_source"] == "the faces against the probe's prompts"
    caption_gap = F.gap_from_captions(loaded, load_data("coco", coco), progress=False)
    assert caption_gap.shape == (16,) and np.linalg.norm(caption_gap) == pytest.approx(
        1
    )
    given_gap = F.fairness_probe(
        loaded, data, lambdas=[0, 0.3], gap=caption_gap, progress=False
    )
    via_coco = F.fairness_probe(
        loaded, data, lambdas=[0, 0.3], gap=load_data("coco", coco), progress=False
    )
    assert given_gap.attrs["gap_source"] == "given"
    assert via_coco.attrs["gap_source"] == "coco val2017"
    pd.testing.assert_frame_equal(given_gap, via_coco)


def test_the_chapters_section_says_why_it_did_not_run(fairface, tmp_path):
    said = []
    assert F.chapter_probe("mad", fairface, tmp_path, echo=said.append) is None
    assert (
        "did not run: it needs a pretrained open_clip model" in said[0]
        and "drive.google.com" in said[0]
    )
    said.clear()
    assert (
        F.chapter_probe("open_clip", tmp_path / "none", tmp_path, echo=said.append)
        is None
    )
    assert (
        f"did not run: FairFace is not at {tmp_path / 'none'}" in said[0]
        and "0.56 GB" in said[0]
    )


def test_the_chapters_section_on_local_model_and_data(tiny, fairface, coco, tmp_path):
    said = []
    df = F.chapter_probe(
        "open_clip", fairface, coco, model=tiny, lambdas=(0, -0.2), echo=said.append
    )
    assert (
        df.attrs["gap_source"] == "coco val2017"
        and "14 faces; gap vector from coco val2017" in said[-1]
    )
    df = F.chapter_probe(
        "open_clip",
        fairface,
        tmp_path / "no-coco",
        model=tiny,
        lambdas=0,
        echo=said.append,
    )
    assert df.attrs["gap_source"] == "the faces against the probe's prompts"
    assert any("no COCO val2017 at" in s for s in said)
