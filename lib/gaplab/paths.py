"""Where gaplab finds the book it came with: its repository (:func:`book_root`), its table of contents
(:func:`toc_chapters`, :func:`toc_order`) and its shipped data (:func:`data_dir`). Every other module asks
here rather than finding them its own way.

The package is used two ways: installed editable from a clone (the book build, the tests), and
installed as a regular wheel from a clone (Colab's first cell runs ``pip install /content/gaplab``).
In the second case the package no longer sits inside the clone, so the clone is found another way:
``$GAPLAB_BOOK``, then the folder pip installed from (pip writes it into ``direct_url.json``).
"""

from __future__ import annotations

import json
import os
import re
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = [
    "book_root",
    "data_dir",
    "toc_chapters",
    "toc_order",
    "BookNotFoundError",
]

_ENV = "GAPLAB_DATA"
_BOOK_ENV = "GAPLAB_BOOK"
#: a folder is the book when it holds this file, its table of contents
_MARKER = "_toc.yml"


class BookNotFoundError(FileNotFoundError):
    """No clone of the book's repository could be found for an installed gaplab."""


def _installed_from() -> Path | None:
    """The local folder a regular ``pip install PATH`` took gaplab from, if pip recorded one.

    An editable install records the folder too; a wheel from an index records nothing.
    """
    try:
        text = metadata.distribution("gaplab").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        url = json.loads(text).get("url", "")
    except (ValueError, AttributeError):
        return None
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def _package_clone() -> Path:
    """The clone this module would sit in (as lib/gaplab/paths.py) when installed from one, editable."""
    return Path(__file__).resolve().parents[2]


def _candidates() -> list[tuple[str, Path]]:
    found = []
    env = os.environ.get(_BOOK_ENV)
    if env:
        found.append((f"${_BOOK_ENV}", Path(env).expanduser()))
    found.append(("the clone holding this package", _package_clone()))
    source = _installed_from()
    if source is not None:
        found.append(("the folder pip installed gaplab from", source))
    data = os.environ.get(_ENV)
    if data:
        found.append((f"the parent of ${_ENV}", Path(data).expanduser().parent))
    return found


def book_root() -> Path:
    """The clone of the book's repository this gaplab belongs to (it holds ``_toc.yml``).

    Raises :class:`BookNotFoundError` naming every place looked at when there is none, which is
    the case for a wheel installed from an index: chapters and records need the repository.
    """
    tried = []
    for why, path in _candidates():
        if (path / _MARKER).is_file():
            return path
        tried.append(f"{path} ({why})")
    raise BookNotFoundError(
        "the book's repository was not found; looked in: " + "; ".join(tried) + ". "
        "Clone it and install gaplab from the clone (pip install ./gaplab), or set "
        f"${_BOOK_ENV} to the clone's folder."
    )


def data_dir() -> Path:
    """The folder holding the book's shipped data.

    ``$GAPLAB_DATA`` wins; otherwise ``data/`` of the book's repository (:func:`book_root`).
    """
    env = os.environ.get(_ENV)
    candidates = [Path(env).expanduser()] if env else []
    try:
        candidates.append(book_root() / "data")
    except BookNotFoundError:
        candidates.append(_package_clone() / "data")
    for path in candidates:
        if path.is_dir():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"gaplab's shipped data folder was not found (looked in: {tried}). Install gaplab from "
        f"a clone of the book's repository (pip install ./gaplab), or point ${_ENV} at the "
        "repository's data/ folder."
    )


def toc_chapters(toc: str | os.PathLike | None = None) -> list[str]:
    """The chapters (notebook names) the table of contents ``toc`` lists, in its order; none when there is
    no such file. ``toc`` defaults to the book's own ``_toc.yml`` (:func:`book_root`)."""
    toc = Path(toc) if toc is not None else book_root() / _MARKER
    if not toc.is_file():
        return []
    return re.findall(r"file:\s*notebooks/(\w+)", toc.read_text())


def toc_order(stems, toc: str | os.PathLike | None = None) -> list[str]:
    """``stems`` (chapter names) in the order of the table of contents ``toc`` (default: the book's); those
    it does not list follow, in name order."""
    listed = toc_chapters(toc)
    stems = set(stems)
    return [s for s in listed if s in stems] + sorted(stems - set(listed))
