"""The cone effect: random MLPs, freshly initialised MAD models and open_clip models without weights."""

from __future__ import annotations

import math

import open_clip
import pytest
import torch

from gaplab import metrics
from gaplab.data.embeddings import load_embeddings
from gaplab.data.mad import generate_mad
from gaplab.experiments import cone
from gaplab.training.models import MAD_PRESETS, create_mad_model, mad_image_input
from gaplab.training.tokenizer import MADTokenizer

torch.set_num_threads(1)

KEYS = {"image_mean_cos", "text_mean_cos", "l2m"}


def check_summary(result):
    assert set(result) == KEYS
    assert all(type(v) is float and math.isfinite(v) for v in result.values())
    assert -1.0 <= result["image_mean_cos"] <= 1.0
    assert -1.0 <= result["text_mean_cos"] <= 1.0
    assert 0.0 <= result["l2m"] <= 2.0


# --------------------------------------------------------------------------------------------- random MLPs


@pytest.mark.parametrize("activation", cone.ACTIVATIONS)
def test_mlp_cone_shape_range_and_determinism(activation):
    values = cone.mlp_cone(activation, depth=4, width=32, n=20, in_dim=16, seed=3)
    assert len(values) == 5
    assert all(type(v) is float and -1.0 <= v <= 1.0 for v in values)
    assert (
        cone.mlp_cone(activation, depth=4, width=32, n=20, in_dim=16, seed=3) == values
    )
    assert (
        cone.mlp_cone(activation, depth=4, width=32, n=20, in_dim=16, seed=4) != values
    )


def test_mlp_cone_without_bias_keeps_odd_maps_out_of_a_cone():
    # with no bias nothing is shared by all inputs: odd maps (linear, tanh) keep the
    # mean cosine near 0, while non-negative outputs (ReLU, sigmoid) still form a cone
    final = {
        a: cone.mlp_cone(a, depth=6, width=128, bias=False)[-1]
        for a in cone.ACTIVATIONS
    }
    assert abs(final["linear"]) < 0.05 and abs(final["tanh"]) < 0.05
    assert final["relu"] > 0.3 and final["sigmoid"] > 0.9
    # the biases are what close the linear network's cone
    assert cone.mlp_cone("linear", depth=6, width=128)[-1] > 0.5


def test_mlp_cone_index_zero_is_the_inputs():
    # the inputs do not depend on the network: every activation and depth starts from the same value
    firsts = {
        cone.mlp_cone(a, depth=d, width=64, n=30, in_dim=12, seed=5)[0]
        for a in cone.ACTIVATIONS
        for d in (1, 3)
    }
    assert len(firsts) == 1
    # independent Gaussian directions: the mean cosine of 30 of them in 12 dimensions is near 0
    assert abs(firsts.pop()) < 0.1


def test_relu_cone_narrows_with_depth():
    values = cone.mlp_cone("relu")
    assert len(values) == 11
    assert values[10] > values[0]
    assert values[10] > 0.5


def test_mlp_cone_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    cone.mlp_cone("tanh", depth=2, width=8, n=4, in_dim=4)
    assert torch.equal(torch.rand(3), expected)


def test_mlp_cone_bad_arguments():
    with pytest.raises(
        ValueError,
        match="unknown activation 'gelu'; choose one of relu, tanh, sigmoid, linear",
    ):
        cone.mlp_cone("gelu")
    for name, kwargs in [
        ("depth", {"depth": 0}),
        ("width", {"width": 0}),
        ("n", {"n": 1}),
        ("in_dim", {"in_dim": 2.5}),
        ("depth", {"depth": True}),
    ]:
        with pytest.raises(ValueError, match=f"{name} must be an integer"):
            cone.mlp_cone("relu", **kwargs)


def test_mlp_cone_names_the_layer_that_zeroes_a_row():
    # one ReLU unit is zero for about half of the samples, and a zero row has no direction
    with pytest.raises(ValueError, match="layer 1: .*all-zero rows"):
        cone.mlp_cone("relu", depth=3, width=1, n=30, in_dim=4)


# --------------------------------------------------------------------------------------------- MAD models


def test_mad_init_cone_keys_ranges_determinism():
    result = cone.mad_init_cone("mad-cnn", n=64, seed=0)
    check_summary(result)
    assert cone.mad_init_cone("mad-cnn", n=64, seed=0) == result
    assert cone.mad_init_cone("mad-cnn", n=64, seed=1) != result


def test_mad_init_cone_calibrates_batchnorm():
    # the same model measured with PyTorch's default BatchNorm statistics squeezes the images closer together
    model = create_mad_model("mad-cnn", seed=0).eval()
    images = generate_mad(64, seed=0, glyphs="procedural").images
    with torch.no_grad():
        raw = metrics.mean_cosine(model.encode_image(mad_image_input(images)))
    assert cone.mad_init_cone("mad-cnn", n=64, seed=0)["image_mean_cos"] < raw


def test_mad_init_cone_bad_arguments():
    with pytest.raises(ValueError, match="unknown MAD model preset"):
        cone.mad_init_cone("mad-resnet", n=8)
    with pytest.raises(ValueError, match="k must be an integer"):
        cone.mad_init_cone(n=8, k=6)
    with pytest.raises(ValueError, match="n must be an integer"):
        cone.mad_init_cone(n=1)


# --------------------------------------------------------------------------------------------- open_clip models


def test_random_clip_tokens_follow_clips_layout():
    tok = open_clip.get_tokenizer("ViT-B-32")
    tokens = cone.random_clip_tokens(tok, 50, 77, torch.Generator().manual_seed(0))
    assert tokens.shape == (50, 77) and tokens.dtype == torch.long
    assert (tokens[:, 0] == tok.sot_token_id).all()
    assert ((tokens == tok.eot_token_id).sum(dim=1) == 1).all()
    # the text tower pools at the largest id: that must be the end token
    assert (
        tokens.argmax(dim=1) == (tokens == tok.eot_token_id).int().argmax(dim=1)
    ).all()
    for row in tokens:
        end = int((row == tok.eot_token_id).nonzero())
        words = row[1:end]
        assert 5 <= len(words) <= 20
        assert ((words >= 1) & (words < tok.sot_token_id)).all()
        assert (row[end + 1 :] == 0).all()
    # a short context caps the caption length
    short = cone.random_clip_tokens(tok, 10, 6, torch.Generator().manual_seed(0))
    assert (short[:, -1] == tok.eot_token_id).all()


def test_random_clip_tokens_need_clips_tokenizer():
    with pytest.raises(ValueError, match="no sot_token_id"):
        cone.random_clip_tokens(MADTokenizer(), 4, 8, torch.Generator())


def test_open_clip_init_cone_vit_b_32():
    result = cone.open_clip_init_cone("ViT-B-32", n=8, seed=0)
    check_summary(result)
    assert cone.open_clip_init_cone("ViT-B-32", n=8, seed=0) == result


def test_open_clip_init_cone_bad_arguments():
    with pytest.raises(ValueError, match="MAD preset"):
        cone.open_clip_init_cone("mad-cnn", n=8)
    with pytest.raises(ValueError, match="unknown open_clip model"):
        cone.open_clip_init_cone("ViT-Z-99", n=8)
    with pytest.raises(ValueError, match="n must be an integer"):
        cone.open_clip_init_cone(n=1)


# ------------------------------------------------------------------------------------------- chapter tables


def test_mlp_cone_table_is_mlp_cone_per_activation():
    table = cone.mlp_cone_table(depth=3, seed=2, width=16, n=10, in_dim=8)
    assert list(table.columns) == ["layer", "activation", "mean cosine"]
    assert list(table["activation"].unique()) == list(cone.ACTIVATIONS)
    for act in cone.ACTIVATIONS:
        rows = table[table.activation == act]
        assert list(rows["layer"]) == [0, 1, 2, 3]
        direct = cone.mlp_cone(act, depth=3, seed=2, width=16, n=10, in_dim=8)
        assert list(rows["mean cosine"]) == direct


def test_init_cone_table_rows(monkeypatch):
    # the two encoders are stubbed (each has its own tests above); the table's job is the rows
    calls = []

    def fake_mad(preset, seed=0):
        calls.append(("mad", preset, seed))
        return {"image_mean_cos": 0.5, "text_mean_cos": 0.6, "l2m": 0.7}

    def fake_open_clip(name, n, seed=0):
        calls.append(("open_clip", name, n, seed))
        return {"image_mean_cos": 0.1, "text_mean_cos": 0.2, "l2m": 0.3}

    monkeypatch.setattr(cone, "mad_init_cone", fake_mad)
    monkeypatch.setattr(cone, "open_clip_init_cone", fake_open_clip)
    table = cone.init_cone_table("smoke", seed=0)
    columns = ["model", "source", "image_mean_cos", "text_mean_cos", "l2m"]
    assert list(table.columns) == columns
    models = [*MAD_PRESETS, "ViT-B-32 (open_clip)", *cone.RANDOM_INIT_EMBEDDINGS]
    assert list(table["model"]) == models
    assert ("open_clip", "ViT-B-32", 8, 0) in calls  # 8 inputs at smoke
    cone.init_cone_table("cpu", seed=0)
    assert ("open_clip", "ViT-B-32", 32, 0) in calls
    # the shipped rows: the chapter's old inline computation
    for name in cone.RANDOM_INIT_EMBEDDINGS:
        img, txt = load_embeddings(f"{name}_random")
        row = table[table.model == name].iloc[0]
        assert row["source"] == "shipped random-init embeddings"
        assert row["image_mean_cos"] == metrics.mean_cosine(img)
        assert row["text_mean_cos"] == metrics.mean_cosine(txt)
        assert row["l2m"] == metrics.l2m(img, txt)
