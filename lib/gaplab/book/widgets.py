"""ipywidgets that stay interactive in the static site.

Widgets whose behaviour runs in Python need a kernel, which a static page has not. A slider ``jslink``-ed to a
``Stack`` of precomputed panels runs entirely in the browser, so it works the same in Jupyter, Colab and the
built book.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets

__all__ = ["stepper"]


def stepper(panels: Sequence[str], *, description: str, start: int = 0) -> widgets.VBox:
    """A slider that shows one of ``panels`` (HTML strings): slider value i shows panel i."""
    if not panels:
        raise ValueError("stepper needs at least one panel")
    if not 0 <= start < len(panels):
        raise ValueError(f"start must lie in 0..{len(panels) - 1}; got {start}")
    slider = widgets.IntSlider(
        value=start,
        min=0,
        max=len(panels) - 1,
        step=1,
        description=description,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="460px"),
        continuous_update=True,
    )
    stack = widgets.Stack([widgets.HTML(p) for p in panels], selected_index=start)
    widgets.jslink((slider, "value"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])
