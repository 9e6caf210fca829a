"""General charts the chapters use for tables: a scatter of two columns, labelled points and grouped bars."""

from __future__ import annotations

import altair as alt
import pandas as pd

__all__ = ["scatter", "labelled_points", "grouped_bars"]


def scatter(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    color: str | None = None,
    x_title: str = "",
    y_title: str = "",
    tooltip=(),
    title: str = "",
    trend: bool = True,
) -> alt.Chart:
    """A scatter plot of two columns, coloured by a third, with a least-squares line when ``trend``."""
    enc = dict(
        x=alt.X(f"{x}:Q", title=x_title or x, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title or y, scale=alt.Scale(zero=False)),
        tooltip=[
            *tooltip,
            alt.Tooltip(f"{x}:Q", format=".3f"),
            alt.Tooltip(f"{y}:Q", format=".3f"),
        ],
    )
    if color:
        enc["color"] = alt.Color(f"{color}:O", scale=alt.Scale(scheme="viridis"))
    points = alt.Chart(frame).mark_circle(size=70, opacity=0.85).encode(**enc)
    layers = [points]
    if trend:
        layers.insert(
            0,
            alt.Chart(frame)
            .transform_regression(x, y)
            .mark_line(color="#999999", strokeDash=[4, 3])
            .encode(x=f"{x}:Q", y=f"{y}:Q"),
        )
    return alt.layer(*layers).properties(width=360, height=260, title=title)


def labelled_points(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    label: str,
    color: str | None = None,
    facet: str | None = None,
    x_title: str = "",
    y_title: str = "",
    title: str = "",
) -> alt.Chart:
    """One point per row with its ``label`` written beside it, coloured by ``color`` and, with ``facet``, one
    panel per value of that column: for a handful of named things (remedies, models) on two measures."""
    missing = [c for c in (x, y, label, color, facet) if c and c not in frame.columns]
    if missing:
        raise ValueError(
            f"frame lacks the columns {missing}; it has {list(frame.columns)}"
        )
    base = alt.Chart().encode(
        x=alt.X(f"{x}:Q", title=x_title or x, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title or y, scale=alt.Scale(zero=False)),
        tooltip=[
            f"{label}:N",
            alt.Tooltip(f"{x}:Q", format=".3f"),
            alt.Tooltip(f"{y}:Q", format=".3f"),
        ],
    )
    points = base.mark_point(size=70, filled=True, opacity=0.9)
    if color:
        points = points.encode(
            color=alt.Color(f"{color}:N", legend=alt.Legend(orient="top"))
        )
    text = base.mark_text(align="left", dx=6, dy=-4, fontSize=10).encode(
        text=f"{label}:N"
    )
    chart = alt.layer(points, text, data=frame).properties(width=320, height=260)
    if facet:
        return chart.facet(column=alt.Column(f"{facet}:O")).properties(title=title)
    return chart.properties(title=title)


def grouped_bars(
    frame: pd.DataFrame,
    *,
    category: str,
    group: str,
    value: str,
    y_title: str = "",
    title: str = "",
) -> alt.Chart:
    """Bars of ``value`` per ``category``, side by side per ``group``."""
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                f"{category}:N", title=None, sort=list(dict.fromkeys(frame[category]))
            ),
            xOffset=alt.XOffset(f"{group}:N"),
            y=alt.Y(f"{value}:Q", title=y_title or value),
            color=alt.Color(f"{group}:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                f"{category}:N",
                f"{group}:N",
                alt.Tooltip(f"{value}:Q", format=".3f"),
            ],
        )
        .properties(width=420, height=240, title=title)
    )
