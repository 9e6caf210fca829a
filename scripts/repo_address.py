"""Write the repository's address from its one source, ``_config.yml``, wherever it is needed.

The address appears in the chapters' Colab cell (which clones it; the whole cell is written
here, by :func:`colab_cell`, the same in every chapter), the course guide's Colab links to the
student notebooks, the citation file and the README. A fork edits ``repository.url`` (and
``branch``) in ``_config.yml`` and runs ``make address``; ``--check`` (run by ``make lint`` and the
tests) fails when any of those places disagrees. The chapters' ``.ipynb`` twins and the student
notebooks follow from the chapters' sources through ``make sync`` and ``make student``.

    python scripts/repo_address.py [--check] [ROOT]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
_GITHUB = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+?)/?$")

#: where the Colab cell clones the book; GAPLAB_BOOK tells gaplab its data lies there
COLAB_BOOK = "/content/gaplab"
#: the extras of pyproject.toml the chapters import (real models, charts and widgets): not
#: `book`, whose site builders Colab does not need; all are ranges, so Colab keeps its torch
#: (scripts/test_wheel.sh installs the same)
COLAB_EXTRAS = "models,charts"

# `pip` runs as the kernel's own Python (sys.executable), so the install lands where
# the notebook imports from; a clone left by an earlier run is reused, not fetched again
_COLAB_CELL = """\
# On Colab: clone the book once, install it and point gaplab at it (elsewhere: nothing).
import os, subprocess, sys  # noqa: E401, I001 (one line keeps the cell short)

if "google.colab" in sys.modules:
    url, book = "{url}", "{book}"
    if not os.path.isdir(book):
        subprocess.run(["git", "clone", "-q", "--depth", "1", url, book], check=True)
    package = book + "[{extras}]"  # with the extras the chapters import
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)
    os.environ["GAPLAB_BOOK"] = book
"""


def address(root: Path = REPO) -> tuple[str, str]:
    """(url, branch) from ``_config.yml``, with the url checked to be a GitHub repository's."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    repo = (config or {}).get("repository") or {}
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", "main"))
    if not _GITHUB.match(url):
        raise SystemExit(
            f"_config.yml: repository.url is {url!r}; it must be a GitHub repository's "
            "address, https://github.com/OWNER/NAME (Colab opens notebooks from GitHub)"
        )
    return url, branch


def colab_cell(url: str, book: str = COLAB_BOOK) -> str:
    """The first cell of every chapter, cloning ``url`` into ``book`` on Colab.

    Off Colab it does nothing; on Colab it clones once (a re-run reuses the clone), installs
    the clone with pip with the extras :data:`COLAB_EXTRAS` and sets ``GAPLAB_BOOK`` to it. A failed clone or install raises
    ``CalledProcessError``, so the notebook stops there instead of failing later at an import.
    """
    return _COLAB_CELL.format(url=url, book=book, extras=COLAB_EXTRAS)


def _rules(url: str, branch: str) -> list[tuple[str, re.Pattern, str | Callable]]:
    """(files, pattern, replacement): each pattern finds one kind of place the address sits."""
    owner, name = _GITHUB.match(url).groups()
    colab = f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/"
    cell = colab_cell(url)
    return [
        # the Colab cell: the whole first cell, from its tag line to the blank line before the next
        (
            "notebooks_py/*.py",
            re.compile(
                r'^(# %% tags=\["remove-cell"\]\n)# On Colab\b.*?\n(?=\n# %%)',
                re.M | re.S,
            ),
            lambda m: m.group(1) + cell,
        ),
        (
            "book/course_guide.md",
            re.compile(
                r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/"
            ),
            colab,
        ),
        (
            "CITATION.cff",
            re.compile(r'^(repository-code: ")[^"]*(")', re.M),
            rf"\g<1>{url}\g<2>",
        ),
        (
            "README.md",
            re.compile(r"(<!-- repository -->`)[^`]*(`)"),
            rf"\g<1>{url}\g<2>",
        ),
    ]


def sync(root: Path = REPO, *, check: bool = False) -> list[str]:
    """Rewrite (or, with ``check``, only compare) every place; returns the files that differ.

    A file whose pattern matches nothing is reported too: the place was edited away, and a
    silent no-op would let the address drift.
    """
    url, branch = address(root)
    differ = []
    for pattern, regex, replacement in _rules(url, branch):
        files = sorted(root.glob(pattern))
        if not files:
            differ.append(f"{pattern} (no such file)")
        for path in files:
            text = path.read_text()
            new, count = regex.subn(replacement, text)
            rel = str(path.relative_to(root))
            if count == 0:
                differ.append(f"{rel} (the address's place was not found)")
            elif new != text:
                differ.append(rel)
                if not check:
                    path.write_text(new)
    return differ


def main(argv: list[str]) -> int:
    check = "--check" in argv
    rest = [a for a in argv if a != "--check"]
    root = Path(rest[0]) if rest else REPO
    differ = sync(root, check=check)
    missing = [d for d in differ if d.endswith(")")]
    if check and differ:
        print(
            "the repository address in _config.yml is not the one in: "
            + ", ".join(differ)
            + "\nrun `make address` (then `make sync student`)",
            file=sys.stderr,
        )
        return 1
    if missing:
        print("could not place the address in: " + ", ".join(missing), file=sys.stderr)
        return 1
    for rel in differ:
        print(f"wrote the address into {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
