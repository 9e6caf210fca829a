"""The papers' numbers: the data file loads and is checked, the book's page is generated from it, and no
page sends the reader to a file outside the repository."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

from gaplab.book import papers as P

ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    sorted((ROOT / "book").glob("*.md"))
    + sorted((ROOT / "notebooks_py").glob("*.py"))
    + [ROOT / "README.md"]
)
#: developers' notes kept outside the repository: a reader cannot open them
OUTSIDE = ("PAPER-NUMBERS.md", "DESIGN.md", "/work/shared")


def _markdown_files() -> set[str]:
    """The names of the repository's Markdown files (build outputs and hidden folders left out)."""
    names = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_build", "node_modules"))]
        names.update(f for f in files if f.endswith(".md"))
    return names


def test_the_numbers_file_loads_and_covers_the_three_papers():
    numbers = P.paper_numbers()
    found = P.papers()
    assert set(found) == {
        "schrodi2025twoeffects",
        "liang2022mind",
        "fahim2024contrastive",
    }
    assert {n.paper for n in numbers.values()} == set(found)
    bib = (ROOT / "references.bib").read_text()
    assert all(f"{{{key}," in bib for key in found)
    # every entry names its place; a number not found carries no value
    for n in numbers.values():
        assert n.source["where"]
        assert n.found or n.plus_minus is None


def test_the_committed_page_is_generated_from_the_file():
    page = ROOT / "book" / "paper_numbers.md"
    assert page.read_text(encoding="utf-8") == P.render_page(), (
        "book/paper_numbers.md differs from data/paper-numbers/numbers.json: run "
        "python -m gaplab.book.papers"
    )
    assert "file: book/paper_numbers" in (ROOT / "_toc.yml").read_text()


def test_the_page_shows_every_number_with_its_source():
    page = P.render_page()
    for n in P.paper_numbers().values():
        assert n.quantity.replace("|", "\\|") in page
        assert (n.text() if n.found else "*not found*") in page


def test_paper_number_reads_a_value_and_refuses_one_not_found():
    assert P.paper_number("liang-gap-clip") == 0.82
    with pytest.raises(P.PaperNumbersError, match="not found"):
        P.paper_number("fahim-same-modality")
    with pytest.raises(KeyError, match="no-such-number"):
        P.paper_number("no-such-number")


def _good() -> dict:
    return {
        "papers": {
            "liang2022mind": {
                "short": "Liang et al. 2022",
                "title": "Mind the Gap",
                "text": "main text",
                "repository": "Weixin-Liang/Modality-Gap",
                "commit": "8e20cb24efa4c5f89aad694f2f65eb43ffc46d10",
            }
        },
        "numbers": [
            {
                "id": "gap",
                "paper": "liang2022mind",
                "quantity": "gap distance",
                "value": 0.82,
                "setting": "CLIP ViT-B/32, 5,000 MS-COCO pairs",
                "source": {"kind": "paper", "where": "Sec. 4.2"},
                "note": "",
            }
        ],
    }


def _write(tmp_path, doc) -> Path:
    path = tmp_path / "numbers.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_a_good_file_loads(tmp_path):
    numbers = P.paper_numbers(_write(tmp_path, _good()))
    assert numbers["gap"].value == 0.82 and numbers["gap"].text() == "0.82"


def _broken(change):
    doc = _good()
    change(doc)
    return doc


def _n(doc):
    return doc["numbers"][0]


BROKEN = {
    "value as a string": (
        lambda d: _n(d).update(value="0.82"),
        "'value' must be a number or 'not found', got '0.82'",
    ),
    "unknown paper": (
        lambda d: _n(d).update(paper="smith2020"),
        "paper 'smith2020' is not one of liang2022mind",
    ),
    "missing setting": (lambda d: _n(d).pop("setting"), "'setting' is missing"),
    "unknown field": (lambda d: _n(d).update(valeu=1), "unknown field 'valeu'"),
    "duplicate id": (
        lambda d: d["numbers"].append(copy.deepcopy(_n(d))),
        "id 'gap' appears more than once",
    ),
    "source kind": (
        lambda d: _n(d)["source"].update(kind="memory"),
        "kind 'memory' is not one of",
    ),
    "authors' file without its name": (
        lambda d: _n(d)["source"].update(kind="authors_file"),
        "names its 'file'",
    ),
    "short commit": (
        lambda d: d["papers"]["liang2022mind"].update(commit="8e20cb2"),
        "'commit' must be 40 lower-case hex digits",
    ),
    "plus-minus on a number not found": (
        lambda d: _n(d).update(value="not found", plus_minus=0.1),
        "a number not found has no 'plus_minus'",
    ),
    "no numbers": (lambda d: d.update(numbers=[]), "'numbers' must be a non-empty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_is_refused_with_the_entry_and_the_problem(tmp_path, case):
    change, message = BROKEN[case]
    path = _write(tmp_path, _broken(change))
    with pytest.raises(P.PaperNumbersError) as err:
        P.paper_numbers(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_every_problem_is_listed_at_once(tmp_path):
    def two(d):
        _n(d).update(value=None)
        _n(d)["source"].update(kind="memory")

    with pytest.raises(P.PaperNumbersError) as err:
        P.paper_numbers(_write(tmp_path, _broken(two)))
    assert "number 0 ('gap')" in str(err.value)
    assert "'value' must be" in str(err.value) and "kind 'memory'" in str(err.value)


def test_a_missing_or_unreadable_file_says_so(tmp_path):
    with pytest.raises(P.PaperNumbersError, match="does not exist"):
        P.paper_numbers(tmp_path / "absent.json")
    with pytest.raises(P.PaperNumbersError, match=r"not valid JSON \(line 1"):
        P.paper_numbers(_write(tmp_path, "{'papers': }"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_cites_a_file_outside_the_repository(page):
    text = page.read_text(encoding="utf-8")
    for name in OUTSIDE:
        assert name not in text, (
            f"{page.relative_to(ROOT)} cites {name}, which a reader of the repository "
            "cannot open; cite the page book/paper_numbers (or a file in the repository)"
        )
    # a Markdown file named on its own (not an authors' path) must be one of the repository's
    known = _markdown_files()
    for name in re.findall(r"`([\w.-]+\.md)`", text):
        assert name in known, (
            f"{page.relative_to(ROOT)} names `{name}`, which is not in the repository"
        )
