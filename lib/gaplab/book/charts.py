"""Altair chart builders with one theme, drawn offline in the built book.

In the book build (``GAPLAB_SITE_CHARTS=1``, set by ``scripts/build_book.py``) charts are emitted as HTML that
calls the page's own ``vegaEmbed`` (vl-convert's bundle under ``_static/``), so no page loads vega from a CDN.
Elsewhere (Jupyter, Colab) altair's own renderer is kept; ``setup(renderer="svg")`` draws static SVG through
vl-convert when a notebook runs without network.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "MODALITY_COLORS",
    "setup",
    "pair_projection",
    "model_comparison",
    "dimension_profile",
    "ablation_curves",
    "training_curves",
    "metrics_by_k",
    "scatter",
    "grouped_bars",
    "compare_histories",
    "lines",
]

MODALITY_COLORS = {"image": "#1f6fb4", "text": "#d9572b"}
_FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"
_SITE_ENV = "GAPLAB_SITE_CHARTS"
_counter = itertools.count()


def _theme() -> dict:
    return {
        "config": {
            "view": {"continuousWidth": 420, "continuousHeight": 300, "stroke": None},
            "font": _FONT,
            "axis": {
                "labelFontSize": 12,
                "titleFontSize": 13,
                "gridColor": "#e6e6e6",
                "domainColor": "#888",
            },
            "legend": {"labelFontSize": 12, "titleFontSize": 13},
            "title": {"fontSize": 15, "anchor": "start", "fontWeight": "normal"},
            "range": {
                "category": [
                    "#1f6fb4",
                    "#d9572b",
                    "#3a9a5b",
                    "#8d5fb0",
                    "#b8860b",
                    "#555555",
                ]
            },
        }
    }


def _site_renderer(spec: dict, **_: object) -> dict:
    """HTML that draws ``spec`` with the page's vegaEmbed, waiting for the bundle if it loads after the output.

    A chart wider than its column (a phone) is laid out again to fit: small multiples
    wrap into fewer columns, a single view gets a narrower plot, so text keeps its size
    and the tooltips their places; the stylesheet scales down whatever still overflows.
    It is laid out again when the column's width changes (a phone turned).
    """
    payload = json.dumps(spec, sort_keys=True)
    uid = f"gaplab-chart-{hashlib.sha1(payload.encode()).hexdigest()[:10]}-{next(_counter)}"
    html = f"""<div id="{uid}" class="gaplab-chart"></div>
<script type="text/javascript">
(function () {{
  var el = document.getElementById("{uid}");
  var spec = {payload};
  var tries = 0, shown = null, drawnFor = -1, busy = false;
  function naturalWidth() {{
    var m = el.querySelector(":scope > canvas, :scope > svg");
    if (!m) return 0;
    return parseFloat(m.style.width) || parseFloat(m.getAttribute("width")) || 0;
  }}
  function wrap(title, chars) {{
    // a long title sets the chart's width by itself: break it into lines
    var boxed = title !== null && typeof title === "object" && !Array.isArray(title);
    var text = boxed ? title.text : title;
    if (typeof text !== "string" || text.length <= chars) return title;
    var lines = [], line = "";
    text.split(" ").forEach(function (word) {{
      if (line && (line + " " + word).length > chars) {{
        lines.push(line);
        line = word;
      }} else {{
        line = line ? line + " " + word : word;
      }}
    }});
    lines.push(line);
    return boxed ? Object.assign({{}}, title, {{"text": lines}}) : lines;
  }}
  function shrink(v, over, chars) {{
    var t = Object.assign({{}}, v);
    if (typeof v.width === "number") t.width = Math.max(80, Math.floor(v.width - over));
    if (v.title) t.title = wrap(v.title, chars);
    return t;
  }}
  function narrower(s, over, room) {{
    // first the titles only, then narrower plots or fewer columns
    var chars = Math.max(16, Math.floor(room / 8));
    var parts = s.vconcat ? "vconcat" : s.hconcat ? "hconcat" : null;
    var t = shrink(s, 0, chars);
    if (s.facet && s.spec) t.spec = shrink(s.spec, 0, chars);
    if (parts) t[parts] = s[parts].map(function (v) {{ return shrink(v, 0, chars); }});
    if (!same(t, s)) return t;
    if (s.facet && s.columns > 1) {{
      var per = (room + over) / s.columns;
      t.columns = Math.max(1, Math.floor(room / per));
    }} else if (s.facet && s.spec) {{
      t.spec = shrink(s.spec, over, chars);
    }} else if (parts) {{
      var share = parts === "hconcat" ? over / s[parts].length : over;
      t[parts] = s[parts].map(function (v) {{ return shrink(v, share, chars); }});
    }} else if (typeof s.width === "number") {{
      t.width = Math.max(80, Math.floor(s.width - over));
    }}
    return same(t, s) ? null : t;
  }}
  function same(a, b) {{
    function layout(key, value) {{
      return key === "datasets" || key === "data" ? undefined : value;
    }}
    return JSON.stringify(a, layout) === JSON.stringify(b, layout);
  }}
  function embed(s) {{
    if (shown) shown.finalize();
    return window.vegaEmbed(el, s, {{"actions": false, "mode": "vega-lite"}}).then(
      function (result) {{ shown = result; }});
  }}
  function fit() {{
    var room = el.clientWidth;
    if (busy || room === drawnFor || room === 0) return;
    busy = true;
    drawnFor = room;
    var s = spec, steps = 0;
    function check() {{
      var over = naturalWidth() - room;
      var t = over > 1 && steps++ < 4 ? narrower(s, over, room) : null;
      if (!t) {{
        busy = false;
        if (el.clientWidth !== drawnFor) fit();
        return;
      }}
      s = t;
      return embed(s).then(check);
    }}
    embed(s).then(check).catch(function (err) {{
      busy = false;
      el.textContent = "This chart could not be drawn: " + err;
    }});
  }}
  function draw() {{
    if (window.vegaEmbed) {{
      fit();
      if (window.ResizeObserver) new ResizeObserver(function () {{ fit(); }}).observe(el);
    }} else if (tries++ < 400) {{
      setTimeout(draw, 25);
    }} else {{
      el.textContent = "The chart library (_static/vega-bundle.js) did not load.";
    }}
  }}
  draw();
}})();
</script>"""
    return {"text/html": html}


alt.renderers.register("gaplab-site", _site_renderer)


def _register_theme() -> None:
    if hasattr(alt, "theme") and hasattr(alt.theme, "register"):  # altair >= 5.5
        alt.theme.register("gaplab", enable=True)(_theme)
    else:  # pragma: no cover - older altair
        alt.themes.register("gaplab", _theme)
        alt.themes.enable("gaplab")


def setup(renderer: str | None = None) -> str:
    """Enable the book's theme and pick a renderer; returns the renderer's name.

    ``renderer=None`` chooses ``gaplab-site`` in the book build and altair's default elsewhere.
    """
    _register_theme()
    if renderer is None:
        renderer = "gaplab-site" if os.environ.get(_SITE_ENV) == "1" else "default"
    if renderer not in alt.renderers.names():
        raise ValueError(
            f"unknown chart renderer {renderer!r}; choose one of {', '.join(alt.renderers.names())}"
        )
    alt.renderers.enable(renderer)
    return renderer


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
    return (
        alt.Chart(frame)
        .mark_line(point=alt.OverlayMarkDef(size=14), color="#1f6fb4")
        .encode(
            x=alt.X("samples:Q", title="training samples seen"),
            y=alt.Y("value:Q", title=None),
            tooltip=["measure:N", "samples:Q", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=150, height=120)
        .facet(
            facet=alt.Facet("measure:N", title=None, sort=list(measures.values())),
            columns=3,
        )
        .resolve_scale(y="independent")
        .properties(title=title)
    )


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
    return (
        alt.layer(band, line, dots, data=frame)
        .properties(width=150, height=120)
        .facet(
            facet=alt.Facet("measure:N", title=None, sort=list(measures.values())),
            columns=3,
        )
        .resolve_scale(y="independent")
        .properties(title=title)
    )


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
    return (
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
        .properties(width=150, height=120)
        .facet(
            facet=alt.Facet("measure:N", title=None, sort=list(measures.values())),
            columns=3,
        )
        .resolve_scale(y="independent")
        .properties(title=title)
    )


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
    return (
        alt.Chart(long)
        .mark_line(
            point=alt.OverlayMarkDef(size=20),
            **({} if series else {"color": "#1f6fb4"}),
        )
        .encode(**enc)
        .properties(width=width, height=120)
        .facet(
            facet=alt.Facet("measure:N", title=None, sort=list(measures.values())),
            columns=columns,
        )
        .resolve_scale(y="independent")
        .properties(title=title)
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
    return (
        alt.layer(curve, now, low, data=data)
        .properties(width=150, height=110)
        .facet(facet=alt.Facet("panel:N", title=None, sort=order), columns=columns)
        .resolve_scale(y="independent")
        .properties(title=title)
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
