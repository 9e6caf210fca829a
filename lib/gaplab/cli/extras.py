"""Which extra of gaplab a missing module comes with: the one line a subcommand prints.

``pip install gaplab`` is the core (numpy, scipy, scikit-learn, platformdirs); the rest comes in
extras by use (pyproject.toml's ``[project.optional-dependencies]``). A subcommand that reaches a
module the install lacks fails with a :class:`ModuleNotFoundError`; :func:`needs_extra` turns it
into the line naming the extra to install. The extra is read from the installed package's
metadata, so it follows pyproject.toml; this module only knows which distribution provides each
module (tests/test_packaging.py checks that it knows every module gaplab imports).
"""

from __future__ import annotations

import re
from importlib import metadata

__all__ = ["DISTRIBUTIONS", "extras_of", "needs_extra"]

#: each third-party module gaplab imports (or that a module it imports needs) -> its distribution
DISTRIBUTIONS = {
    "numpy": "numpy",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "platformdirs": "platformdirs",
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "open_clip_train": "open_clip_torch",
    "timm": "timm",
    "huggingface_hub": "huggingface_hub",
    "safetensors": "safetensors",
    "PIL": "pillow",
    "tqdm": "tqdm",
    "pandas": "pandas",
    "matplotlib": "matplotlib",
    "altair": "altair",
    "vl_convert": "vl-convert-python",
    "ipywidgets": "ipywidgets",
    "IPython": "ipython",
    "myst_nb": "myst-nb",
    "jupytext": "jupytext",
    "nbformat": "nbformat",
    "papermill": "papermill",
    "webdataset": "webdataset",
    "braceexpand": "braceexpand",
    "fsspec": "fsspec",
}
#: when several extras declare a distribution, the one named: the smallest use first
PREFERENCE = ("models", "charts", "realdata", "book", "test")


def _norm(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extras_of(distribution: str, requires: list[str] | None = None) -> list[str]:
    """The extras of gaplab declaring ``distribution``, in :data:`PREFERENCE` order.

    ``requires``: Requires-Dist lines (default: the installed gaplab's; none when gaplab
    runs from a source tree that was never installed).
    """
    if requires is None:
        try:
            requires = metadata.requires("gaplab") or []
        except metadata.PackageNotFoundError:
            requires = []
    found = []
    for line in requires:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", line)
        if name and extra and _norm(name[1]) == _norm(distribution):
            found.append(extra[1])
    rank = {e: i for i, e in enumerate(PREFERENCE)}
    return sorted(set(found), key=lambda e: (rank.get(e, len(rank)), e))


def needs_extra(
    exc: ModuleNotFoundError,
    doing: str,
    requires: list[str] | None = None,
    wanted: tuple[str, ...] = (),
) -> str | None:
    """The line saying what ``doing`` (e.g. "gaplab report --model") needs, or None.

    ``wanted``: the extras ``doing`` is known to need; when given, the line names all of
    them, so that one install completes it (naming only the missing module's own extra
    would send the user back for a second one). None when the missing module is none of
    :data:`DISTRIBUTIONS` (a module of gaplab's own, or a typo: a bug, not an install to
    complete).
    """
    module = (exc.name or "").split(".")[0]
    distribution = DISTRIBUTIONS.get(module)
    if distribution is None:
        return None
    extras = list(wanted) or extras_of(distribution, requires)[:1]
    if not extras:
        return (
            f"{doing} needs {distribution} ({module} is not installed): "
            f'pip install "{distribution}"'
        )
    plural = "s" if len(extras) > 1 else ""
    return (
        f"{doing} needs the {' and '.join(extras)} extra{plural} ({distribution} is "
        f'not installed): pip install "gaplab[{",".join(extras)}]"'
    )
