"""Where gaplab finds the data shipped with the book."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir"]

_ENV = "GAPLAB_DATA"


def data_dir() -> Path:
    """The folder holding the book's shipped data.

    ``$GAPLAB_DATA`` wins (the Colab install cell sets it to the cloned repository's ``data/``);
    otherwise the ``data/`` folder of the repository that holds this package (editable installs).
    """
    env = os.environ.get(_ENV)
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "data")
    for path in candidates:
        if path.is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"gaplab's shipped data folder was not found (looked in: {tried}). Install gaplab from a clone of "
        f"the book's repository (pip install -e .), or point ${_ENV} at the repository's data/ folder."
    )
