"""The shipped embeddings, the profiles, and the chapter helpers (glue, claim checks, charts, widgets)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import vl_convert as vlc

import gaplab
from gaplab import book, profiles
from gaplab.book import charts, widgets
from gaplab.data import embeddings
from gaplab.experiments import real_embeddings
from gaplab.metrics.geometry import joint_pca


@pytest.mark.parametrize("name", list(embeddings.EMBEDDING_MODELS))
def test_every_shipped_model_loads(name):
    img, txt = embeddings.load_embeddings(name)
    assert img.shape == txt.shape and img.ndim == 2 and img.dtype == np.float32
    assert np.isfinite(img).all() and np.isfinite(txt).all()


def test_clip_embeddings_match_their_source_notes():
    # SOURCE.md records L2M 0.8514 and image->text R@1 0.552 for these files
    from gaplab import metrics

    img, txt = embeddings.load_embeddings("clip")
    assert img.shape == (500, 512)
    assert metrics.l2m(img, txt) == pytest.approx(0.8514, abs=1e-4)
    assert metrics.recall_at_k(img, txt, 1) == pytest.approx(0.552, abs=1e-3)


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError, match="clip_random.*videoclip"):
        embeddings.load_embeddings("clipp")


def test_data_dir_override_and_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("GAPLAB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing"):
        embeddings.load_embeddings("clip")
    (tmp_path / "liang2022-embeddings").mkdir()
    np.save(
        tmp_path / "liang2022-embeddings" / "features_clip.npy",
        np.ones((3, 4, 5), dtype=np.float32),
    )
    with pytest.raises(ValueError, match=r"expected \(2, N, D\)"):
        embeddings.load_embeddings("clip")


def test_profiles(monkeypatch):
    assert gaplab.resolve_profile("smoke").name == "smoke"
    assert gaplab.resolve_profile(" CPU ").name == "cpu"
    monkeypatch.setattr(profiles, "_has_cuda", lambda: False)
    assert gaplab.resolve_profile("auto").name == "cpu"
    monkeypatch.setattr(profiles, "_has_cuda", lambda: True)
    assert gaplab.resolve_profile("auto").name == "paper"
    with pytest.raises(ValueError, match="smoke, cpu, long, paper, auto"):
        gaplab.resolve_profile("fast")
    with pytest.raises(TypeError):
        gaplab.resolve_profile(3)
    assert (
        not profiles.PROFILES["smoke"].check_claims
        and profiles.PROFILES["cpu"].check_claims
    )


def test_the_profiles_are_a_ladder_of_scale():
    # each rung trains at least as much as the one below it, with the same recipe otherwise, and every rung
    # above smoke checks the papers' claims
    ladder = list(profiles.PROFILES.values())
    assert [p.name for p in ladder] == ["smoke", "cpu", "long", "paper"]
    for low, high in zip(ladder, ladder[1:]):
        assert high.mad_steps * high.mad_batch > low.mad_steps * low.mad_batch
        assert high.mad_n_train >= low.mad_n_train and high.mad_eval_n >= low.mad_eval_n
        assert high.finetune_steps >= low.finetune_steps and high.check_claims
    long, cpu = profiles.PROFILES["long"], profiles.PROFILES["cpu"]
    # long is the cpu recipe trained longer: the same batch, so a step costs what it costs at cpu
    assert long.mad_batch == cpu.mad_batch and long.mad_glyphs == cpu.mad_glyphs
    assert long.imbalance_frozen_recipe  # the temperature question is asked at long


def test_plain_and_glue():
    value = book.plain({"a": np.float32(1.5), "b": [np.int64(2), np.arange(2)]})
    assert value == {"a": 1.5, "b": [2, [0, 1]]}
    assert type(value["a"]) is float and type(value["b"][0]) is int
    assert book.glue("x", np.float64(0.25)) is None
    with pytest.raises(TypeError, match="cannot glue"):
        book.plain(object())


def test_check_claim(capsys):
    book.check_claim("holds", True, "ok", "cpu")
    book.check_claim("fails quietly at smoke", False, "x = 1", "smoke")
    assert [(c.holds, c.checked) for c in book.CLAIMS[-2:]] == [
        (True, True),
        (False, False),
    ]
    assert "not enforced" in capsys.readouterr().out
    with pytest.raises(book.ClaimNotReproduced, match="x = 1"):
        book.check_claim("fails at cpu", False, "x = 1", "cpu")
    with pytest.raises(book.ClaimNotReproduced):
        book.check_claim("nan is not a pass", float("nan"), "nan", "cpu")
    # a finding measured not to reproduce: the verdict is printed from the evidence, the build goes on
    capsys.readouterr()
    book.check_claim(
        "does not hold here",
        False,
        "gain +0.001",
        "cpu",
        not_at_this_scale="too small on MAD",
    )
    out = capsys.readouterr().out
    assert (
        "[NOT reproduced] does not hold here" in out
        and "reported, not enforced: too small on MAD" in out
    )
    assert (book.CLAIMS[-1].holds, book.CLAIMS[-1].checked) == (False, False)
    book.check_claim(
        "holds after all",
        True,
        "gain +0.1",
        "cpu",
        not_at_this_scale="too small on MAD",
    )
    assert "[reproduced] holds after all" in capsys.readouterr().out


def test_check_claim_reasons_by_rung(capsys):
    # a reason given for one rung excuses a failure there and nowhere else
    reasons = {"long": "measured not to hold at long"}
    book.check_claim("fails at long", False, "x = 1", "long", not_at_this_scale=reasons)
    assert book.CLAIMS[-1].checked is False
    assert (
        "reported, not enforced: measured not to hold at long"
        in capsys.readouterr().out
    )
    with pytest.raises(book.ClaimNotReproduced, match="x = 1"):
        book.check_claim(
            "fails at cpu", False, "x = 1", "cpu", not_at_this_scale=reasons
        )
    with pytest.raises(book.ClaimNotReproduced):
        book.check_claim(
            "fails at paper", False, "x = 1", "paper", not_at_this_scale=reasons
        )
    book.check_claim(
        "smoke checks nothing", False, "x = 1", "smoke", not_at_this_scale=reasons
    )
    assert book.CLAIMS[-1].checked is False


def test_check_claim_refuses_a_misspelt_rung():
    with pytest.raises(ValueError, match=r"unknown profiles \['lnog'\]"):
        book.check_claim("x", False, "x = 1", "cpu", not_at_this_scale={"lnog": "why"})
    with pytest.raises(TypeError, match="not_at_this_scale must be"):
        book.check_claim("x", False, "x = 1", "cpu", not_at_this_scale=["why"])


def _svg(chart) -> str:
    return vlc.vegalite_to_svg(chart.to_dict())


def test_charts_compile_and_draw(rng):
    img, txt = rng.normal(size=(30, 8)), rng.normal(size=(30, 8)) + 1
    a, b, explained = joint_pca(img, txt)
    assert a.shape == (30, 2) and 0 < explained[0] <= 1
    assert "<svg" in _svg(charts.pair_projection(a, b, n_links=10))
    table = real_embeddings.gap_table(["clip", "clip_random"])
    assert "<svg" in _svg(charts.model_comparison(table.reset_index(), "L2M"))
    from gaplab import metrics

    assert "<svg" in _svg(
        charts.dimension_profile(metrics.mean_differences(img, txt), top=8)
    )
    top = metrics.ablation_curve(img, txt, max_k=3)
    control = metrics.random_ablation_curve(img, txt, max_k=3, repeats=2)
    measures = {"l2m": "L2M", "rmg": "RMG"}
    assert "<svg" in _svg(
        charts.ablation_curves(top, control, measures=measures, max_k=3)
    )
    with pytest.raises(ValueError, match="equal shape"):
        charts.pair_projection(a, b[:5])
    with pytest.raises(ValueError, match="lacks the column"):
        charts.model_comparison(table.reset_index(), "nope")


def test_site_renderer_needs_no_network(monkeypatch):
    monkeypatch.setenv("GAPLAB_SITE_CHARTS", "1")
    assert charts.setup() == "gaplab-site"
    import altair as alt

    bundle = alt.renderers.get()(
        alt.Chart(alt.Data(values=[{"a": 1}])).mark_point().encode(x="a:Q").to_dict()
    )
    html = bundle["text/html"]
    assert "window.vegaEmbed" in html and "http" not in html.split('"$schema"')[0]
    assert "<script src" not in html
    monkeypatch.delenv("GAPLAB_SITE_CHARTS")
    assert charts.setup() == "default"
    with pytest.raises(ValueError, match="unknown chart renderer"):
        charts.setup("nope")


def test_stepper_links_slider_and_panels():
    box = widgets.stepper(
        ["<p>a</p>", "<p>b</p>", "<p>c</p>"], description="k", start=1
    )
    slider, stack = box.children
    assert slider.max == 2 and stack.selected_index == 1
    with pytest.raises(ValueError, match="start"):
        widgets.stepper(["x"], description="k", start=1)


def test_gap_table_and_panels():
    table = real_embeddings.gap_table(["clip"])
    assert table.loc["clip", "N"] == 500
    assert json.dumps(book.plain(table.loc["clip", "L2M"]))
    from gaplab import metrics

    img, txt = embeddings.load_embeddings("clip")
    top = metrics.ablation_curve(img, txt, max_k=2)
    control = metrics.random_ablation_curve(img, txt, max_k=2, repeats=2)
    panels = real_embeddings.ablation_panels(top, control, {"l2m": "L2M"})
    assert (
        len(panels) == 3 and "k = 2" in panels[2] and str(top["dims"][0]) in panels[1]
    )
    effect = real_embeddings.ablation_effect(top, control, 2)
    assert effect["l2m_after_top"] == top["l2m"][2]
