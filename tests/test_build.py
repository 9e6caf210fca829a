"""The book build's contract, on a two-page book built in a temporary folder with the real configuration:
a failed claim check fails the build, and a rebuild with no change executes nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.notebooks


def _book(tmp_path: Path, code: str) -> Path:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.pop("bibtex_bibfiles", None)
    config["sphinx"]["config"]["extensions"].remove("sphinxcontrib.bibtex")
    for key in ("html_extra_path", "bibtex_reference_style"):
        config["sphinx"]["config"].pop(key, None)
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Chapter"),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, tmp_path / "chapter.ipynb")
    return tmp_path


def _build(book: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_book.py"), str(book)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_failed_claim_fails_the_build(tmp_path):
    book = _book(
        tmp_path,
        'from gaplab.book import check_claim\ncheck_claim("a claim", False, "x = 0", "cpu")',
    )
    result = _build(book)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "ClaimNotReproduced" in result.stdout + result.stderr
    assert "book build FAILED" in result.stdout


def test_a_rebuild_without_changes_executes_nothing(tmp_path):
    book = _book(tmp_path, 'print("executed")')
    first = _build(book)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "Executed notebook" in first.stdout + first.stderr
    second = _build(book)
    assert second.returncode == 0
    assert "Executed notebook" not in second.stdout + second.stderr
    # a change to a prose page rebuilds that page, still without executing the notebook
    (book / "intro.md").write_text("# Intro\n\nEdited.\n")
    third = _build(book)
    assert (
        third.returncode == 0 and "Executed notebook" not in third.stdout + third.stderr
    )
    shutil.rmtree(book / "_build")


def test_a_gaplab_change_re_executes_every_notebook(tmp_path):
    book = _book(tmp_path, 'print("executed")')
    assert _build(book).returncode == 0
    # pretend gaplab changed since that build
    (book / "_build" / ".gaplab-sources.sha256").write_text("stale\n")
    again = _build(book)
    assert again.returncode == 0
    assert "Executed notebook" in again.stdout + again.stderr


def test_progress_lines_from_a_chapter_reach_the_build_log(tmp_path):
    book = _book(
        tmp_path,
        'from gaplab.runs import progress_line\nprogress_line("model m trained, ETA 3 min")',
    )
    result = _build(book)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "gaplab: model m trained, ETA 3 min" in result.stdout
    shutil.rmtree(book / "_build")


def test_the_api_reference_builds_without_a_warning(tmp_path):
    # the reference pages with the real configuration: a docstring autodoc cannot render (a stray
    # |...| read as a substitution, a bad indent) or a name it cannot import is a warning here
    book = _book(tmp_path, 'print("executed")')
    (book / "book").mkdir()
    (book / "notebooks").mkdir()
    for page in ("api", "measure_your_model"):
        shutil.copy(ROOT / "book" / f"{page}.md", book / "book" / f"{page}.md")
    (book / "notebooks" / "cone_temperature.md").write_text("# Cone\n")
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: book/measure_your_model\n"
        "  - file: book/api\n  - file: notebooks/cone_temperature\n"
    )
    result = _build(book)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-2000:]
    # Jupyter Book's own default config names the sphinx_comments extension this book leaves out
    warnings = [
        line
        for line in log.splitlines()
        if re.search(r"WARNING|ERROR", line) and "comments_config" not in line
    ]
    assert warnings == [], "\n".join(warnings)
    html = (book / "_build" / "html" / "book" / "api.html").read_text(encoding="utf-8")
    assert 'id="gaplab.metrics.l2m"' in html and 'id="gaplab.runs.get_or_train"' in html
    shutil.rmtree(book / "_build")
