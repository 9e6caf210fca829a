"""How the book's charts look and where they are drawn: one theme, and a renderer for the built site.

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

__all__ = ["MODALITY_COLORS", "setup"]

MODALITY_COLORS = {"image": "#1f6fb4", "text": "#d9572b"}
_FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"
_SITE_ENV = "GAPLAB_SITE_CHARTS"
_counter = itertools.count()

# the page script of one chart (__UID__: its element, __SPEC__: its Vega-Lite spec); see _site_renderer
_EMBED = """<div id="__UID__" class="gaplab-chart"></div>
<script type="text/javascript">
(function () {
  var el = document.getElementById("__UID__");
  var spec = __SPEC__;
  var tries = 0, shown = null, drawnFor = -1, busy = false;
  function naturalWidth() {
    var m = el.querySelector(":scope > canvas, :scope > svg");
    if (!m) return 0;
    return parseFloat(m.style.width) || parseFloat(m.getAttribute("width")) || 0;
  }
  function wrap(title, chars) {
    // a long title sets the chart's width by itself: break it into lines
    var boxed = title !== null && typeof title === "object" && !Array.isArray(title);
    var text = boxed ? title.text : title;
    if (typeof text !== "string" || text.length <= chars) return title;
    var lines = [], line = "";
    text.split(" ").forEach(function (word) {
      if (line && (line + " " + word).length > chars) {
        lines.push(line);
        line = word;
      } else {
        line = line ? line + " " + word : word;
      }
    });
    lines.push(line);
    return boxed ? Object.assign({}, title, {"text": lines}) : lines;
  }
  function shrink(v, over, chars) {
    var t = Object.assign({}, v);
    if (typeof v.width === "number") t.width = Math.max(80, Math.floor(v.width - over));
    if (v.title) t.title = wrap(v.title, chars);
    return t;
  }
  function narrower(s, over, room) {
    // first the titles only, then narrower plots or fewer columns
    var chars = Math.max(16, Math.floor(room / 8));
    var parts = s.vconcat ? "vconcat" : s.hconcat ? "hconcat" : null;
    var t = shrink(s, 0, chars);
    if (s.facet && s.spec) t.spec = shrink(s.spec, 0, chars);
    if (parts) t[parts] = s[parts].map(function (v) { return shrink(v, 0, chars); });
    if (!same(t, s)) return t;
    if (s.facet && s.columns > 1) {
      var per = (room + over) / s.columns;
      t.columns = Math.max(1, Math.floor(room / per));
    } else if (s.facet && s.spec) {
      t.spec = shrink(s.spec, over, chars);
    } else if (parts) {
      var share = parts === "hconcat" ? over / s[parts].length : over;
      t[parts] = s[parts].map(function (v) { return shrink(v, share, chars); });
    } else if (typeof s.width === "number") {
      t.width = Math.max(80, Math.floor(s.width - over));
    }
    return same(t, s) ? null : t;
  }
  function same(a, b) {
    function layout(key, value) {
      return key === "datasets" || key === "data" ? undefined : value;
    }
    return JSON.stringify(a, layout) === JSON.stringify(b, layout);
  }
  function embed(s) {
    if (shown) shown.finalize();
    return window.vegaEmbed(el, s, {"actions": false, "mode": "vega-lite"}).then(
      function (result) { shown = result; });
  }
  function fit() {
    var room = el.clientWidth;
    if (busy || room === drawnFor || room === 0) return;
    busy = true;
    drawnFor = room;
    var s = spec, steps = 0;
    function check() {
      var over = naturalWidth() - room;
      var t = over > 1 && steps++ < 4 ? narrower(s, over, room) : null;
      if (!t) {
        busy = false;
        if (el.clientWidth !== drawnFor) fit();
        return;
      }
      s = t;
      return embed(s).then(check);
    }
    embed(s).then(check).catch(function (err) {
      busy = false;
      el.textContent = "This chart could not be drawn: " + err;
    });
  }
  function draw() {
    if (window.vegaEmbed) {
      fit();
      if (window.ResizeObserver) new ResizeObserver(function () { fit(); }).observe(el);
    } else if (tries++ < 400) {
      setTimeout(draw, 25);
    } else {
      el.textContent = "The chart library (_static/vega-bundle.js) did not load.";
    }
  }
  draw();
})();
</script>"""


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
    html = _EMBED.replace("__UID__", uid).replace("__SPEC__", payload)

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
