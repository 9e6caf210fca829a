"""The caption-truncation recipe for open_clip's trainer, tested on strings and on open_clip_train's data plumbing."""

from __future__ import annotations

import shlex

import numpy as np
import open_clip
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from gaplab.data import captions


def first(cap, keep):
    return captions.truncate_caption(cap, keep, mode="first")


def test_truncate_caption_keeps_leading_words():
    cap = "a small red car parked next to a tall green tree"  # 11 words
    assert first(cap, "full") == cap
    assert first(cap, "half") == "a small red car parked next"  # ceil(5.5) = 6
    assert first(cap, "quarter") == "a small red"  # ceil(2.75) = 3
    assert first("  two   words ", "quarter") == "two"
    assert first("", "half") == ""
    assert first("one", 0.01) == "one"


def test_span_keeps_one_of_the_authors_chunks():
    cap = "a small red car parked next to a tall green tree"  # 11 words: quarters at int(11 j / 4) = 0, 2, 5, 8
    words = cap.split(" ")
    quarters = [words[0:2], words[2:5], words[5:8], words[8:11]]
    seen = set()
    for epoch in range(40):
        out = captions.truncate_caption(cap, "quarter", seed=3, epoch=epoch)
        assert out.split(" ") in quarters
        assert out == captions.truncate_caption(
            cap, "quarter", seed=3, epoch=epoch
        )  # the same within an epoch
        seen.add(out)
    assert len(seen) == 4  # over the epochs every quarter is used
    halves = {" ".join(words[:5]), " ".join(words[5:])}
    assert {
        captions.truncate_caption(cap, "half", epoch=e) for e in range(30)
    } == halves
    assert captions.truncate_caption(cap, "full") == cap
    # as in the authors' transform, a caption with fewer words than chunks can lose everything
    assert "" in {
        captions.truncate_caption("two words", "quarter", epoch=e) for e in range(30)
    }


def test_span_chunk_is_uniform_and_seeded():
    counts = np.bincount(
        [captions.span_index(f"caption {i}", 4, seed=0) for i in range(4000)],
        minlength=4,
    )
    assert counts.min() > 900  # 1000 expected in each
    assert [captions.span_index("x", 4, seed=s) for s in range(20)] != [
        captions.span_index("x", 4, seed=0)
    ] * 20


def test_span_needs_a_whole_number_of_chunks():
    with pytest.raises(ValueError, match="mode='first' takes any fraction"):
        captions.truncate_caption("a b c", 0.3)
    assert captions.truncate_caption("a b c d e f", 1 / 3, epoch=0) in {
        "a b",
        "c d",
        "e f",
    }
    with pytest.raises(ValueError, match="caption mode"):
        captions.truncate_caption("a b", "half", mode="middle")


@given(
    st.lists(
        st.text(alphabet="abcxyz", min_size=1, max_size=5), min_size=1, max_size=30
    ),
    st.floats(0.01, 1.0),
)
def test_truncate_caption_properties(words, frac):
    cap = " ".join(words)
    out = first(cap, frac)
    kept = out.split()
    assert 1 <= len(kept) <= len(words)
    assert kept == words[: len(kept)]  # a prefix
    assert len(kept) >= frac * len(words) - 1e-9  # at least the fraction asked for
    assert len(kept) - 1 < max(1, frac * len(words))  # and not a word more than needed
    assert first(out, 1.0) == out


@given(
    st.lists(
        st.text(alphabet="abcxyz", min_size=1, max_size=5), min_size=1, max_size=30
    ),
    st.sampled_from([1, 2, 3, 4, 8]),
    st.integers(0, 10),
)
def test_span_properties(words, m, epoch):
    cap = " ".join(words)
    out = captions.truncate_caption(cap, 1 / m, epoch=epoch)
    kept = out.split(" ") if out else []
    n = len(words)
    assert len(kept) in {int((j + 1) * n / m) - int(j * n / m) for j in range(m)}
    # a contiguous run of the caption's words
    assert any(words[i : i + len(kept)] == kept for i in range(n - len(kept) + 1))


@pytest.mark.parametrize("keep", ["tenth", 0, 1.5, -0.2, True, None])
def test_bad_keep_is_named(keep):
    with pytest.raises(ValueError, match="caption"):
        captions.truncate_caption("a caption", keep)


def test_non_string_caption():
    with pytest.raises(TypeError, match="caption must be a str"):
        captions.truncate_caption(["a", "list"], "half")


def test_truncating_tokenizer_matches_tokenising_the_short_caption():
    tok = open_clip.get_tokenizer(
        "ViT-B-32"
    )  # the vocabulary ships with open_clip: works offline
    wrapped = captions.TruncatingTokenizer(tok, "quarter", mode="first")
    caps = ["a dog running on the beach at sunset with a red ball", "two cats"]
    expected = tok([first(c, "quarter") for c in caps])
    assert (wrapped(caps) == expected).all()
    assert (wrapped(caps[0]) == tok("a dog running")).all()
    epoch = [0]
    spans = captions.TruncatingTokenizer(tok, "quarter", seed=1, epoch=lambda: epoch[0])
    for e in (0, 5):
        epoch[0] = e
        assert (
            spans(caps)
            == tok(
                [captions.truncate_caption(c, "quarter", seed=1, epoch=e) for c in caps]
            )
        ).all()
    assert (
        wrapped.context_length == tok.context_length
    )  # everything else is the wrapped tokenizer's


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

    caps = [
        "a brown horse grazing in a wide open field",
        "an old man reading a newspaper on a bench",
    ]
    csv = _csv_split(tmp_path, caps)
    args = parse_args(
        [
            "--train-data",
            str(csv),
            "--val-data",
            str(csv),
            "--dataset-type",
            "csv",
            "--batch-size",
            "2",
            "--workers",
            "0",
            "--model",
            "ViT-B-32",
        ]
    )
    args.distributed, args.world_size = (
        False,
        1,
    )  # what open_clip_train.main sets up before building the data
    tok = open_clip.get_tokenizer("ViT-B-32")
    _, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
        "ViT-B-32", pretrained=None
    )
    original = oc_main.get_data
    for mode in ("span", "first"):
        with captions.patched_open_clip_train("half", mode=mode, seed=2):
            assert oc_main.get_data is not original
            data = oc_main.get_data(
                args, (preprocess_train, preprocess_val), tokenizer=tok
            )
        assert oc_main.get_data is original  # restored
        train_texts = [data["train"].dataloader.dataset[i][1] for i in range(2)]
        val_texts = [data["val"].dataloader.dataset[i][1] for i in range(2)]
        for cap, train_t, val_t in zip(caps, train_texts, val_texts):
            short = captions.truncate_caption(cap, "half", mode=mode, seed=2, epoch=0)
            assert (train_t == tok(short)[0]).all()
            assert (val_t == tok(cap)[0]).all()
        data["train"].set_epoch(
            7
        )  # what the trainer does before each epoch: the chunks follow it
        texts = [data["train"].dataloader.dataset[i][1] for i in range(2)]
        for cap, t in zip(caps, texts):
            assert (
                t
                == tok(
                    captions.truncate_caption(cap, "half", mode=mode, seed=2, epoch=7)
                )[0]
            ).all()
    assert args.val_data == str(csv) and args.train_data == str(
        csv
    )  # the caller's arguments are untouched


def test_torchrun_command_runs_this_module():
    cmd = captions.torchrun_command("quarter", gpus=4, val_data="/data/cc3m/val.csv")
    parts = shlex.split(cmd)
    assert parts[:4] == ["torchrun", "--nproc_per_node=4", "-m", "gaplab.data.captions"]
    assert parts[parts.index("--caption-keep") + 1] == "quarter"
    assert parts[parts.index("--val-data") + 1] == "/data/cc3m/val.csv"
    # every argument after ours must be one open_clip_train accepts
    from open_clip_train.params import parse_args

    assert parts[parts.index("--caption-mode") + 1] == "span"
    rest = parts[4:]
    for ours in ("--caption-keep", "--caption-mode"):
        i = rest.index(ours)
        del rest[i : i + 2]
    parsed = parse_args(rest)
    assert parsed.model == "RN50" and parsed.batch_size == 128


def test_main_rejects_bad_keep_before_training():
    with pytest.raises(SystemExit, match="caption-keep"):
        captions.main(["--caption-keep", "most"])
    with pytest.raises(SystemExit, match="needs a value"):
        captions.main(["--caption-keep"])
    with pytest.raises(SystemExit, match="caption mode"):
        captions.main(["--caption-keep", "half", "--caption-mode", "middle"])
    with pytest.raises(SystemExit, match="mode='first'"):
        captions.main(["--caption-keep", "0.3"])
    with pytest.raises(SystemExit, match="caption-seed"):
        captions.main(["--caption-seed", "x"])
