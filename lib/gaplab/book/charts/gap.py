"""Charts of the gap's geometry: paired embeddings projected, the dimensions that carry the gap, ablating
them, and one measure across models."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from gaplab.book.charts.site import MODALITY_COLORS

__all__ = [
    "pair_projection",
    "model_comparison",
    "dimension_profile",
    "ablation_curves",
]


def pair_projection(
    img_2d, txt_2d, *, n_links: int = 150, seed: int = 0, title: str = ""
) -> alt.Chart:
    """Scatter of 2-D projected image and text embeddings, with a line joining each of ``n_links`` matched pairs."""
    img_2d, txt_2d = np.asarray(img_2d), np.asarray(txt_2d)
    if img_2d.shape != txt_2d.shape or img_2d.ndim != 2 or img_2d.shape[1] != 2:
        raise ValueError(
            f"expected two (N, 2) arrays of equal shape; got {img_2d.shape} and {txt_2d.shape}"
        )
    n = len(img_2d)
    points = pd.DataFrame(
        {
            "pc1": np.concatenate([img_2d[:, 0], txt_2d[:, 0]]),
            "pc2": np.concatenate([img_2d[:, 1], txt_2d[:, 1]]),
            "modality": ["image"] * n + ["text"] * n,
            "pair": np.concatenate([np.arange(n), np.arange(n)]),
        }
    )
    linked = np.random.default_rng(seed).choice(n, size=min(n_links, n), replace=False)
    lines = points[points["pair"].isin(linked)]
    color = alt.Color(
        "modality:N",
        scale=alt.Scale(
            domain=list(MODALITY_COLORS), range=list(MODALITY_COLORS.values())
        ),
        title="modality",
    )
    base = alt.Chart(points)
    link_layer = (
        alt.Chart(lines)
        .mark_line(color="#999999", opacity=0.35, strokeWidth=0.8)
        .encode(x="pc1:Q", y="pc2:Q", detail="pair:N")
    )
    dots = base.mark_circle(size=22, opacity=0.75).encode(
        x=alt.X("pc1:Q", title="principal component 1"),
        y=alt.Y("pc2:Q", title="principal component 2"),
        color=color,
        tooltip=["modality:N", "pair:Q"],
    )
    return (link_layer + dots).properties(title=title, width=420, height=340)


def model_comparison(
    table: pd.DataFrame, value: str, *, title: str = "", domain: tuple | None = None
) -> alt.Chart:
    """Bars of one measure per model, pretrained beside random initialisation.

    ``table`` needs the columns ``model``, ``weights`` (``pretrained`` / ``random init``) and ``value``.
    """
    for col in ("model", "weights", value):
        if col not in table.columns:
            raise ValueError(
                f"table lacks the column {col!r}; it has {list(table.columns)}"
            )
    scale = alt.Scale(domain=list(domain)) if domain else alt.Undefined
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            y=alt.Y("model:N", title=None, sort=list(dict.fromkeys(table["model"]))),
            yOffset=alt.YOffset("weights:N", sort=["pretrained", "random init"]),
            x=alt.X(f"{value}:Q", scale=scale, title=value),
            color=alt.Color(
                "weights:N",
                sort=["pretrained", "random init"],
                scale=alt.Scale(range=["#1f6fb4", "#bbbbbb"]),
                title="weights",
            ),
            tooltip=["model:N", "weights:N", alt.Tooltip(f"{value}:Q", format=".3f")],
        )
        .properties(title=title, width=360, height=alt.Step(14))
    )


def dimension_profile(
    mean_diff, *, top: int = 40, highlight: int = 2, title: str = ""
) -> alt.Chart:
    """|mean difference| of the ``top`` largest gap dimensions (bars) and the cumulative share of the squared gap."""
    diff = np.abs(np.asarray(mean_diff, dtype=float))
    order = np.argsort(-diff, kind="stable")[:top]
    sq = diff**2
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "dimension": order,
            "abs_diff": diff[order],
            "cum_share": np.cumsum(sq[order]) / sq.sum(),
            "highlight": np.arange(len(order)) < highlight,
        }
    )
    x = alt.X(
        "rank:O",
        title="dimensions sorted by |mean difference|",
        axis=alt.Axis(labelAngle=0, values=list(range(0, top + 1, 5))),
    )
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("abs_diff:Q", title="|mean image - mean text|"),
            color=alt.condition(
                "datum.highlight", alt.value("#d9572b"), alt.value("#1f6fb4")
            ),
            tooltip=[
                "rank:Q",
                "dimension:Q",
                alt.Tooltip("abs_diff:Q", format=".4f"),
                alt.Tooltip("cum_share:Q", format=".1%"),
            ],
        )
    )
    share = (
        alt.Chart(frame)
        .mark_line(color="#333333", point=alt.OverlayMarkDef(size=12, color="#333333"))
        .encode(
            x=x,
            y=alt.Y(
                "cum_share:Q",
                title="cumulative share of squared gap",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]),
            ),
        )
    )
    return (
        alt.layer(bars, share)
        .resolve_scale(y="independent")
        .properties(title=title, width=460, height=280)
    )


def ablation_curves(
    top: dict, control: dict, *, measures: dict[str, str], max_k: int, title: str = ""
) -> alt.Chart:
    """Measures against the number of ablated dimensions, top-gap dimensions against random ones.

    ``top`` maps each measure to a list (index = k); ``control`` maps each to ``{"mean": [...], "std": [...]}``.
    A slider moves a rule to a chosen k, and a tooltip reads the values there.
    """
    rows = []
    for key, label in measures.items():
        for k in range(max_k + 1):
            rows.append(
                {
                    "k": k,
                    "measure": label,
                    "which": "top gap dimensions",
                    "value": top[key][k],
                    "lo": top[key][k],
                    "hi": top[key][k],
                }
            )
            m, s = control[key]["mean"][k], control[key]["std"][k]
            rows.append(
                {
                    "k": k,
                    "measure": label,
                    "which": "random dimensions",
                    "value": m,
                    "lo": m - s,
                    "hi": m + s,
                }
            )
    frame = pd.DataFrame(rows)
    k_param = alt.param(
        name="k",
        value=2,
        bind=alt.binding_range(min=0, max=max_k, step=1, name="dimensions ablated k "),
    )
    color = alt.Color(
        "which:N",
        scale=alt.Scale(
            domain=["top gap dimensions", "random dimensions"],
            range=["#d9572b", "#777777"],
        ),
        title=None,
        legend=alt.Legend(orient="top"),
    )
    base = alt.Chart().encode(
        x=alt.X("k:Q", title="dimensions ablated", scale=alt.Scale(domain=[0, max_k]))
    )
    band = base.mark_area(opacity=0.2).encode(y="lo:Q", y2="hi:Q", color=color)
    line = base.mark_line(point=alt.OverlayMarkDef(size=16)).encode(
        y=alt.Y("value:Q", title=None),
        color=color,
        tooltip=["measure:N", "which:N", "k:Q", alt.Tooltip("value:Q", format=".3f")],
    )
    rule = (
        alt.Chart()
        .mark_rule(color="#333333", strokeDash=[4, 3])
        .encode(x="k_value:Q")
        .transform_calculate(k_value="k")
    )
    label = (
        base.mark_text(align="left", dx=6, dy=-6, fontSize=11)
        .encode(y="value:Q", text=alt.Text("value:Q", format=".3f"), color=color)
        .transform_filter("datum.k == k")
    )
    layer = alt.layer(band, line, rule, label).properties(width=210, height=170)
    return (
        alt.layer(layer, data=frame)
        .facet(
            facet=alt.Facet("measure:N", title=None, sort=list(measures.values())),
            columns=2,
        )
        .resolve_scale(y="independent")
        .add_params(k_param)
        .properties(title=title)
    )
