"""Closing the gap on MAD against the authors' own contrast (Schrodi et al. 2025, ``analysis/gap_ideal_words.py``).

The authors' README maps that script to their Table 5, whose numbers the book could not read. The script
compares, for the attributes and for the objects of MIT-States and UT-Zappos,

- **real words**: one plain prompt per class ("an image of a {attr} object", "image of a {obj}"), normalised,
  cosine argmax;
- **ideal words** (after Trager et al. 2023): per attribute the mean over all objects of the normalised
  embeddings of "an image of a {attr} {obj}.", per object the mean over all attributes, left unnormalised,
  dot-product argmax; ``u0`` is the mean over all compositions, one vector shared by attributes and objects;
- **ideal words - u0**, **ideal words + gap** and **ideal words - u0 + gap**, with the mean gap vector taken
  as the mean training image minus the mean plain-prompt embedding;
- for each, the mean cosine between the ideal images (the same means over normalised *training* images, and
  ``u0_img`` their overall mean) and the ideal words.

The MAD analogue built here, for one trained run and each factor (the run's object factor, the digit for the
imbalance grid, and the five attributes):

``plain prompt``
    the class word alone as a one-word caption ("red", "3"): MAD captions have no template words, so the bare
    word is what "an image of a red object" is on MIT-States, a prompt outside the training captions;
``ideal words``
    from the compositions "<attribute word>-<object word>" (attribute first, as in "{attr} {obj}"), every
    attribute word of the five attribute factors with every object value (16 x 10 = 160 for the digit):
    an attribute value's ideal word is the mean over the objects, an object's the mean over all attribute
    words; dot-product argmax;
``ideal words - u0``, ``ideal words + gap``, ``ideal words - u0 + gap``
    the script's three ways of closing the gap. Each adds one vector to every class vector, so under the dot
    rule they predict as ``ideal words`` does (up to exact ties); they differ in the cosines;
``prompt ensemble``
    the book's usual zero-shot rule: cosine with the normalised mean of 64 captions drawn as in training,
    each containing the class word (:func:`gaplab.training.train.class_prompts`);
``prompt ensemble, gap subtracted``
    the same with the held-out pairs' mean gap vector subtracted from every image before the cosine.

Accuracy is measured on the run's held-out images (the script uses the data sets' test split); the ideal
images and the gap vector come from the first ``n_images`` images of the run's own training set, generated
as the trainer generates it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gaplab import metrics as M
from gaplab.data.mad import CAPTION_WORDS, FACTORS
from gaplab.metrics.closing import dot_accuracy, ideal_images, ideal_words
from gaplab.metrics.geometry import subtract_gap
from gaplab.training.tokenizer import MADTokenizer
from gaplab.training.train import class_prompt_embeddings, encode_images, mad_data

__all__ = [
    "VARIANTS",
    "DOT_VARIANTS",
    "COSINES",
    "plain_prompts",
    "compositions",
    "ideal_words_by_factor",
    "training_images",
    "ideal_images_by_factor",
    "prompt_embeddings",
    "closing_by_factor",
    "closing_over_runs",
    "closing_summary",
    "gain_test",
]

#: the accuracy columns of :func:`closing_by_factor`
VARIANTS = (
    "plain prompt",
    "ideal words",
    "ideal words - u0",
    "ideal words + gap",
    "ideal words - u0 + gap",
    "prompt ensemble",
    "prompt ensemble, gap subtracted",
)
#: the variants that classify by dot product with ideal words (equal accuracy up to exact ties)
DOT_VARIANTS = VARIANTS[1:5]
#: the cosine columns: plain prompt with each held-out image of its class (the script's "real words" line);
#: ideal image with ideal word for the rest
COSINES = ("cos plain prompt",) + tuple(f"cos {v}" for v in DOT_VARIANTS)


def _check_factor(factor: str) -> str:
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; MAD has {', '.join(FACTORS)}")
    return factor


def _attribute_factors(object_factor: str) -> list[str]:
    return [f for f in FACTORS if f != _check_factor(object_factor)]


@torch.no_grad()
def _embed(model, captions: list[str]) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    tokens = MADTokenizer()(captions).to(device)
    emb = torch.nn.functional.normalize(model.encode_text(tokens).float(), dim=-1)
    return emb.cpu().numpy().astype(np.float64)


def plain_prompts(model, factor: str) -> np.ndarray:
    """(classes, d): the normalised embedding of each class word of ``factor`` read as a one-word caption."""
    _check_factor(factor)
    return _embed(model, [CAPTION_WORDS[factor, v] for v in FACTORS[factor]])


def compositions(model, *, object_factor: str = "digit") -> tuple[np.ndarray, list]:
    """(A, O, d) normalised embeddings of every caption "<attribute word>-<object word>", and the
    (factor, value index) of each of the A rows: the attribute factors in :data:`FACTORS` order."""
    rows = [
        (f, i)
        for f in _attribute_factors(object_factor)
        for i in range(len(FACTORS[f]))
    ]
    objects = [CAPTION_WORDS[object_factor, v] for v in FACTORS[object_factor]]
    captions = [
        f"{CAPTION_WORDS[f, FACTORS[f][i]]}-{o}" for f, i in rows for o in objects
    ]
    emb = _embed(model, captions)
    return emb.reshape(len(rows), len(objects), -1), rows


def ideal_words_by_factor(
    model, *, object_factor: str = "digit"
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({factor: (classes, d) ideal words}, u0): every factor's ideal words from :func:`compositions`, and the
    one u0 (mean over all compositions) that all factors share, as in the authors' script."""
    comp, rows = compositions(model, object_factor=object_factor)
    attr, obj, u0 = ideal_words(comp)
    words = {object_factor: obj}
    for f in _attribute_factors(object_factor):
        words[f] = attr[[j for j, (g, _) in enumerate(rows) if g == f]]
    return words, u0


@torch.no_grad()
def training_images(result, n: int = 2000) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The normalised image embeddings of the first ``n`` images of the run's training set (regenerated as the
    trainer generates it, on the model's device) and their factor codes."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer of at least 2; got {n!r}")
    cfg, model = result.config, result.model
    device = next(model.parameters()).device
    data = mad_data(cfg.n_train, cfg.data_seed, cfg.glyphs, device)
    take = min(int(n), len(data))
    labels = {f: v[:take].cpu().numpy() for f, v in data.factors.items()}
    return encode_images(model, data.images[:take]).astype(np.float64), labels


def ideal_images_by_factor(
    img, labels: dict, *, object_factor: str = "digit"
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({factor: (classes, d) mean normalised image per class}, u0_img: the mean normalised image).

    ``labels`` maps every MAD factor to one class code per image; a class no image has is an error."""
    missing = [f for f in FACTORS if f not in labels]
    if missing:
        raise ValueError(f"labels lack the factors {missing}")
    out = {}
    for f in _attribute_factors(object_factor):
        attr, obj, u0_img = ideal_images(img, labels[f], labels[object_factor])
        out[f] = attr
        out[object_factor] = obj
    for f, means in out.items():
        if len(means) != len(FACTORS[f]):
            raise ValueError(
                f"no image has {f} value {FACTORS[f][-1]!r}: its ideal image is undefined"
            )
    return out, u0_img


def prompt_embeddings(
    model,
    factor: str,
    *,
    k: int,
    object_factor: str = "digit",
    n_prompts: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """(classes, n_prompts, d) float64: the normalised embeddings of the captions behind each class's prompt
    ensemble (:func:`gaplab.training.train.class_prompt_embeddings`), whose normalised means are
    :func:`gaplab.training.train.class_prompts`."""
    _check_factor(factor)
    device = next(model.parameters()).device
    emb = class_prompt_embeddings(
        model,
        factor,
        MADTokenizer(),
        device,
        k=k,
        object_factor=object_factor,
        n_prompts=n_prompts,
        seed=seed,
    )
    return emb.cpu().numpy().astype(np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _mean_cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.sum(_unit(a) * _unit(b), axis=-1)))


def closing_by_factor(
    result,
    *,
    n_images: int = 2000,
    n_prompts: int = 64,
    seed: int = 0,
    factors=None,
) -> pd.DataFrame:
    """One row per factor of a finished run: accuracy on the held-out images under each of :data:`VARIANTS`,
    chance, and the cosines of :data:`COSINES`. ``n_images``: how many training images make the ideal images
    and the gap vector; ``n_prompts`` and ``seed``: the prompt ensemble's."""
    cfg = result.config
    obj = cfg.object_factor
    chosen = list(FACTORS) if factors is None else list(factors)
    if not chosen:
        raise ValueError("factors is empty; give at least one MAD factor")
    for f in chosen:
        _check_factor(f)
    img = np.asarray(result.eval_image, np.float64)
    txt = np.asarray(result.eval_text, np.float64)
    moved = subtract_gap(img, txt)

    words, u0 = ideal_words_by_factor(result.model, object_factor=obj)
    plain = {f: plain_prompts(result.model, f) for f in FACTORS}
    train_img, train_labels = training_images(result, n_images)
    images, u0_img = ideal_images_by_factor(train_img, train_labels, object_factor=obj)
    # as in the script: mean training image minus the mean of all plain prompts, attributes' and objects'
    gap = train_img.mean(axis=0) - np.concatenate(list(plain.values())).mean(axis=0)

    rows = []
    for f in chosen:
        labels = np.asarray(result.eval_factors[f])
        w, ii = words[f], images[f]
        ensemble = _unit(
            prompt_embeddings(
                result.model,
                f,
                k=cfg.k,
                object_factor=obj,
                n_prompts=n_prompts,
                seed=seed,
            ).mean(axis=1)
        )
        shifted = {
            "ideal words": (w, ii),
            "ideal words - u0": (w - u0, ii - u0_img),
            "ideal words + gap": (w + gap, ii),
            "ideal words - u0 + gap": (w - u0 + gap, ii - u0_img),
        }
        row = {
            "k": cfg.k,
            "seed": cfg.seed,
            "factor": f,
            "role": "object" if f == obj else "attribute",
            "plain prompt": M.zero_shot_accuracy(img, plain[f], labels),
        }
        for name, (vectors, _) in shifted.items():
            row[name] = dot_accuracy(img, vectors, labels)
        row["prompt ensemble"] = M.zero_shot_accuracy(img, ensemble, labels)
        row["prompt ensemble, gap subtracted"] = M.zero_shot_accuracy(
            moved, ensemble, labels
        )
        row["chance"] = 1.0 / len(FACTORS[f])
        row["cos plain prompt"] = _mean_cos(img, plain[f][labels])
        for name, (vectors, ideal) in shifted.items():
            row[f"cos {name}"] = _mean_cos(ideal, vectors)
        rows.append(row)
    return pd.DataFrame(rows)


def closing_over_runs(runs: dict, **kwargs) -> pd.DataFrame:
    """:func:`closing_by_factor` for every run of a ``{(k, seed): TrainResult}`` grid, stacked."""
    if not runs:
        raise ValueError("no runs given")
    return pd.concat(
        [closing_by_factor(r, **kwargs) for _, r in sorted(runs.items())],
        ignore_index=True,
    )


def closing_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per k: the object's and the mean attribute accuracy under each variant and each cosine (means over
    seeds), and the gain of closing the gap (``ideal words - u0`` against ``plain prompt``) per role."""
    rows = []
    for k, part in table.groupby("k"):
        row = {"k": int(k)}
        for role in ("object", "attribute"):
            sub = part[part["role"] == role]
            for v in VARIANTS + COSINES:
                row[f"{role} {v}"] = float(sub.groupby("seed")[v].mean().mean())
            row[f"{role} gain"] = (
                row[f"{role} ideal words - u0"] - row[f"{role} plain prompt"]
            )
        rows.append(row)
    return pd.DataFrame(rows)


def gain_test(table: pd.DataFrame, *, min_k: int = 1) -> dict:
    """The authors' contrast tested over runs: ``ideal words - u0`` against ``plain prompt``.

    One gain per run with ``k >= min_k`` and role (the mean over its attribute factors, and the object's),
    tested with one-sided one-sample t-tests: ``p_attr`` for attribute gain > 0, ``p_obj`` for object
    gain > 0, ``p_more`` for attribute gain > object gain. Also the mean gains and the number of runs."""
    from scipy import stats  # heavy: scipy only for the intervals

    need = {"k", "seed", "role", "plain prompt", "ideal words - u0"}
    if not need <= set(table.columns):
        raise ValueError(
            f"the table lacks the columns {sorted(need - set(table.columns))}"
        )
    part = table[table["k"] >= min_k]
    gains = part.assign(gain=part["ideal words - u0"] - part["plain prompt"])
    per_run = gains.groupby(["k", "seed", "role"])["gain"].mean().unstack("role")
    if len(per_run) < 2:
        raise ValueError(
            f"the test needs at least two runs with k >= {min_k}; got {len(per_run)}"
        )

    def greater(x) -> float:
        return float(stats.ttest_1samp(x, 0.0, alternative="greater").pvalue)

    return {
        "runs": len(per_run),
        "attribute_gain": float(per_run["attribute"].mean()),
        "object_gain": float(per_run["object"].mean()),
        "p_attr": greater(per_run["attribute"]),
        "p_obj": greater(per_run["object"]),
        "p_more": greater(per_run["attribute"] - per_run["object"]),
    }
