"""Altair chart builders with one theme, drawn offline in the built book: ``charts.setup()`` once per page,
then one call per figure.

- :mod:`~gaplab.book.charts.site`: the theme and the renderer of the built site (no CDN);
- :mod:`~gaplab.book.charts.gap`: the gap's geometry (projections, gap dimensions, ablation, models);
- :mod:`~gaplab.book.charts.curves`: measures against a parameter, as small multiples (training histories,
  metrics by k, loss landscapes, the mismatch explorer);
- :mod:`~gaplab.book.charts.basic`: a scatter of two columns, labelled points and grouped bars.
"""

from gaplab.book.charts.basic import grouped_bars, labelled_points, scatter
from gaplab.book.charts.curves import (
    compare_histories,
    landscape,
    lines,
    metrics_by_k,
    mismatch_explorer,
    scale_trend,
    small_multiples,
    training_curves,
)
from gaplab.book.charts.gap import (
    ablation_curves,
    dimension_profile,
    model_comparison,
    pair_projection,
)
from gaplab.book.charts.site import MODALITY_COLORS, setup

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
    "labelled_points",
    "grouped_bars",
    "scale_trend",
    "compare_histories",
    "lines",
    "landscape",
    "mismatch_explorer",
    "small_multiples",
]
