"""Chapter-level analyses built from the metrics: one call per table or figure a chapter shows."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from gaplab import metrics as M
from gaplab.data.embeddings import EMBEDDING_MODELS, load_embeddings

__all__ = ["gap_summary", "gap_table", "ablation_panels", "ablation_effect"]


def gap_summary(img, txt, *, seed: int = 0, neighbour_k: int = 10) -> dict[str, float]:
    """Every gap measure of the gap-geometry chapter for one pair of row-matched embedding sets."""
    n = len(img)
    return {
        "N": int(n),
        "d": int(np.shape(img)[1]),
        "L2M": M.l2m(img, txt),
        "L2I": M.l2i(img, txt),
        "RMG": M.rmg(img, txt),
        "mean cos (image)": M.mean_cosine(img),
        "mean cos (text)": M.mean_cosine(txt),
        "linear separability": M.linear_separability(img, txt, seed=seed),
        "I->T R@1": M.recall_at_k(img, txt, 1, "i2t"),
        "T->I R@1": M.recall_at_k(img, txt, 1, "t2i"),
        "neighbour overlap": M.neighbour_overlap(img, txt, k=min(neighbour_k, n - 1)),
        "overlap by chance": min(neighbour_k, n - 1) / (n - 1),
    }


def gap_table(names=None, *, seed: int = 0, neighbour_k: int = 10) -> pd.DataFrame:
    """:func:`gap_summary` of each shipped embedding set, one row per model, with its description."""
    rows = []
    for name in names or EMBEDDING_MODELS:
        info = EMBEDDING_MODELS[name]
        img, txt = load_embeddings(name)
        row = {
            "name": name,
            "model": info.model.split(" (")[0].split(",")[0],
            "weights": "random init" if info.random_init else "pretrained",
            "data": info.pairs,
        }
        row.update(gap_summary(img, txt, seed=seed, neighbour_k=neighbour_k))
        rows.append(row)
    return pd.DataFrame(rows).set_index("name")


def ablation_panels(top: dict, control: dict, measures: dict[str, str]) -> list[str]:
    """One HTML table per k: each measure after ablating the top-k gap dimensions beside k random ones."""
    max_k = len(top[next(iter(measures))]) - 1
    panels = []
    for k in range(max_k + 1):
        dims = ", ".join(str(d) for d in top["dims"][:k]) or "none"
        body = "".join(
            f"<tr><td>{html.escape(label)}</td><td>{top[key][0]:.3f}</td><td><b>{top[key][k]:.3f}</b></td>"
            f"<td>{control[key]['mean'][k]:.3f} &plusmn; {control[key]['std'][k]:.3f}</td></tr>"
            for key, label in measures.items()
        )
        panels.append(
            f"<div class='gaplab-panel'><p>k = {k}: ablated dimensions {html.escape(dims)}</p>"
            "<table class='gaplab-table'><thead><tr><th>measure</th><th>no ablation</th>"
            f"<th>top {k} gap dims ablated</th><th>{k} random dims (mean &plusmn; sd)</th></tr></thead>"
            f"<tbody>{body}</tbody></table></div>"
        )
    return panels


def ablation_effect(top: dict, control: dict, k: int) -> dict[str, float]:
    """What ablating k dimensions did: relative L2M drop for the top-gap and the random dimensions, the largest
    change of R@1 in either direction, and the values after ablation."""
    return {
        "l2m_drop_top": 1 - top["l2m"][k] / top["l2m"][0],
        "l2m_drop_random": 1 - control["l2m"]["mean"][k] / control["l2m"]["mean"][0],
        "r1_change_top": max(
            abs(top[key][k] - top[key][0]) for key in ("i2t_r1", "t2i_r1")
        ),
        "l2m_after_top": top["l2m"][k],
        "rmg_after_top": top["rmg"][k],
    }
