"""The repository's own consistency: dependencies, notebook pairs, the Colab cell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest
import tomllib
import yaml

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_equals_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_norm(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(
        d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d
    )
    listed = {_norm(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, (
        f"only in environment.yml: {listed - wanted}; only in pyproject: {wanted - listed}"
    )
    python = next(
        d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")
    )
    assert python == "python=3.11"


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_paired_in_sync_and_without_outputs(path):
    nb = json.loads(path.read_text())
    assert "py" in nb["metadata"]["jupytext"]["formats"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                "commit notebooks without outputs"
            )
    twin = ROOT / "notebooks_py" / f"{path.stem}.py"
    assert twin.exists(), f"{twin} is missing: run `make sync`"
    a, b = jupytext.read(path), jupytext.read(twin)

    def cells(n):
        return [
            (c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", [])))
            for c in n.cells
        ]

    assert cells(a) == cells(b), f"{path.name} and {twin.name} differ: run `make sync`"


def test_every_notebook_opens_with_the_generated_colab_cell_and_a_parameters_cell():
    # the cell is written by scripts/repo_address.py (make address) from _config.yml's
    # repository url: all ten are that text, so they clone what the launch buttons open
    address = load_script("scripts", "repo_address")
    expected = address.colab_cell(address.address(ROOT)[0]).strip()
    for path in NOTEBOOKS:
        nb = jupytext.read(path)
        first = nb.cells[0]
        assert first.cell_type == "code" and first.metadata.get("tags") == [
            "remove-cell"
        ], path.name
        assert first.source.strip() == expected, (
            f"{path.name}: the Colab cell is not the generated one: "
            "run `make address sync student`"
        )
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and re.search(
            r'^profile = "auto"', params[0].source, re.M
        )


def _only_records(source: str) -> bool:
    """True when every statement of a cell is a call of glue or check_claim."""
    import ast

    body = ast.parse(source).body
    return bool(body) and all(
        isinstance(s, ast.Expr)
        and isinstance(s.value, ast.Call)
        and isinstance(s.value.func, ast.Name)
        and s.value.func.id in ("glue", "check_claim")
        for s in body
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_and_record_only_cells_are_collapsed(path):
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tags = [c.metadata.get("tags", []) for c in code]
    params = next(i for i, t in enumerate(tags) if "parameters" in t)
    assert "hide-input" in tags[params + 1], "the setup cell should be hide-input"
    for cell, t in zip(code, tags):
        if _only_records(cell.source):
            assert "hide-input" in t, f"record-only cell not collapsed:\n{cell.source}"
        # a record's cell is plumbing (a list of names); its tables are what the reader reads
        if "record.show(" in cell.source:
            assert "hide-input" in t, f"record cell not collapsed:\n{cell.source}"
        # what the reader came for stays in view: the cells that draw a chart
        if re.search(r"\bcharts\.(?!setup\b)\w+\(", cell.source):
            assert "hide-input" not in t, f"a chart's cell is collapsed:\n{cell.source}"


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in toc


def test_citation_file_is_valid_and_matches_the_package():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "license", "repository-code"):
        assert cff[key], key
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert str(cff["version"]) == version
    cited = {ref["title"].split(":")[0] for ref in cff["references"]}
    assert cited == {
        "Two Effects, One Trigger",
        "Mind the Gap",
        "It's Not a Modality Gap",
    }


def test_every_training_chapter_shows_its_record():
    from gaplab.book.catalogue import CHAPTERS

    for stem in CHAPTERS:
        source = (ROOT / "notebooks_py" / f"{stem}.py").read_text()
        shown = re.findall(r'record\.show\(\s*"(\w+)"', source)
        assert shown == [stem], f"{stem} should end with record.show({stem!r}, ...)"
        assert "## At the papers' scale (recorded)" in source, stem
