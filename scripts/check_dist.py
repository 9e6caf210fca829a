"""What the sdist and the wheel carry, checked against the clone they were built from.

    python scripts/check_dist.py CLONE SDIST WHEEL      (scripts/test_wheel.sh runs it)

The wheel: every file of ``lib/gaplab`` (modules, ``py.typed``, each package-data file of
pyproject.toml's ``[tool.setuptools.package-data]``) and nothing else of the repository (no
tests, notebooks, book pages or data); its METADATA declares the extras and the core, and
its entry points name the ``gaplab`` command. The sdist: the same package files, and the
project files a build needs, without the book's chapters, pages or data.
"""

from __future__ import annotations

import fnmatch
import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import tomllib

#: what neither archive may hold: the book, its tests and its data live in the repository only
NOT_SHIPPED = ("tests/", "notebooks/", "notebooks_py/", "book/", "data/", "_build/")
EXTRAS = {"models", "charts", "book", "test", "realdata"}
CORE = {"numpy", "scipy", "scikit-learn", "platformdirs"}
COMMAND = "gaplab = gaplab.cli:main"


def package_files(clone: Path) -> set[str]:
    """``gaplab/...`` paths of every file the package consists of, read from the clone."""
    root = clone / "lib"
    return {
        str(p.relative_to(root))
        for p in (root / "gaplab").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


def package_data(clone: Path) -> list[str]:
    """The package-data patterns of pyproject.toml, as ``gaplab/...`` globs."""
    config = tomllib.loads((clone / "pyproject.toml").read_text())
    data = config["tool"]["setuptools"]["package-data"]
    return [
        f"{pkg.replace('.', '/')}/{pat}" for pkg, pats in data.items() for pat in pats
    ]


def check_wheel(clone: Path, wheel: Path) -> list[str]:
    problems = []
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("gaplab/")}
    wanted = package_files(clone)
    problems += [f"wheel lacks {n}" for n in sorted(wanted - shipped)]
    problems += [
        f"wheel has {n}, which lib/gaplab lacks" for n in sorted(shipped - wanted)
    ]
    for pattern in package_data(clone):
        if not fnmatch.filter(wanted, pattern):
            problems.append(f"package-data {pattern} matches no file of lib/gaplab")
    problems += [f"wheel carries {n}" for n in names if n.startswith(NOT_SHIPPED)]
    info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode())
    extras = set(meta.get_all("Provides-Extra") or [])
    problems += [f"METADATA lacks the extra {e}" for e in sorted(EXTRAS - extras)]
    core = {
        re.match(r"[\w.-]+", r)[0].lower()
        for r in meta.get_all("Requires-Dist") or []
        if "extra ==" not in r
    }
    if core != CORE:
        problems.append(f"the core requires {sorted(core)}, not {sorted(CORE)}")
    entries = f"{info}/entry_points.txt"
    entry = zipfile.ZipFile(wheel).read(entries).decode() if entries in names else ""
    if COMMAND not in entry.replace("  ", " "):
        problems.append(f"entry_points.txt lacks {COMMAND!r}: {entry!r}")
    print(
        f"wheel {wheel.name}: {len(shipped)} package files, extras {sorted(extras)}, "
        f"core {sorted(core)}, command `{COMMAND}`"
    )
    return problems


def check_sdist(clone: Path, sdist: Path) -> list[str]:
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    files = {n.removeprefix("lib/") for n in names if n.startswith("lib/gaplab/")}
    wanted = package_files(clone)
    problems = [f"sdist lacks lib/{n}" for n in sorted(wanted - files)]
    problems += [
        f"sdist lacks {n}"
        for n in ("pyproject.toml", "README.md", "LICENSE")
        if n not in names
    ]
    problems += [f"sdist carries {n}" for n in names if n.startswith(NOT_SHIPPED)]
    print(f"sdist {sdist.name}: {len(names)} entries, {len(files)} package files")
    return problems


def main(argv: list[str]) -> int:
    clone, sdist, wheel = (Path(a) for a in argv)
    problems = check_wheel(clone, wheel) + check_sdist(clone, sdist)
    for line in problems:
        print(f"check_dist: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
