"""The examples of the API reference run: every ``>>>`` session of the book's prose pages, and the docstring
examples of every module the API page (book/api.md) documents, each public name there with one example at
least. Also: the version is written once, and the citation file and the changelog agree with it."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest
import yaml

import gaplab

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "book" / "api.md"
PAGES = sorted(p for p in (ROOT / "book").glob("*.md") if ">>>" in p.read_text())
#: an automodule directive of the API page, with its ``:members:`` list when it names some
_AUTOMODULE = re.compile(
    r"^\.\. automodule:: ([\w.]+)\n((?:[ \t]+:[\w-]+:.*\n)*)", re.MULTILINE
)


def documented_modules() -> dict[str, list[str]]:
    """The modules the API page documents, each with the names it shows: those its ``:members:`` option
    lists, or else the module's ``__all__`` (what autodoc shows for a bare ``:members:``)."""
    out = {}
    for name, options in _AUTOMODULE.findall(API_PAGE.read_text(encoding="utf-8")):
        listed = re.search(r":members:[ \t]*(\S.*)", options)
        if listed:
            out[name] = [m.strip() for m in listed.group(1).split(",")]
        else:
            out[name] = list(importlib.import_module(name).__all__)
    return out


MODULES = documented_modules()


def _run(tests: list[doctest.DocTest]) -> tuple[int, str]:
    """Run ``tests`` as ``doctest`` would; the number of failed examples and the report of each."""
    runner = doctest.DocTestRunner(optionflags=0)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    return runner.failures, "".join(report)


def _own_tests(module, names: list[str]) -> list[doctest.DocTest]:
    """The doctests of ``module``'s docstring and of the objects behind ``names``, wherever they are
    defined (a package re-exports names from its modules, which DocTestFinder alone would not follow)."""
    finder = doctest.DocTestFinder()
    tests = {t.name: t for t in finder.find(module, module.__name__)}
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isroutine(obj):
            home = inspect.getmodule(obj)
            for t in finder.find(obj, f"{home.__name__}.{name}", module=home):
                tests.setdefault(t.name, t)
    return [t for t in tests.values() if t.examples]


def _without_example(
    module, names: list[str], tests: list[doctest.DocTest]
) -> list[str]:
    """The names in ``names`` with no example. A function needs one in its own docstring; a class, an
    exception, a constant or a module is covered by an example of ``module`` that uses it (a class's own
    docstring or its methods' included)."""
    sources = "\n".join(e.source + e.want for t in tests for e in t.examples)
    missing = []
    for name in names:
        obj = getattr(module, name)
        own = [
            t
            for t in tests
            if t.name.rsplit(".", 1)[-1] == name or f".{name}." in f"{t.name}."
        ]
        needs_own = inspect.isroutine(obj)
        if needs_own and not own:
            missing.append(name)
        elif not needs_own and not re.search(rf"\b{re.escape(name)}\b", sources):
            missing.append(name)
    return missing


@pytest.fixture
def quiet_cache(tmp_path, monkeypatch):
    """The examples store runs and embeddings in a fresh folder, not the user's caches; what
    they set in the environment (the run cache's variables) is undone afterwards."""
    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path / "runs"))
    monkeypatch.setenv("GAPLAB_EMBED_CACHE", str(tmp_path / "embeddings"))
    for name in ("GAPLAB_BUILD_LOG", "GAPLAB_GRID", "GAPLAB_GRID_MAX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_api_page_documents_the_public_modules():
    assert {
        "gaplab.metrics",
        "gaplab.metrics.geometry",
        "gaplab.metrics.correlation",
        "gaplab.metrics.closing",
        "gaplab.metrics.arithmetic",
        "gaplab.metrics.organisation",
        "gaplab.zoo.report",
        "gaplab.runs",
        "gaplab.teach",
    } <= set(MODULES)
    assert MODULES["gaplab.zoo.report"] == [
        "report",
        "report_embeddings",
        "format_table",
    ]
    for module, names in MODULES.items():
        public = set(importlib.import_module(module).__all__)
        assert set(names) <= public, f"{module}: the page shows names not in __all__"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_prose_page_s_examples_give_their_outputs(page, quiet_cache):
    text = page.read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)
    failures, report = _run([test])
    assert test.examples, f"{page.name} has no examples"
    assert failures == 0, report


def test_the_measure_page_is_among_the_tested_pages():
    assert ROOT / "book" / "measure_your_model.md" in PAGES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_documented_module_s_examples_run(name, quiet_cache):
    module = importlib.import_module(name)
    tests = _own_tests(module, MODULES[name])
    failures, report = _run(tests)
    assert failures == 0, report


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_documented_name_has_an_example(name):
    module = importlib.import_module(name)
    tests = _own_tests(module, MODULES[name])
    missing = _without_example(module, MODULES[name], tests)
    assert missing == [], f"{name}: public names without an example: {missing}"


def test_a_wrong_output_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```pycon\n>>> 1 + 1\n3\n\n```\n")
    test = doctest.DocTestParser().get_doctest(page.read_text(), {}, "p", str(page), 0)
    failures, report = _run([test])
    assert failures == 1 and "Expected:\n    3\nGot:\n    2" in report


def _changelog_versions() -> list[str]:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d\d-\d\d$", text, re.MULTILINE)


def test_the_version_is_written_once():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(citation["version"]) == gaplab.__version__
    versions = _changelog_versions()
    assert versions and versions[0] == gaplab.__version__, (
        f"CHANGELOG.md's top entry is {versions[:1]}, the package is {gaplab.__version__}"
    )
    assert versions == sorted(
        versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True
    )
    # the book reads the version from the package rather than repeating it
    api = API_PAGE.read_text(encoding="utf-8")
    assert ".. autodata:: gaplab.__version__" in api
    assert gaplab.__version__ not in api
