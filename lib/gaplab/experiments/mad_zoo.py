"""The book's MAD models as a controlled zoo: the offline analogue of a survey of pretrained models.

Where Schrodi et al. (2025) compare about a hundred open_clip models trained on different data, the book can
compare, without network, the MAD models its chapters train: the imbalance grid (k = 0..5 attributes per
caption, several seeds), the frozen-temperature runs and the loss variants (both at k = 2). Their differences are
known by construction, and k plays the part of the training data set: the paper conditions its correlations on
the data set's size, this zoo on k.

:func:`from_mad` puts the zoo in the :class:`~gaplab.zoo.compare.Comparison` the models_compared chapter also
fills from a survey of open_clip models; :func:`chapter_runs` lists the zoo's runs for the run catalogue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gaplab import metrics as M
from gaplab.data.mad import FACTORS
from gaplab.experiments import contrastive, imbalance, temperature
from gaplab.experiments.readout import chance, run_summary
from gaplab.profiles import resolve_profile
from gaplab.runs import get_or_train, resolve_glyphs, run_key
from gaplab.zoo.compare import Comparison

__all__ = ["mad_zoo_configs", "mad_zoo", "from_mad", "chapter_runs", "MAD_PERFORMANCE"]

#: the analogues of the paper's performance measures: zero-shot digit accuracy (for ImageNet accuracy) and
#: held-out image-to-text R@1 (for COCO R@1)
MAD_PERFORMANCE = ("object_acc", "i2t_r1")


def mad_zoo_configs(profile="cpu", *, resolve=None) -> dict[str, tuple[str, object]]:
    """``{run key: (description, config)}`` of every MAD run in the zoo at ``profile`` (each run once).

    ``resolve`` turns a config's ``glyphs="auto"`` into a source (default: as training does, which may fetch
    MNIST; the run catalogue passes one that never downloads)."""
    prof = resolve_profile(profile)
    named = [
        (f"k={k} seed {s}", imbalance.imbalance_config(prof, k, s))
        for s in range(prof.imbalance_seeds)
        for k in imbalance.IMBALANCE_KS
    ]
    named += [
        (f"k=2 logit scale {t:g}", temperature.temperature_config(prof, t))
        for t in temperature.LOGIT_SCALES
    ]
    named += [
        (f"k=2 loss {v}", contrastive.variant_config(prof, v))
        for v in contrastive.LOSS_VARIANTS
    ]
    resolve = resolve or resolve_glyphs
    out: dict[str, tuple[str, object]] = {}
    for name, cfg in named:
        cfg = resolve(cfg)
        out.setdefault(
            run_key(cfg), (name, cfg)
        )  # the CLIP variant is the k=2 seed 0 run itself
    return out


def _family(cfg) -> str:
    if cfg.temperature != "learnable":
        return "frozen temperature"
    if cfg.uniformity_weight or cfg.alignment_weight or cfg.cross_uniformity_weight:
        return "uniformity + alignment"
    return "CLIP loss"


def mad_zoo(profile="cpu", *, progress: bool = False) -> pd.DataFrame:
    """One row per zoo model: what it is, its gap (RMG, L2M), object bias (MOAD of images and captions) and
    performance (zero-shot digit and attribute accuracy, image-to-text R@1), on its held-out set."""
    rows = []
    for key, (name, cfg) in mad_zoo_configs(profile).items():
        run = get_or_train(cfg, progress=progress)
        s = run_summary(run)
        rows.append(
            {
                "model": name,
                "key": key,
                "k": cfg.k,
                "family": _family(cfg),
                "temperature": cfg.temperature
                if cfg.temperature != "learnable"
                else "learnable",
                "rmg": s["rmg"],
                "l2m": s["l2m"],
                "moad_img": s["moad_img"],
                "moad_txt": s["moad_txt"],
                "object_acc": s["object_acc"],
                "attribute_acc": s["attribute_acc"],
                "i2t_r1": M.recall_at_k(run.eval_image, run.eval_text, 1, "i2t"),
                "logit_scale": s["logit_scale"],
            }
        )
    table = pd.DataFrame(rows)
    order = table["temperature"].map(lambda t: -1.0 if t == "learnable" else float(t))
    return (
        table.assign(_order=order)
        .sort_values(["k", "family", "_order", "model"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def chance_level(column: str) -> float:
    """Accuracy by guessing, for the zoo's accuracy columns."""
    if column == "object_acc":
        return chance("digit")
    if column == "attribute_acc":
        return float(np.mean([chance(f) for f in FACTORS if f != "digit"]))
    raise ValueError(f"no chance level for {column!r}")


def from_mad(profile="cpu", *, progress: bool = False) -> Comparison:
    """The MAD zoo (:func:`mad_zoo`) as a comparison: k stands for the training data."""
    table = mad_zoo(profile, progress=progress)
    table = table.assign(group=table["k"].map(lambda k: f"k={k}"))
    cols = {
        "gap": "rmg",
        "l2m": "l2m",
        "performance": "object_acc",
        "retrieval": "i2t_r1",
        "moad": "moad_img",
        "moad_text": "moad_txt",
        "attribute": "attribute_acc",
        "object": "object_acc",
        "group": "group",
    }
    labels = {
        "performance": "digit zero-shot accuracy",
        "object": "digit zero-shot accuracy",
        "attribute": "attribute zero-shot accuracy",
        "group": "k (attributes per caption)",
    }
    return Comparison("mad", table, cols, labels)


def chapter_runs(profile="cpu", chapter="models_compared", *, resolve=resolve_glyphs):
    """``{name: config}`` of the zoo's runs (each run once), as :func:`mad_zoo` trains them."""
    if chapter != "models_compared":
        raise ValueError(f"the MAD zoo trains no runs for {chapter!r}")
    return dict(mad_zoo_configs(profile, resolve=resolve).values())
