"""Charts of measures against a parameter: training histories, metrics by k, loss curves and the toy
explorers, drawn as small multiples (one panel per measure)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "small_multiples",
    "training_curves",
    "metrics_by_k",
    "compare_histories",
    "lines",
    "landscape",
    "mismatch_explorer",
    "scale_trend",
]


def small_multiples(
    chart: alt.Chart,
    facet: str,
    order: list,
    *,
    columns: int = 3,
    title: str = "",
    width: int = 150,
    height: int = 120,
) -> alt.Chart:
    """``chart`` drawn once per value of the field ``facet`` (in ``order``), each panel with its own y scale."""
    return (
        chart.properties(width=width, height=height)
        .facet(facet=alt.Facet(f"{facet}:N", title=None, sort=order), columns=columns)
        .resolve_scale(y="independent")
        .properties(title=title)
    )


def training_curves(
    history: list[dict], *, measures: dict[str, str] | None = None, title: str = ""
) -> alt.Chart:
    """Small multiples of a training history (gaplab.training.train) against samples seen."""
    measures = measures or {
        "loss": "training loss",
        "l2m": "L2M",
        "rmg": "RMG",
        "entropy": "logits entropy (nats)",
        "logit_scale": "logit scale",
        "zero_shot_digit_acc": "zero-shot digit accuracy",
    }
    rows = [
        {"samples": h["samples"], "measure": label, "value": h[key]}
        for h in history
        for key, label in measures.items()
        if h.get(key) is not None
    ]
    frame = pd.DataFrame(rows)
    chart = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=14), color="#1f6fb4")
        .encode(
            x=alt.X("samples:Q", title="training samples seen"),
            y=alt.Y("value:Q", title=None),
            tooltip=["measure:N", "samples:Q", alt.Tooltip("value:Q", format=".3f")],
        )
    )
    return small_multiples(chart, "measure", list(measures.values()), title=title)


def metrics_by_k(
    table: pd.DataFrame, measures: dict[str, str], *, title: str = ""
) -> alt.Chart:
    """Small multiples of run metrics against k: one dot per seed, the seed mean as a line, mean +- std as a band.

    ``table`` has one row per run with a ``k`` and a ``seed`` column (gaplab.experiments.imbalance.imbalance_table).
    """
    rows = [
        {
            "k": int(r["k"]),
            "seed": int(r["seed"]),
            "measure": label,
            "value": float(r[key]),
        }
        for _, r in table.iterrows()
        for key, label in measures.items()
    ]
    frame = pd.DataFrame(rows)
    x = alt.X(
        "k:Q",
        title="attributes per caption (k)",
        axis=alt.Axis(values=sorted(frame.k.unique()), format="d"),
    )
    dots = (
        alt.Chart()
        .mark_circle(size=28, opacity=0.55, color="#777777")
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None),
            tooltip=[
                "measure:N",
                "k:Q",
                "seed:Q",
                alt.Tooltip("value:Q", format=".3f"),
            ],
        )
    )
    band = (
        alt.Chart()
        .mark_errorband(extent="stdev", color="#1f6fb4", opacity=0.2)
        .encode(x=x, y=alt.Y("value:Q", title=None))
    )
    line = (
        alt.Chart()
        .mark_line(point=alt.OverlayMarkDef(size=30), color="#1f6fb4")
        .encode(
            x=x,
            y=alt.Y("mean(value):Q", title=None),
            tooltip=[
                "measure:N",
                "k:Q",
                alt.Tooltip("mean(value):Q", format=".3f", title="seed mean"),
            ],
        )
    )
    chart = alt.layer(band, line, dots, data=frame)
    return small_multiples(chart, "measure", list(measures.values()), title=title)


def compare_histories(
    histories: dict[str, list[dict]],
    measures: dict[str, str],
    *,
    title: str = "",
    x_title: str = "fine-tuning step",
) -> alt.Chart:
    """Training histories of several runs (``{label: history}``) on shared small multiples."""
    rows = [
        {"run": name, "step": h["step"], "measure": label, "value": h[key]}
        for name, hist in histories.items()
        for h in hist
        for key, label in measures.items()
        if h.get(key) is not None
    ]
    frame = pd.DataFrame(rows)
    chart = (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=16))
        .encode(
            x=alt.X("step:Q", title=x_title),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("run:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                "run:N",
                "measure:N",
                "step:Q",
                alt.Tooltip("value:Q", format=".3f"),
            ],
        )
    )
    return small_multiples(chart, "measure", list(measures.values()), title=title)


def lines(
    frame: pd.DataFrame,
    x: str,
    measures: dict[str, str],
    *,
    series: str | None = None,
    x_title: str = "",
    x_scale: str = "linear",
    columns: int = 3,
    title: str = "",
) -> alt.Chart:
    """Small multiples of columns ``measures`` (column -> label) against ``x``, one line per ``series`` value."""
    keep = [x] + ([series] if series else [])
    long = frame.melt(
        id_vars=keep, value_vars=list(measures), var_name="key", value_name="value"
    )
    long["measure"] = long["key"].map(measures)
    enc = dict(
        x=alt.X(f"{x}:Q", title=x_title or x, scale=alt.Scale(type=x_scale)),
        y=alt.Y("value:Q", title=None),
        tooltip=[
            *([f"{series}:N"] if series else []),
            "measure:N",
            alt.Tooltip(f"{x}:Q", format=".3g"),
            alt.Tooltip("value:Q", format=".3f"),
        ],
    )
    if series:
        enc["color"] = alt.Color(
            f"{series}:N", title=None, legend=alt.Legend(orient="top")
        )
    width = 150 if columns >= 3 else 220
    chart = (
        alt.Chart(long)
        .mark_line(
            point=alt.OverlayMarkDef(size=20),
            **({} if series else {"color": "#1f6fb4"}),
        )
        .encode(**enc)
    )
    return small_multiples(
        chart,
        "measure",
        list(measures.values()),
        columns=columns,
        title=title,
        width=width,
    )


def landscape(
    frame: pd.DataFrame, minima: pd.DataFrame, *, columns: int = 3, title: str = ""
) -> alt.Chart:
    """Loss against shift, one panel per logit scale (rows of gaplab.experiments.landscape.loss_landscape), with
    the embeddings as they are marked at 0 and each curve's minimum (rows of ``minima``) as a red dot."""
    data = frame.copy()
    lowest = set(zip(minima["logit scale"], minima["shift"]))
    data["minimum"] = [
        (s, d) in lowest for s, d in zip(data["logit scale"], data["shift"])
    ]
    data["panel"] = data["logit scale"].map(lambda s: f"logit scale {s:g}")
    order = [f"logit scale {s:g}" for s in sorted(data["logit scale"].unique())]
    x = alt.X("shift:Q", title="shift d")
    y = alt.Y("loss:Q", title=None, scale=alt.Scale(zero=False))
    tips = [
        alt.Tooltip("shift:Q", format=".2f"),
        alt.Tooltip("loss:Q", format=".3f"),
        alt.Tooltip("centroid distance:Q", format=".3f"),
    ]
    curve = alt.Chart().mark_line(color="#1f6fb4").encode(x=x, y=y, tooltip=tips)
    now = (
        alt.Chart().mark_rule(color="#777777", strokeDash=[4, 3]).encode(x=alt.datum(0))
    )
    low = (
        alt.Chart()
        .mark_circle(size=70, color="#c0392b")
        .encode(x=x, y=y, tooltip=tips)
        .transform_filter(alt.datum.minimum)
    )
    return small_multiples(
        alt.layer(curve, now, low, data=data),
        "panel",
        order,
        columns=columns,
        title=title,
        height=110,
    )


def mismatch_explorer(
    frame: pd.DataFrame, minima: pd.DataFrame, *, title: str = ""
) -> alt.Chart:
    """Liang et al.'s toy loss against the height z (rows of gaplab.experiments.mismatch.loss_against_z), for
    the logit scale and the number of swapped pairs a reader picks; the all-matched curve at that scale is drawn
    in grey for reference, and each curve's minimum (rows of ``minima``) as a red dot."""
    scales = sorted(float(s) for s in frame["logit scale"].unique())
    swaps = sorted(int(k) for k in frame["swapped pairs"].unique())
    scale = alt.param(
        name="scale",
        value=scales[len(scales) // 2],
        bind=alt.binding_select(options=scales, name="logit scale "),
    )
    swapped = alt.param(
        name="swapped",
        value=swaps[min(1, len(swaps) - 1)],
        bind=alt.binding_radio(options=swaps, name="swapped pairs "),
    )
    data = frame.copy()
    lowest = set(zip(minima["logit scale"], minima["swapped pairs"], minima["z"]))
    data["minimum"] = [
        (s, k, z) in lowest
        for s, k, z in zip(data["logit scale"], data["swapped pairs"], data["z"])
    ]
    data["curve"] = np.where(
        data["swapped pairs"] == 0, "all pairs matched", "with swapped pairs"
    )
    x = alt.X("z:Q", title="height z (gap = 2z)")
    y = alt.Y("loss:Q", title="CLIP loss", scale=alt.Scale(zero=False))
    tips = [
        alt.Tooltip("z:Q", format=".2f"),
        alt.Tooltip("loss:Q", format=".4f"),
        "swapped pairs:Q",
    ]
    color = alt.Color(
        "curve:N",
        title=None,
        legend=alt.Legend(orient="top"),
        scale=alt.Scale(
            domain=["all pairs matched", "with swapped pairs"],
            range=["#999999", "#1f6fb4"],
        ),
    )
    chosen = "datum['logit scale'] == scale"
    shown = f"{chosen} && (datum['swapped pairs'] == 0 || datum['swapped pairs'] == swapped)"
    curve = (
        alt.Chart()
        .mark_line()
        .encode(x=x, y=y, color=color, detail="swapped pairs:N", tooltip=tips)
    )
    low = (
        alt.Chart()
        .mark_circle(size=80, color="#c0392b")
        .encode(x=x, y=y, tooltip=tips)
        .transform_filter(alt.datum.minimum)
    )
    return (
        alt.layer(curve, low, data=data)
        .transform_filter(shown)
        .add_params(scale, swapped)
        .properties(width=420, height=220, title=title)
    )


def scale_trend(frame: pd.DataFrame, *, title: str = "", columns: int = 3) -> alt.Chart:
    """A chapter's headline numbers against scale: one panel per ``measure`` of ``frame`` (the tidy frame of
    :func:`gaplab.book.ladder.trend`: ``rung``, ``measure``, ``value``, ``source``), the rungs in the ladder's
    order along x, this build's number drawn apart from the recorded ones."""
    from gaplab.book.ladder import RUNGS  # the rungs' order is the profiles'

    missing = {"rung", "measure", "value", "source"} - set(frame.columns)
    if missing:
        raise ValueError(f"the trend frame lacks the columns {sorted(missing)}")
    order = [r for r in RUNGS if r in set(frame["rung"])] or ["cpu"]
    base = alt.Chart(frame).encode(
        x=alt.X("rung:N", sort=order, title="profile", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=[
            "rung:N",
            "measure:N",
            "source:N",
            alt.Tooltip("value:Q", format=".4g"),
        ],
    )
    chart = base.mark_line(color="#1f6fb4") + base.mark_point(
        filled=True, size=60
    ).encode(
        color=alt.Color(
            "source:N",
            title=None,
            legend=alt.Legend(orient="top"),
            sort=["this build", "recorded"],
        ),
    )
    measures = list(dict.fromkeys(frame["measure"]))
    return small_multiples(
        chart, "measure", measures, columns=columns, title=title, width=140
    )
