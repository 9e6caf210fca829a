"""The three papers' own numbers, which the book compares itself against.

They live in ``data/paper-numbers/numbers.json`` (its ``SOURCE.md`` says where they were read): one entry per
number, with the paper, the quantity, the value (or ``"not found"`` where no readable source gave it), the
setting it was measured in and its source (the paper's section, table or figure, or a file of the authors'
repository at a named commit). :func:`paper_numbers` loads and checks the file; :func:`render_page` turns it
into the book's reference page ``book/paper_numbers.md``, which ``python -m gaplab.book.papers`` writes (and
``--check`` compares with the committed one). A chapter that sets a paper's number beside its own reads it with
:func:`paper_number`, or glues it for the page with :func:`glue_paper_numbers`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gaplab.book import glue
from gaplab.paths import data_dir

__all__ = [
    "NOT_FOUND",
    "SOURCE_KINDS",
    "Paper",
    "PaperNumber",
    "PaperNumbersError",
    "numbers_file",
    "paper_numbers",
    "paper_number",
    "glue_paper_numbers",
    "papers",
    "render_page",
    "main",
]

#: the value of a number that no readable source gave (never filled in from memory)
NOT_FOUND = "not found"

#: the kinds of source a number may come from, and how the page names them
SOURCE_KINDS = {
    "paper": "the paper's text",
    "figure": (
        "a figure or table image of the paper, shipped in the authors' repository"
    ),
    "authors_file": (
        "a result file or saved notebook output in the authors' repository "
        "(primary data, not proven to be the exact number printed in the paper)"
    ),
    "authors_code": (
        "the authors' code: a setting or protocol as implemented, not a result"
    ),
    "secondary": "a third party quoting the paper: unverified, not a reference value",
}

_NUMBER_KEYS = {"id", "paper", "quantity", "value", "setting", "source", "note"}
_OPTIONAL_KEYS = {"plus_minus", "unit", "approximate"}
_SOURCE_KEYS = {"kind", "where", "file", "repository", "commit"}
_PAPER_KEYS = {"short", "title", "text", "repository", "commit"}
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "book" / "paper_numbers.md"


class PaperNumbersError(ValueError):
    """The numbers file is missing, not JSON, or breaks the format: the message lists every problem."""


@dataclass(frozen=True)
class Paper:
    key: str  #: the paper's key in references.bib
    short: str
    title: str
    text: str  #: what of the paper itself could be read, and where
    repository: str  #: the authors' repository, owner/name
    commit: str  #: the commit of it that was read


@dataclass(frozen=True)
class PaperNumber:
    id: str
    paper: str
    quantity: str
    value: float | int | str
    setting: str
    source: dict = field(hash=False)
    note: str = ""
    plus_minus: float | None = None
    unit: str | None = None
    approximate: bool = False

    @property
    def found(self) -> bool:
        return self.value != NOT_FOUND

    def text(self) -> str:
        """The value as the page prints it: ``1.1891 ± 0.0017``, ``57 %``, ``not found``."""
        if not self.found:
            return NOT_FOUND
        out = _format(self.value)
        if self.plus_minus is not None:
            out += f" ± {_format(self.plus_minus)}"
        if self.unit:
            out += f" {self.unit}"
        return ("≈ " if self.approximate else "") + out


def _format(v) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    return repr(float(v))


def numbers_file() -> Path:
    """``data/paper-numbers/numbers.json`` of the shipped data folder."""
    return data_dir() / "paper-numbers" / "numbers.json"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text_problems(where: str, obj: dict, keys, *, empty_ok=()) -> list[str]:
    out = []
    for k in keys:
        v = obj.get(k)
        if k not in obj:
            out.append(f"{where}: '{k}' is missing")
        elif not isinstance(v, str):
            out.append(f"{where}: '{k}' must be a string, got {type(v).__name__}")
        elif "\n" in v:
            out.append(f"{where}: '{k}' must be one line")
        elif not v.strip() and k not in empty_ok:
            out.append(f"{where}: '{k}' is empty")
    return out


def _paper_problems(key: str, p) -> list[str]:
    where = f"paper {key!r}"
    if not isinstance(p, dict):
        return [f"{where}: must be an object"]
    out = [
        f"{where}: unknown field '{k}'" for k in sorted(set(p) - _PAPER_KEYS)
    ] + _text_problems(where, p, sorted(_PAPER_KEYS))
    if isinstance(p.get("repository"), str) and not _REPO.match(p["repository"]):
        out.append(f"{where}: 'repository' must read owner/name")
    if isinstance(p.get("commit"), str) and not _COMMIT.match(p["commit"]):
        out.append(f"{where}: 'commit' must be 40 lower-case hex digits")
    return out


def _source_problems(where: str, s) -> list[str]:
    if not isinstance(s, dict):
        return [f"{where}: 'source' must be an object"]
    where = f"{where}, source"
    out = [f"{where}: unknown field '{k}'" for k in sorted(set(s) - _SOURCE_KEYS)]
    out += _text_problems(where, s, ("kind", "where"))
    kind = s.get("kind")
    if isinstance(kind, str) and kind not in SOURCE_KINDS:
        out.append(
            f"{where}: kind {kind!r} is not one of {', '.join(sorted(SOURCE_KINDS))}"
        )
    if kind in ("authors_file", "authors_code") and "file" not in s:
        out.append(f"{where}: a source of kind {kind!r} names its 'file'")
    out += _text_problems(where, s, [k for k in ("file", "repository") if k in s])
    if "commit" in s and not (
        isinstance(s["commit"], str) and _COMMIT.match(s["commit"])
    ):
        out.append(f"{where}: 'commit' must be 40 lower-case hex digits")
    return out


def _number_problems(where: str, n, paper_keys) -> list[str]:
    if not isinstance(n, dict):
        return [f"{where}: must be an object"]
    out = [
        f"{where}: unknown field '{k}'"
        for k in sorted(set(n) - _NUMBER_KEYS - _OPTIONAL_KEYS)
    ]
    out += [f"{where}: '{k}' is missing" for k in sorted(_NUMBER_KEYS - set(n))]
    out += _text_problems(
        where,
        n,
        [k for k in ("id", "paper", "quantity", "setting", "note") if k in n],
        empty_ok=("note",),
    )
    if isinstance(n.get("id"), str) and not _ID.match(n["id"]):
        out.append(f"{where}: id must be lower-case words joined by '-'")
    if isinstance(n.get("paper"), str) and n["paper"] not in paper_keys:
        out.append(
            f"{where}: paper {n['paper']!r} is not one of {', '.join(paper_keys)}"
        )
    if "value" in n and not (_is_number(n["value"]) or n["value"] == NOT_FOUND):
        out.append(
            f"{where}: 'value' must be a number or {NOT_FOUND!r}, got {n['value']!r}"
        )
    if "plus_minus" in n:
        if not (_is_number(n["plus_minus"]) and n["plus_minus"] >= 0):
            out.append(f"{where}: 'plus_minus' must be a number >= 0")
        if n.get("value") == NOT_FOUND:
            out.append(f"{where}: a number not found has no 'plus_minus'")
    if "unit" in n:
        out += _text_problems(where, n, ["unit"])
    if "approximate" in n and not isinstance(n["approximate"], bool):
        out.append(f"{where}: 'approximate' must be true or false")
    if "source" in n:
        out += _source_problems(where, n["source"])
    return out


def _load(path=None) -> tuple[dict[str, Paper], dict[str, PaperNumber]]:
    path = Path(path) if path is not None else numbers_file()
    if not path.is_file():
        raise PaperNumbersError(f"{path}: the papers' numbers file does not exist")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PaperNumbersError(
            f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"
        ) from None
    if not isinstance(doc, dict):
        raise PaperNumbersError(f"{path}: must hold one JSON object")
    problems = [
        f"unknown top-level field '{k}'"
        for k in sorted(set(doc) - {"description", "papers", "numbers"})
    ]
    raw_papers, raw_numbers = doc.get("papers"), doc.get("numbers")
    if not isinstance(raw_papers, dict) or not raw_papers:
        problems.append("'papers' must be a non-empty object keyed by paper")
        raw_papers = {}
    if not isinstance(raw_numbers, list) or not raw_numbers:
        problems.append("'numbers' must be a non-empty list")
        raw_numbers = []
    for key, p in raw_papers.items():
        problems += _paper_problems(key, p)
    seen: set[str] = set()
    for i, n in enumerate(raw_numbers):
        ident = n.get("id") if isinstance(n, dict) else None
        where = f"number {i}" + (f" ({ident!r})" if isinstance(ident, str) else "")
        problems += _number_problems(where, n, list(raw_papers))
        if isinstance(ident, str):
            if ident in seen:
                problems.append(f"{where}: id {ident!r} appears more than once")
            seen.add(ident)
    if problems:
        raise PaperNumbersError(
            f"{path} breaks the papers' numbers format:\n- " + "\n- ".join(problems)
        )
    found = {k: Paper(key=k, **p) for k, p in raw_papers.items()}
    numbers = {n["id"]: PaperNumber(**n) for n in raw_numbers}
    return found, numbers


def paper_numbers(path=None) -> dict[str, PaperNumber]:
    """Every number of the file (default :func:`numbers_file`), by id, in the file's order.

    Raises :class:`PaperNumbersError` naming each problem when the file breaks the format."""
    return _load(path)[1]


def papers(path=None) -> dict[str, Paper]:
    """The papers of the file, by their references.bib key."""
    return _load(path)[0]


def paper_number(ident: str, path=None) -> float | int:
    """The value of number ``ident``; a :class:`KeyError` if there is none, a :class:`PaperNumbersError` if it
    was not found in any source (so a chapter never prints a number that is not there)."""
    numbers = paper_numbers(path)
    if ident not in numbers:
        raise KeyError(f"no paper number {ident!r} in {path or numbers_file()}")
    n = numbers[ident]
    if not n.found:
        raise PaperNumbersError(f"paper number {ident!r} was not found in any source")
    return n.value


def glue_paper_numbers(*idents: str, path=None) -> None:
    """Glue each number's value for the page, as ``paper_<id>`` with ``-`` written ``_``
    (``"liang-gap-clip"`` becomes ``{glue:text}`paper_liang_gap_clip```), so that a chapter prints the
    paper's number from the data file, not typed by hand."""
    for ident in idents:
        glue("paper_" + ident.replace("-", "_"), paper_number(ident, path))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _source_text(n: PaperNumber, paper: Paper) -> str:
    s = n.source
    kind, where = s["kind"], s["where"]
    if kind == "paper":
        return f"paper, {where}"
    if kind == "secondary":
        return f"third party (unverified): {where}"
    repo = s.get("repository", paper.repository)
    commit = s.get("commit", paper.commit)
    file = s.get("file")
    if file is None:  # a figure of the paper, named only by its number
        return f"paper, {where}"
    link = f"[`{file}`](https://github.com/{repo}/blob/{commit}/{file})"
    # the paper's section names the repository and commit; a source elsewhere says where
    at = ""
    if repo != paper.repository:
        at = f", {repo} at `{commit[:7]}`"
    elif commit != paper.commit:
        at = f", at commit `{commit[:7]}`"
    if kind == "figure":
        return f"paper, {where}: the image {link}{at}"
    what = "authors' file" if kind == "authors_file" else "authors' code"
    return f"{what} {link} ({where}{at})"


def render_page(path=None) -> str:
    """The MyST page ``book/paper_numbers.md`` made from the numbers file: a table per paper."""
    found, numbers = _load(path)
    lines = [
        "(paper-numbers)=",
        "# The papers' numbers",
        "",
        "<!-- Generated by `python -m gaplab.book.papers` from data/paper-numbers/numbers.json: edit that file,",
        "     not this page. A test checks that the two agree. -->",
        "",
        "The chapters set the three papers' numbers beside their own. This page lists each number the book "
        "compares itself against or quotes, with the setting it was measured in (model, data, sample size) "
        "and the place it was read, so that a reader can check it. *not found* marks a number that no "
        "readable source gave; such a number is left open, never filled in from memory.",
        "",
        "The numbers are kept in `data/paper-numbers/numbers.json` (its `SOURCE.md` says how they were "
        "collected); `gaplab.book.papers.paper_numbers()` loads them, and a chapter that prints one reads it from "
        "there. Links to the authors' repositories point at the commit that was read.",
        "",
        "Kinds of source:",
        "",
    ]
    lines += [f"- `{k}`: {v};" for k, v in SOURCE_KINDS.items()]
    lines[-1] = lines[-1][:-1] + "."
    for key, paper in found.items():
        rows = [n for n in numbers.values() if n.paper == key]
        if not rows:
            continue
        repo = f"https://github.com/{paper.repository}/tree/{paper.commit}"
        lines += [
            "",
            f"## {paper.short}",
            "",
            f"*{paper.title}* {{cite:p}}`{key}`. Of the paper itself, what could be read: "
            f"{paper.text}. The authors' repository: [{paper.repository}]({repo}) at "
            f"commit `{paper.commit[:7]}`.",
            "",
            "| quantity | value | setting | source | note |",
            "| --- | --- | --- | --- | --- |",
        ]
        for n in rows:
            value = n.text() if n.found else f"*{NOT_FOUND}*"
            cells = [
                n.quantity,
                value,
                n.setting,
                _source_text(n, paper),
                n.note,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaplab.book.papers",
        description="Write book/paper_numbers.md from data/paper-numbers/numbers.json.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare the committed page with the generated one",
    )
    args = parser.parse_args(argv)
    try:
        text = render_page()
    except PaperNumbersError as e:
        print(e, file=sys.stderr)
        return 2
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != text:
            print(
                f"{PAGE} is not current: run python -m gaplab.book.papers",
                file=sys.stderr,
            )
            return 1
        print(f"{PAGE} is current")
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
