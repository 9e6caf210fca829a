"""Progress bars that stay out of the rendered book.

A bar drawn while ``make book`` executes a chapter is saved in the notebook and shows
on the site as a frozen line ("temperature runs: 100% 6/6 ..."). The build sets
``$GAPLAB_BUILD_LOG`` and follows training there (:func:`gaplab.runs.progress_line`),
so bars are left out whenever it is set; a reader running a notebook (Colab, Jupyter,
a terminal) still sees them.
"""

from __future__ import annotations

import os

__all__ = ["BUILD_LOG_ENV", "progress_bars"]

#: set by scripts/build_book.py to the file it tails for the build's progress
BUILD_LOG_ENV = "GAPLAB_BUILD_LOG"


def progress_bars(wanted: bool = True) -> bool:
    """Whether to draw a bar the caller asked for: ``wanted``, but never in the build."""
    return bool(wanted) and not os.environ.get(BUILD_LOG_ENV)
