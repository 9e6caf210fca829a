"""``gaplab report --posthoc``: the report of embeddings after a post-hoc remedy of the gap, fitted on them.

As test_report_cli: the shipped CLIP embeddings, test_zoo's tiny open_clip architecture and test_zoo_datasets'
tiny data layouts; nothing is downloaded. Each check recomputes what the report should say from the remedy
functions of gaplab.metrics and the plain report, so a wrong fit, a wrong side or a lost "before" fails."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from gaplab import metrics as M
from gaplab.__main__ import main
from gaplab.data.embeddings import load_embeddings
from gaplab.metrics.remedies import center, remove_gap_vector, standardise
from gaplab.paths import data_dir
from gaplab.zoo.datasets import load_data
from gaplab.zoo.models import load_model
from gaplab.zoo.posthoc import (
    REMEDIES,
    posthoc_report_embeddings,
    remedy_embeddings,
)
from gaplab.zoo.report import measure_data, report, report_embeddings
from tests.test_report_cli import _core_only
from tests.test_zoo import TINY, embed_cache, tiny  # noqa: F401
from tests.test_zoo_datasets import class_folders, mitstates  # noqa: F401

FUNCTIONS = {
    "center": center,
    "standardise": standardise,
    "gap-vector": remove_gap_vector,
}
CLIP = data_dir() / "liang2022-embeddings" / "features_clip.npy"
#: the measures the before-and-after table prints, by the report's labels
PRINTED = {
    "l2m": "L2M",
    "i2t_r1": "image->text R@1",
    "t2i_r1": "text->image R@1",
    "zero_shot_acc": "zero-shot accuracy",
    "object_acc": "object accuracy",
    "attribute_acc": "attribute accuracy",
}


def _report(argv, capsys):
    code = main(["report", "--device", "cpu", "--quiet", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _before_after(out: str) -> dict[str, list[str]]:
    """The before-and-after table as printed: {label: [cells]}."""
    labels = [*PRINTED.values(), "RMG", "logits entropy (nats)"]
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("before and after"))
    rows = {}
    for line in lines[start + 3 :]:
        if not line.strip():
            break
        label = next(lab for lab in labels if line.startswith(lab + " "))
        rows[label] = line[len(label) :].split()
    return rows


def _check_printed(out: str, name: str, measures: dict, cols: int) -> None:
    """The remedy is named among what was measured, and each compared value is printed before and after."""
    assert re.search(rf"^remedy {{7}}{re.escape(name)}: ", out, re.M), out
    assert "every measure below is of the embeddings after it" in out
    assert out.splitlines()[out.splitlines().index("") - 1].startswith("remedy")
    table = _before_after(out)
    for key, label in PRINTED.items():
        present = [m for m in measures.values() if key in m]
        if not present:
            assert label not in table
            continue
        cells = table[label]
        assert len(cells) == cols
        want = []
        for m in measures.values():
            want += (
                [f"{m['before'][key]:.3f}", f"{m[key]:.3f}"] if key in m else ["-", "-"]
            )
        assert cells == want, (label, cells, want)


# --------------------------------------------------------------------------------------
# precomputed embeddings: the shipped CLIP pairs


@pytest.mark.parametrize("name", sorted(REMEDIES))
def test_the_shipped_clip_embeddings_after_each_remedy(name, tmp_path, capsys):
    code, out, err = _report(
        ["--embeddings", str(CLIP), "--posthoc", name, "--out", str(tmp_path)], capsys
    )
    assert code == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["posthoc"]["remedy"] == name
    measured = rep["data"]["embeddings"]
    # before: exactly the plain report of the same file
    plain = report_embeddings(CLIP)["data"]["embeddings"]
    assert measured["before"] == {
        k: v for k, v in plain.items() if k not in ("data", "root", "split", "kind")
    }
    # after: the measures of the remedied rows, fitted on the same rows
    x, y = load_embeddings("clip")
    rx, ry = FUNCTIONS[name](x, y)
    assert measured["l2m"] == pytest.approx(M.l2m(rx, ry), abs=1e-12)
    assert measured["rmg"] == pytest.approx(M.rmg(rx, ry), abs=1e-12)
    assert measured["i2t_r1"] == M.recall_at_k(rx, ry, 1, "i2t")
    assert measured["t2i_r1"] == M.recall_at_k(rx, ry, 1, "t2i")
    assert measured["kind"] == "captions" and measured["n"] == len(x)
    _check_printed(out, name, rep["data"], cols=2)
    # and the report's own table is that of the embeddings after the remedy
    assert re.search(rf"^L2M\s+{measured['l2m']:.3f}$", out, re.M)


def test_centring_collapses_the_gap_the_report_prints():
    # C^3's remedy, read off the report: the gap after it is a small share of the gap before
    measured = posthoc_report_embeddings(CLIP, "center")["data"]["embeddings"]
    assert measured["l2m"] < 0.05 * measured["before"]["l2m"]


def test_posthoc_runs_on_the_core_install(tmp_path):
    rng = np.random.default_rng(3)
    img, txt = rng.normal(size=(12, 5)) + 0.5, rng.normal(size=(12, 5))
    np.savez(tmp_path / "pairs.npz", image=img, text=txt)
    code, out, err = _core_only(
        "report",
        "--embeddings",
        "pairs.npz",
        "--posthoc",
        "standardise",
        "--out",
        "rep",
        cwd=tmp_path,
    )
    assert code == 0 and err == "", err
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    rx, ry = standardise(img, txt)
    assert rep["data"]["embeddings"]["l2m"] == pytest.approx(M.l2m(rx, ry), abs=1e-12)
    assert "remedy       standardise:" in out


# --------------------------------------------------------------------------------------
# a model: class data and attribute data, every text query moved with its texts


def _by_hand(name, tiny, specs):
    """Each data set's measures from its own encoding, the remedy applied here by the metrics functions:
    fitted on the images and the texts they are measured against, the other queries moved as texts."""
    f = FUNCTIONS[name]
    loaded = load_model(TINY, tiny[1], device="cpu")
    out = {}
    for spec in specs:
        data = load_data(spec)
        _, emb = measure_data(
            loaded, data, templates="single", progress=False, with_embeddings=True
        )
        img = emb["image"]
        if "classes" in emb:
            rx, rc = f(img, emb["classes"])
            out[data.kind] = {
                "zero_shot_acc": M.zero_shot_accuracy(rx, rc, data.labels),
                "l2m": M.l2m(rx, rc),
            }
            continue
        rx, rt = f(img, emb["text"])
        attrs = f(img, emb["attributes"], fit=(img, emb["text"]))[1]
        objs = f(img, emb["objects"], fit=(img, emb["text"]))[1]
        out[data.kind] = {
            "attribute_acc": M.zero_shot_accuracy(rx, attrs, data.attr_labels),
            "object_acc": M.zero_shot_accuracy(rx, objs, data.obj_labels),
            "moad_text": M.moad(rt, data.obj_labels, data.attr_labels),
            "l2m": M.l2m(rx, rt),
        }
    return out


@pytest.mark.parametrize("name", sorted(REMEDIES))
def test_a_model_s_report_after_each_remedy(
    name, tiny, mitstates, class_folders, tmp_path, capsys
):
    specs = [f"folder:{class_folders}", f"mitstates:{mitstates}"]
    argv = ["--model", TINY, "--pretrained", tiny[1], "--templates", "single"]
    argv += [a for s in specs for a in ("--data", s)]
    code, out, err = _report([*argv, "--posthoc", name, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["posthoc"]["remedy"] == name and rep["weights"].startswith("sha256:")
    # before: the plain report of the same model and data
    plain = report(
        TINY, tiny[1], specs, device="cpu", templates="single", progress=False
    )
    for key, measures in rep["data"].items():
        want = {
            k: v
            for k, v in plain["data"][key].items()
            if k not in ("data", "root", "split", "kind", "spec", "templates")
        }
        assert measures["before"] == want, key
        assert measures["spec"] == plain["data"][key]["spec"]
    # after: as the remedy functions give it
    for key, values in _by_hand(name, tiny, specs).items():
        for measure, value in values.items():
            assert rep["data"][key][measure] == pytest.approx(value, abs=1e-12), (
                key,
                measure,
            )
    _check_printed(out, name, rep["data"], cols=4)


def test_posthoc_with_closing_is_refused_before_anything_is_encoded(
    tiny, mitstates, capsys, embed_cache
):
    argv = [
        "--model",
        TINY,
        "--pretrained",
        tiny[1],
        "--data",
        f"mitstates:{mitstates}",
    ]
    code, out, err = _report([*argv, "--posthoc", "center", "--closing"], capsys)
    assert code == 2 and out == ""
    assert "error: --posthoc and --closing cannot be combined" in err
    assert not embed_cache.exists()


def test_an_unknown_remedy_is_refused_by_name(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--embeddings", str(CLIP), "--posthoc", "mean"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'mean'" in err
    for name in REMEDIES:
        assert f"'{name}'" in err
    with pytest.raises(
        ValueError, match="unknown post-hoc remedy 'mean'; choose one of center"
    ):
        remedy_embeddings("mean", {"image": np.eye(3), "text": np.eye(3)})


def test_help_names_the_remedies(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--posthoc {center,standardise,gap-vector}" in text
    assert "shows retrieval R@1 (and zero-shot accuracy) before and after it" in text


def test_extra_text_queries_move_with_the_texts_statistics():
    rng = np.random.default_rng(0)
    emb = {
        "image": rng.normal(size=(9, 4)) + 1,
        "text": rng.normal(size=(9, 4)) - 1,
        "objects": rng.normal(size=(3, 4)),
    }
    out = remedy_embeddings("center", emb)
    text_mean = (emb["text"] / np.linalg.norm(emb["text"], axis=1, keepdims=True)).mean(
        0
    )
    unit = emb["objects"] / np.linalg.norm(emb["objects"], axis=1, keepdims=True)
    want = unit - text_mean
    np.testing.assert_allclose(
        out["objects"], want / np.linalg.norm(want, axis=1, keepdims=True)
    )
    # not with their own mean, which would centre three class prompts on themselves
    own = unit - unit.mean(0)
    assert not np.allclose(
        out["objects"], own / np.linalg.norm(own, axis=1, keepdims=True)
    )
