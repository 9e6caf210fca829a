"""The repository's own consistency: dependencies, notebook pairs, the Colab cell."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
import tomllib
import yaml

import gaplab
from gaplab.cli.extras import DISTRIBUTIONS
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
PKG = ROOT / "lib" / "gaplab"
#: the extras each folder of gaplab is installed with (its module-level imports need no more)
FOLDER_EXTRAS = {
    "(loose)": [],
    "metrics": [],
    "cli": [],
    "data": ["models"],
    "training": ["models"],
    "runs": ["models"],
    "zoo": ["models"],
    "experiments": ["models"],
    # what the Colab cell installs (scripts/repo_address.py COLAB_EXTRAS): no site builders
    "book": ["models", "charts"],
    "teach": ["book"],
}


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def _name(req: str) -> str:
    """A requirement's distribution, as pip compares names (PEP 503)."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req.strip())[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _provided(extras) -> set[str]:
    """The distributions the core and ``extras`` install, following gaplab[...] within them."""
    out = {_name(r) for r in PROJECT["dependencies"]}
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in PROJECT["optional-dependencies"][extra]:
            inner = re.fullmatch(r"gaplab\[([\w,\s-]+)\]", req.strip())
            if inner:
                todo += [e.strip() for e in inner[1].split(",")]
            else:
                out.add(_name(req))
    return out


def _third_party_imports():
    """(module path, line, top-level module name, at module level?) of every import of
    another distribution in lib/gaplab, lazy ones included."""
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                mod = name.split(".")[0]
                if mod != "gaplab" and mod not in sys.stdlib_module_names:
                    yield path.relative_to(PKG), node.lineno, mod, id(node) in top


def test_the_core_is_numpy_scipy_scikit_learn_and_platformdirs():
    assert sorted(_name(r) for r in PROJECT["dependencies"]) == [
        "numpy",
        "platformdirs",
        "scikit-learn",
        "scipy",
    ]
    assert {"models", "charts", "book", "test", "realdata"} <= set(
        PROJECT["optional-dependencies"]
    )


def test_every_import_is_declared_in_the_extra_its_folder_installs_with():
    undeclared, misplaced = [], []
    everything = _provided(PROJECT["optional-dependencies"])
    for rel, line, mod, at_top in _third_party_imports():
        where = f"{rel}:{line} imports {mod}"
        dist = DISTRIBUTIONS.get(mod)
        if dist is None or _name(dist) not in everything:
            undeclared.append(f"{where}: add it to pyproject.toml and DISTRIBUTIONS")
            continue
        folder = rel.parts[0] if len(rel.parts) > 1 else "(loose)"
        extras = FOLDER_EXTRAS[folder]
        # lazy imports may reach further (torch for profile "auto", open_clip_train): the
        # line of gaplab.cli.extras names their extra when one is missing
        if at_top and _name(dist) not in _provided(extras):
            misplaced.append(f"{where} ({dist}), not in {extras or 'the core'}")
    assert not undeclared, "\n".join(undeclared)
    assert not misplaced, "\n".join(misplaced)


def test_the_scan_sees_what_the_core_must_not_import():
    found = {(str(rel), mod) for rel, _, mod, _ in _third_party_imports()}
    assert ("zoo/images.py", "PIL") in found and ("training/train.py", "tqdm") in found
    assert "torch" in _provided(["book"]) and "torch" not in _provided([])


def test_every_known_distribution_is_declared():
    everything = _provided(PROJECT["optional-dependencies"])
    assert {_name(d) for d in DISTRIBUTIONS.values()} <= everything


def test_the_colab_extras_hold_what_the_chapters_import():
    address = load_script("scripts", "repo_address")
    extras = address.COLAB_EXTRAS.split(",")
    assert FOLDER_EXTRAS["book"] == extras and "book" not in extras
    provided = _provided(extras)
    for path in sorted((ROOT / "notebooks_py").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module.split(".")[0]]
            else:
                continue
            for mod in mods:
                if mod in sys.stdlib_module_names or mod == "gaplab":
                    continue
                dist = DISTRIBUTIONS.get(mod, mod)
                assert _name(dist) in provided, f"{path.name} imports {mod}"


def test_ranges_not_pins_and_no_cap_on_torch():
    """Colab keeps its preinstalled torch: nothing may make pip replace it."""
    for extra, reqs in [
        ("core", PROJECT["dependencies"]),
        *PROJECT["optional-dependencies"].items(),
    ]:
        for req in reqs:
            assert "==" not in req and "~=" not in req, f"{extra}: {req} is a pin"
            if _name(req) in {"torch", "torchvision", "numpy"}:
                assert "<" not in req, f"{extra}: {req} caps what Colab has"


def test_the_version_is_the_packages_and_the_command_an_entry_point():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "gaplab.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", gaplab.__version__)
    assert PROJECT["scripts"] == {"gaplab": "gaplab.cli:main"}
    from gaplab.cli import main

    assert callable(main)


def test_mypy_checks_the_public_api():
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["files"][0] == "lib/gaplab/metrics" and mypy["python_version"] == "3.11"
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    ids = {h["id"]: h for repo in hooks["repos"] for h in repo["hooks"]}
    assert ids["mypy"]["entry"].startswith("mypy")


def test_environment_yml_equals_pyproject():
    project = PROJECT
    wanted = {_norm(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        # gaplab[models,...]: the extras it names are listed themselves
        wanted |= {_norm(r) for r in extra if not r.startswith("gaplab[")}
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


@pytest.mark.parametrize("path", NOTEBOOKS[:2], ids=lambda p: p.stem)
def test_another_jupytext_release_writes_the_same_chapter(path, monkeypatch):
    # CI installs the newest jupytext; a header that named its version made `make lint`
    # fail on every release (1.19.7 did), so jupytext.toml filters the version out
    import jupytext.header

    monkeypatch.setattr(jupytext.header, "__version__", "99.0.0")
    twin = ROOT / "notebooks_py" / f"{path.stem}.py"
    config = jupytext.config.load_jupytext_configuration_file(
        str(ROOT / "jupytext.toml")
    )
    text = jupytext.writes(jupytext.read(path), fmt="py:percent", config=config)
    assert "99.0.0" not in text
    assert text == twin.read_text(), f"{twin.name} changes when jupytext's version does"


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
        if "ladder.show(" in cell.source:
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
    # the version is written once, in gaplab/__init__.py (pyproject.toml reads it too)
    assert str(cff["version"]) == gaplab.__version__
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
        shown = re.findall(r'ladder\.show\(\s*"(\w+)"', source)
        assert shown == [stem], f"{stem} should end with ladder.show({stem!r}, ...)"
        assert "## At larger scales (recorded)" in source, stem
