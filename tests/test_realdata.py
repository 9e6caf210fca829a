"""The caption-truncation recipe for open_clip's trainer, tested on strings and on open_clip_train's data plumbing."""

from __future__ import annotations

import shlex

import numpy as np
import open_clip
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from gaplab import realdata


def test_truncate_caption_keeps_leading_words():
    cap = "a small red car parked next to a tall green tree"  # 11 words
    assert realdata.truncate_caption(cap, "full") == cap
    assert realdata.truncate_caption(cap, "half") == "a small red car parked next"  # ceil(5.5) = 6
    assert realdata.truncate_caption(cap, "quarter") == "a small red"  # ceil(2.75) = 3
    assert realdata.truncate_caption("  two   words ", "quarter") == "two"
    assert realdata.truncate_caption("", "half") == ""
    assert realdata.truncate_caption("one", 0.01) == "one"


@given(st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=5), min_size=1, max_size=30),
       st.floats(0.01, 1.0))
def test_truncate_caption_properties(words, frac):
    cap = " ".join(words)
    out = realdata.truncate_caption(cap, frac)
    kept = out.split()
    assert 1 <= len(kept) <= len(words)
    assert kept == words[: len(kept)]  # a prefix
    assert len(kept) >= frac * len(words) - 1e-9  # at least the fraction asked for
    assert len(kept) - 1 < max(1, frac * len(words))  # and not a word more than needed
    assert realdata.truncate_caption(out, 1.0) == out


@pytest.mark.parametrize("keep", ["tenth", 0, 1.5, -0.2, True, None])
def test_bad_keep_is_named(keep):
    with pytest.raises(ValueError, match="caption"):
        realdata.truncate_caption("a caption", keep)


def test_non_string_caption():
    with pytest.raises(TypeError, match="caption must be a str"):
        realdata.truncate_caption(["a", "list"], "half")


def test_truncating_tokenizer_matches_tokenising_the_short_caption():
    tok = open_clip.get_tokenizer("ViT-B-32")  # the vocabulary ships with open_clip: works offline
    wrapped = realdata.TruncatingTokenizer(tok, "quarter")
    caps = ["a dog running on the beach at sunset with a red ball", "two cats"]
    expected = tok([realdata.truncate_caption(c, "quarter") for c in caps])
    assert (wrapped(caps) == expected).all()
    assert (wrapped(caps[0]) == tok("a dog running")).all()
    assert wrapped.context_length == tok.context_length  # everything else is the wrapped tokenizer's


def _csv_split(tmp_path, captions):
    rows = ["filepath\ttitle"]
    for i, cap in enumerate(captions):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(path)
        rows.append(f"{path}\t{cap}")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_patched_trainer_truncates_training_captions_only(tmp_path):
    from open_clip_train import main as oc_main
    from open_clip_train.params import parse_args

    caps = ["a brown horse grazing in a wide open field", "an old man reading a newspaper on a bench"]
    csv = _csv_split(tmp_path, caps)
    args = parse_args(["--train-data", str(csv), "--val-data", str(csv), "--dataset-type", "csv",
                       "--batch-size", "2", "--workers", "0", "--model", "ViT-B-32"])
    args.distributed, args.world_size = False, 1  # what open_clip_train.main sets up before building the data
    tok = open_clip.get_tokenizer("ViT-B-32")
    _, preprocess_train, preprocess_val = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    original = oc_main.get_data
    with realdata.patched_open_clip_train("half"):
        assert oc_main.get_data is not original
        data = oc_main.get_data(args, (preprocess_train, preprocess_val), tokenizer=tok)
    assert oc_main.get_data is original  # restored
    train_texts = [data["train"].dataloader.dataset[i][1] for i in range(2)]
    val_texts = [data["val"].dataloader.dataset[i][1] for i in range(2)]
    for cap, train_t, val_t in zip(caps, train_texts, val_texts):
        assert (train_t == tok(realdata.truncate_caption(cap, "half"))[0]).all()
        assert (val_t == tok(cap)[0]).all()
    assert args.val_data == str(csv) and args.train_data == str(csv)  # the caller's arguments are untouched


def test_torchrun_command_runs_this_module():
    cmd = realdata.torchrun_command("quarter", gpus=4, val_data="/data/cc3m/val.csv")
    parts = shlex.split(cmd)
    assert parts[:4] == ["torchrun", "--nproc_per_node=4", "-m", "gaplab.realdata"]
    assert parts[parts.index("--caption-keep") + 1] == "quarter"
    assert parts[parts.index("--val-data") + 1] == "/data/cc3m/val.csv"
    # every argument after ours must be one open_clip_train accepts
    from open_clip_train.params import parse_args

    rest = parts[4:]
    i = rest.index("--caption-keep")
    del rest[i : i + 2]
    parsed = parse_args(rest)
    assert parsed.model == "RN50" and parsed.batch_size == 128


def test_main_rejects_bad_keep_before_training():
    with pytest.raises(SystemExit, match="caption-keep"):
        realdata.main(["--caption-keep", "most"])
    with pytest.raises(SystemExit, match="needs a value"):
        realdata.main(["--caption-keep"])
