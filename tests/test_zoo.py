"""gaplab.zoo: real open_clip models on real data layouts, offline.

A tiny open_clip architecture is registered and saved by the tests as a local checkpoint; the data sets are the
tiny ones test_zoo_datasets writes in each real layout.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch

from gaplab import metrics as M
from gaplab.zoo import encode as E
from gaplab.zoo.datasets import load_data
from gaplab.zoo.models import CheckpointMismatch, ModelUnavailable, load_model
from tests.test_zoo_datasets import (  # noqa: F401 - fixtures writing each layout
    _image,
    captions_tsv,
    cifar_root,
    class_folders,
    coco,
    mitstates,
    utzappos,
)

TINY = "gaplab-test-tiny"
_CFG = {
    "embed_dim": 16,
    "vision_cfg": {
        "image_size": 32,
        "layers": 1,
        "width": 32,
        "patch_size": 16,
        "head_width": 16,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 1,
    },
}


def _register(folder, name, cfg):
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(name, checkpoint path) of a tiny open_clip model whose weights differ from a seeded fresh one."""
    import open_clip

    folder = tmp_path_factory.mktemp("tiny")
    _register(folder / "cfg", TINY, _CFG)
    torch.manual_seed(123)
    model = open_clip.create_model(TINY)
    torch.save(model.state_dict(), folder / "tiny.pt")
    return TINY, str(folder / "tiny.pt")


@pytest.fixture(autouse=True)
def embed_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(E.ENV, str(tmp_path / "embeddings"))
    return tmp_path / "embeddings"


# --------------------------------------------------------------------------------------------------------
# models


def test_checkpoint_weights_are_the_ones_loaded(tiny):
    name, ckpt = tiny
    loaded = load_model(name, ckpt, device="cpu")
    saved = torch.load(ckpt, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in loaded.model.state_dict().items())
    assert loaded.weights.startswith("sha256:") and not loaded.model.training


def test_checkpoint_of_another_architecture_is_named(tiny, tmp_path):
    import open_clip

    other = dict(_CFG, embed_dim=8)
    _register(tmp_path / "cfg", "gaplab-test-other", other)
    torch.save(
        open_clip.create_model("gaplab-test-other").state_dict(), tmp_path / "other.pt"
    )
    with pytest.raises(
        CheckpointMismatch,
        match=r"other\.pt has the keys of --model gaplab-test-tiny but 2 tensors of "
        r"other shapes \(text_projection \(32, 8\) in the file, \(32, 16\)",
    ):
        load_model(tiny[0], str(tmp_path / "other.pt"), device="cpu")
    # a checkpoint of another width trips open_clip's position-embedding resize first (an assertion)
    wide = dict(_CFG, text_cfg=dict(_CFG["text_cfg"], width=48, heads=3))
    _register(tmp_path / "cfg", "gaplab-test-wide", wide)
    torch.save(
        open_clip.create_model("gaplab-test-wide").state_dict(), tmp_path / "wide.pt"
    )
    with pytest.raises(
        CheckpointMismatch,
        match=r"wide\.pt has the keys of --model gaplab-test-tiny but \d+ tensors",
    ):
        load_model(tiny[0], str(tmp_path / "wide.pt"), device="cpu")


def test_bad_model_names_and_paths(tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-B-99'"):
        load_model("ViT-B-99", None)
    with pytest.raises(ValueError, match="not an open_clip tag of RN50 .*openai"):
        load_model("RN50", "no_such_tag")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_model(tiny[0], str(tmp_path / "missing.pt"))


def test_a_tag_without_network_fails_fast_naming_the_offline_ways(monkeypatch):
    from gaplab.zoo import models

    monkeypatch.setattr(models, "_cached_weights", lambda cfg: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(
        ModelUnavailable,
        match=r"(?s)RN50 / openai are not on this machine.*--pretrained.*--embeddings",
    ):
        load_model("RN50", "openai", device="cpu")
    assert time.perf_counter() - t0 < 10


def test_the_network_probe_gives_up_quickly():
    from gaplab.zoo.models import _online

    t0 = time.perf_counter()
    assert _online("localhost.invalid") is False  # .invalid never resolves (RFC 2606)
    assert time.perf_counter() - t0 < 10


# --------------------------------------------------------------------------------------------------------
# the embedding cache


class _Counting:
    """An ImageList view that counts loads and can stop the run after ``stop_after`` images."""

    def __init__(self, images, stop_after=None):
        self.images, self.loads, self.stop_after = images, 0, stop_after

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if self.stop_after is not None and self.loads >= self.stop_after:
            raise KeyboardInterrupt
        self.loads += 1
        return self.images[i]

    def ids(self):
        return self.images.ids()

    def fingerprints(self):
        return self.images.fingerprints()


def _folder_of(tmp_path, n):
    for i in range(n):
        _image(tmp_path / "cls" / f"c{i % 3}" / f"{i:02d}.png", shade=9 * i)
    return load_data("folder", tmp_path / "cls")


def test_cache_hit_corrupt_chunk_and_interrupted_run(
    tiny, tmp_path, monkeypatch, embed_cache
):
    monkeypatch.setattr(E, "CHUNK", 4)
    loaded = load_model(*tiny, device="cpu")
    data = _folder_of(tmp_path, 10)
    first = _Counting(data.images)
    ref = E.encode_images(loaded, first, batch_size=3, workers=1, progress=False)
    assert ref.shape == (10, 16) and first.loads == 10
    again = _Counting(data.images)
    np.testing.assert_array_equal(
        E.encode_images(loaded, again, workers=1, progress=False), ref
    )
    assert again.loads == 0  # a hit loads no image
    (entry,) = list(embed_cache.iterdir())
    assert json.loads((entry / "meta.json").read_text())["rows"] == 10
    (entry / "chunk-000001.pt").write_bytes(b"not a torch file")
    fixed = _Counting(data.images)
    with pytest.warns(UserWarning, match="chunk-000001.pt is unreadable"):
        out = E.encode_images(loaded, fixed, workers=1, progress=False)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert fixed.loads == 4
    # interrupted after 6 of 10 images: chunk 0 is stored, chunk 1 was half done and is not
    for f in entry.glob("chunk-*.pt"):
        f.unlink()
    stopped = _Counting(data.images, stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        E.encode_images(loaded, stopped, batch_size=2, workers=1, progress=False)
    assert sorted(f.name for f in entry.glob("chunk-*")) == ["chunk-000000.pt"]
    resumed = _Counting(data.images)
    np.testing.assert_allclose(
        E.encode_images(loaded, resumed, workers=1, progress=False),
        ref,
        rtol=1e-6,
        atol=1e-6,
    )
    assert resumed.loads == 6  # chunks 1 and 2 only


def test_two_folders_with_the_same_file_names_never_share_embeddings(
    tiny, tmp_path, embed_cache
):
    # FairFace's two padding releases are like this: same names, other pixels
    loaded = load_model(*tiny, device="cpu")
    for root, shade in (("a", 0), ("b", 120)):
        for i in range(4):
            _image(tmp_path / root / f"c{i % 2}" / f"{i}.png", shade=shade + 30 * i)
    a = load_data("folder", tmp_path / "a")
    b = load_data("folder", tmp_path / "b")
    assert a.images.ids() == b.images.ids()
    emb_a = E.encode_images(loaded, a.images, workers=1, progress=False)
    emb_b = E.encode_images(loaded, b.images, workers=1, progress=False)
    fresh_b = E.encode_images(loaded, b.images, workers=1, progress=False, cache=False)
    np.testing.assert_allclose(emb_b, fresh_b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(emb_a, emb_b)
    assert len(list(embed_cache.iterdir())) == 2
    # a file replaced in place (same name, other content) is encoded again
    _image(tmp_path / "b" / "c0" / "0.png", shade=250)
    os.utime(tmp_path / "b" / "c0" / "0.png", ns=(1, 10**18))
    again = E.encode_images(loaded, b.images, workers=1, progress=False)
    redone = E.encode_images(loaded, b.images, workers=1, progress=False, cache=False)
    np.testing.assert_allclose(again, redone, rtol=1e-5, atol=1e-6)
    assert not np.allclose(again[0], emb_b[0])


def test_array_images_are_keyed_by_their_pixels():
    from gaplab.zoo.images import ArrayImages, ImageList

    pixels = np.zeros((3, 4, 4, 3), np.uint8)
    other = pixels.copy()
    other[1] += 1
    same_ids = ["0", "1", "2"]
    f1 = ImageList(same_ids, range(3), ArrayImages(pixels)).fingerprints()
    f2 = ImageList(same_ids, range(3), ArrayImages(other)).fingerprints()
    assert f1[0] == f2[0] and f1[1] != f2[1]


def test_cache_key_follows_weights_and_items(tiny, tmp_path):
    loaded = load_model(*tiny, device="cpu")
    base = E.entry_key(loaded, "texts", ["a", "b"])
    assert base == E.entry_key(loaded, "texts", ["a", "b"])
    assert base != E.entry_key(loaded, "texts", ["b", "a"])
    assert base != E.entry_key(loaded, "images", ["a", "b"])
    loaded.weights = "sha256:other"
    assert base != E.entry_key(loaded, "texts", ["a", "b"])


def test_class_embeddings_equal_open_clips_zero_shot_classifier(tiny):
    import open_clip

    loaded = load_model(*tiny, device="cpu")
    names, temps = ["cat", "dog", "red car"], ["a photo of a {}.", "a drawing of a {}."]
    ours = E.class_embeddings(loaded, names, temps, progress=False)
    theirs = open_clip.build_zero_shot_classifier(
        loaded.model, loaded.tokenizer, names, temps, device="cpu"
    )
    np.testing.assert_allclose(ours, theirs.T.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no '\\{\\}'"):
        E.class_embeddings(loaded, names, ["a photo"], progress=False)


# --------------------------------------------------------------------------------------------------------
# the report


def test_report_numbers_are_gaplab_metrics_of_the_embeddings(tiny, coco, mitstates):
    from gaplab.zoo.report import measure_data

    loaded = load_model(*tiny, device="cpu")
    cap = load_data("coco", coco)
    out, emb = measure_data(loaded, cap, progress=False, with_embeddings=True)
    img, txt = emb["image"], emb["text"]
    assert out["l2m"] == M.l2m(img, txt) and out["rmg"] == M.rmg(img, txt, cap.pairs)
    assert out["l2i"] == M.l2i(img, txt, cap.pairs)
    assert out["i2t_r1"] == M.recall_at_k(img, txt, 1, "i2t", cap.pairs)
    assert out["logits_entropy"] == pytest.approx(
        M.logits_entropy(img, txt, loaded.logit_scale), rel=1e-12
    )
    att = load_data("mitstates", mitstates)
    out, emb = measure_data(loaded, att, progress=False, with_embeddings=True)
    assert out["moad_image"] == M.moad(emb["image"], att.obj_labels, att.attr_labels)
    assert out["moad_text"] == M.moad(emb["text"], att.obj_labels, att.attr_labels)
    assert out["attribute_acc"] == M.zero_shot_accuracy(
        emb["image"], emb["attributes"], att.attr_labels
    )
    direct = E.encode_texts(loaded, att.matching_prompts(), cache=False, progress=False)
    np.testing.assert_allclose(emb["text"], direct, rtol=1e-5, atol=1e-6)


_COMMON = {
    "n",
    "l2m",
    "l2i",
    "rmg",
    "linear_separability",
    "top_dims",
    "gap_share_top2",
    "logits_entropy",
}


@pytest.mark.parametrize(
    "kind,fixture,extra",
    [
        ("coco", "coco", {"i2t_r1", "t2i_r1"}),
        ("csv", "captions_tsv", {"i2t_r1", "t2i_r1"}),
        ("folder", "class_folders", {"zero_shot_acc"}),
        ("cifar10", "cifar_root", {"zero_shot_acc"}),
        (
            "mitstates",
            "mitstates",
            {"moad_image", "moad_text", "object_acc", "attribute_acc"},
        ),
        (
            "utzappos",
            "utzappos",
            {"moad_image", "moad_text", "object_acc", "attribute_acc"},
        ),
    ],
)
def test_command_end_to_end_on_each_layout(
    tiny, kind, fixture, extra, request, tmp_path, capsys
):
    from gaplab.__main__ import main

    path = request.getfixturevalue(fixture)
    path = (
        path[0] if isinstance(path, tuple) else path
    )  # cifar_root also gives its pixels
    out = tmp_path / "out"
    code = main(
        [
            "report",
            "--model",
            tiny[0],
            "--pretrained",
            tiny[1],
            "--data",
            f"{kind}:{path}",
            "--templates",
            "simple",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"] == tiny[0] and rep["pretrained"] == tiny[1]
    (measures,) = rep["data"].values()
    assert _COMMON | extra <= set(measures)
    assert "L2M" in printed and "wrote" in printed
    assert f"{measures['l2m']:.3f}" in printed


def test_embeddings_report_equals_the_gap_geometry_chapter(tmp_path, capsys):
    from gaplab.__main__ import main
    from gaplab.data.embeddings import load_embeddings
    from gaplab.experiments.real_embeddings import gap_summary
    from gaplab.paths import data_dir

    path = data_dir() / "liang2022-embeddings" / "features_clip.npy"
    assert main(["report", "--embeddings", str(path), "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "report.json").read_text())["data"]["embeddings"]
    chapter = gap_summary(*load_embeddings("clip"))
    assert (
        rep["l2m"] == chapter["L2M"]
        and rep["rmg"] == chapter["RMG"]
        and rep["l2i"] == chapter["L2I"]
    )
    assert rep["linear_separability"] == chapter["linear separability"]
    assert rep["i2t_r1"] == chapter["I->T R@1"] and rep["t2i_r1"] == chapter["T->I R@1"]
    assert "0.8" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--data", "imagenet:/x"], "unknown data kind 'imagenet'"),
        (["--data", "folder:/no/such/folder"], "/no/such/folder"),
        ([], "at least one --data"),
    ],
)
def test_command_bad_input(tiny, argv, message, capsys):
    from gaplab.__main__ import main

    assert main(["report", "--model", tiny[0], "--pretrained", tiny[1], *argv]) == 2
    assert message in capsys.readouterr().err


def test_command_empty_data_and_bad_embeddings(tiny, tmp_path, capsys):
    from gaplab.__main__ import main

    (tmp_path / "empty" / "a").mkdir(parents=True)
    assert (
        main(
            [
                "report",
                "--model",
                tiny[0],
                "--pretrained",
                tiny[1],
                "--data",
                f"folder:{tmp_path / 'empty'}",
            ]
        )
        == 2
    )
    assert "no images" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((3, 4, 8), dtype=np.float32))
    assert main(["report", "--embeddings", str(tmp_path / "bad.npy")]) == 2
    assert "expected (2, N, d)" in capsys.readouterr().err
    np.save(tmp_path / "one.npy", np.zeros((4, 8), dtype=np.float32))
    assert main(["report", "--embeddings", str(tmp_path / "one.npy")]) == 2
    assert "image rows, then the matched text rows" in capsys.readouterr().err
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "pairs.npz",
        image=rng.normal(size=(6, 8)),
        text=rng.normal(size=(5, 8)),
    )
    assert main(["report", "--embeddings", str(tmp_path / "pairs.npz")]) == 2
    assert "6 image rows but 5 text rows" in capsys.readouterr().err
    np.savez(
        tmp_path / "pairs.npz",
        image=rng.normal(size=(6, 8)),
        text=rng.normal(size=(6, 8)),
    )
    assert main(["report", "--embeddings", str(tmp_path / "pairs.npz")]) == 0


def test_help_lists_the_data_kinds(capsys):
    from gaplab.__main__ import main
    from gaplab.zoo.datasets import KINDS

    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert all(k in text for k in KINDS)


# --------------------------------------------------------------------------------------------------------
# the survey


def test_survey_resumes_and_records_failures(
    tiny, class_folders, tmp_path, monkeypatch
):
    from gaplab.zoo import models
    from gaplab.zoo import survey as S

    monkeypatch.setattr(models, "_cached_weights", lambda cfg: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    said = []
    pairs = [tiny, ("RN50", "openai")]
    first = S.survey(
        pairs,
        [f"folder:{class_folders}"],
        tmp_path / "s",
        templates="single",
        progress=False,
        echo=said.append,
    )
    assert "error" in first[1] and "ModelUnavailable" in first[1]["error"]
    assert len(list((tmp_path / "s").glob("*.json"))) == 1
    again = S.survey(
        pairs[:1],
        [f"folder:{class_folders}"],
        tmp_path / "s",
        progress=False,
        echo=said.append,
    )
    assert "already measured" in said[-1] and again[0] == first[0]
    table = S.survey_table(first)
    assert list(table["model"]) == [tiny[0]] and "folder.zero_shot_acc" in table


def test_training_groups_follow_the_authors_sizes():
    from gaplab.zoo.survey import data_group, training_pairs

    assert (
        training_pairs("laion2b_s34b_b79k") == 2.3e9
        and data_group("laion2b_s34b_b79k") == "large"
    )
    assert data_group("yfcc15m") == "medium" and data_group("cc12m") == "medium"
    assert (
        data_group("datacomp_m_s128m_b4k") == "medium"
        and data_group("datacomp_xl_s13b_b90k") == "large"
    )
    assert data_group("commonpool_m_clip_s128m_b4k") == "medium"
    assert data_group("something_new") == "unknown"


def test_default_selection_is_known_to_open_clip():
    import open_clip

    from gaplab.zoo.survey import default_selection, parameter_counts

    chosen = default_selection()
    assert len(chosen) >= 10 and set(chosen) <= set(open_clip.list_pretrained())
    counts = parameter_counts(chosen[:1])
    assert 50e6 < counts[chosen[0]] < 500e6


def test_correlations_over_a_table():
    import pandas as pd

    from gaplab.zoo.survey import correlations

    t = pd.DataFrame(
        {
            "gap": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            "acc": [1, 2, 3, 4, 5, 6],
            "group": ["a", "a", "a", "b", "b", "b"],
        }
    )
    out = correlations(t, [("gap", "acc")], n_resamples=999)
    assert list(out["models"]) == ["all", "a", "b"] and np.allclose(out["tau"], 1.0)
    assert out["p"].iloc[0] == pytest.approx(
        2 / 720
    )  # exact test: 6! pairings, two of them as extreme
    with pytest.raises(KeyError, match="no column 'nope'"):
        correlations(t, [("nope", "acc")])


def test_mad_zoo_lists_each_run_once():
    from gaplab.experiments.mad_zoo import mad_zoo_configs
    from gaplab.runs import run_key

    zoo = mad_zoo_configs("smoke")
    assert len(zoo) == len({run_key(c) for _, c in zoo.values()})
    names = [n for n, _ in zoo.values()]
    assert (
        "k=2 loss CLIP" not in names and "k=2 seed 0" in names
    )  # the CLIP variant is that run
    assert any("logit scale 100" in n for n in names) and any("CUA" in n for n in names)


def test_the_chapters_online_survey_path_on_local_data(
    tiny, coco, cifar_root, mitstates, tmp_path, monkeypatch
):
    # the cells that run on Colab, run here on the tiny model and the tiny layouts (all under one tmp_path)
    from gaplab.zoo import compare, survey

    monkeypatch.setattr(survey, "default_selection", lambda n=None: [tiny])
    monkeypatch.setattr(
        survey, "MIN_COCO_R1", 0.0
    )  # a random tiny model may retrieve nothing
    said = []
    comparison, measured = compare.survey_open_clip(
        1, coco.parent, f"mitstates:{mitstates}", tmp_path / "survey", echo=said.append
    )
    assert comparison.models_set == "open_clip" and len(measured) == 1
    assert "GiB of weights" in said[0] and "seconds per model" in said[-1]
    row = comparison.table.iloc[0]
    assert row[comparison.columns["gap"]] == measured[0]["data"]["coco"]["rmg"]
    assert (
        row[comparison.columns["attribute"]]
        == measured[0]["data"]["mitstates"]["attribute_acc"]
    )
    closing = compare.closing_frame(measured, "mitstates")
    assert "ideal words - u0" in closing.index and set(closing.columns) == {
        "attribute",
        "object",
    }


def test_the_online_survey_goes_on_without_attribute_data(
    tiny, coco, cifar_root, tmp_path, monkeypatch
):
    from gaplab.zoo import compare, survey

    monkeypatch.setattr(survey, "default_selection", lambda n=None: [tiny])
    monkeypatch.setattr(survey, "MIN_COCO_R1", 0.0)
    said = []
    comparison, measured = compare.survey_open_clip(
        1,
        coco.parent,
        f"mitstates:{tmp_path / 'absent'}",
        tmp_path / "survey",
        echo=said.append,
    )
    assert any(
        "no attribute data" in line and "states_and_transformations" in line
        for line in said
    )
    assert "moad" not in comparison.columns and set(measured[0]["data"]) == {
        "coco",
        "cifar10",
    }
