"""The package's shape, read from its code: layers as folders, imports that only run down.

The import graph is read with ``ast`` (nothing is imported), including imports made inside functions, so a
lazy import cannot hide a dependency that runs back up. See README.md, "Layout".
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lib" / "gaplab"

#: each folder (or loose module) of gaplab and its floor: a module imports only from floors at or below its own
LAYERS = {
    "__init__": 0,
    "profiles": 0,
    "paths": 0,
    "storage": 0,
    "progress": 0,
    "metrics": 1,
    "data": 1,
    "training": 2,
    "runs": 3,
    "zoo": 4,
    "experiments": 5,
    "book": 6,
    "teach": 6,
    "cli": 7,
    "__main__": 8,
}
#: folders that import nothing else of gaplab
SELF_CONTAINED = {"metrics"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_LOOSE_MODULES = 5


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module a dotted import names: ``gaplab.metrics.l2m`` is an attribute of ``gaplab.metrics``."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path: Path):
    """``(line, target module, imported names, at top level?)`` for each gaplab import of ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gaplab":
                    yield node, _resolve(alias.name), [], id(node) in top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "gaplab":
                continue
            names = [a.name for a in node.names]
            for n in names:
                target = f"{name}.{n}"
                # "from gaplab.x import y" imports module gaplab.x.y when there is one
                mod = target if target in MODULES else _resolve(name)
                yield node, mod, [n], id(node) in top


def _floor(module: str) -> tuple[str, int]:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in LAYERS, (
        f"{module}: gaplab.{key} belongs to no layer; add it to LAYERS"
    )
    return key, LAYERS[key]


def test_every_import_runs_down_the_layers():
    upward = []
    for me, path in MODULES.items():
        my_folder, my_floor = _floor(me)
        for node, target, _, _ in _imports(path):
            folder, floor = _floor(target)
            if floor > my_floor:
                upward.append(
                    f"{me}:{node.lineno} imports {target} ({folder} is above {my_folder})"
                )
            if my_folder in SELF_CONTAINED and folder != my_folder:
                upward.append(
                    f"{me}:{node.lineno} imports {target}, but {my_folder} imports nothing else"
                )
    assert not upward, "imports that run back up:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _parents(module: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def test_no_import_circle():
    graph = {
        me: {t for _, t, _, _ in _imports(p) if t != me} for me, p in MODULES.items()
    }
    # a package's __init__ that imports its own submodules is no circle
    for me in graph:
        graph[me] -= {p for p in _parents(me)} - {me}
    for me in list(graph):
        graph[me] = {t for t in graph[me] if not me.startswith(t + ".")}
    circles = _cycles(graph)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_used_outside_its_module():
    found = []
    for me, path in MODULES.items():
        my_package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
        for node, target, names, _ in _imports(path):
            for n in names:
                if _private(n):
                    found.append(f"{me}:{node.lineno} imports {n} from {target}")
            private_parts = [p for p in target.split(".") if _private(p)]
            owner = target.rsplit(".", 1)[0]
            # a private module is shared inside its own folder only
            if private_parts and my_package != owner:
                found.append(f"{me}:{node.lineno} imports the private module {target}")
    assert not found, "private names used outside their module:\n" + "\n".join(found)


def _commented(lines: list[str], lineno: int) -> bool:
    return "#" in lines[lineno - 1] or lines[lineno - 2].strip().startswith("#")


def test_imports_sit_at_the_top_unless_a_comment_says_why():
    """Imports inside functions hide the real graph; where an optional heavy dependency is the reason, a
    comment on the line (or the line above) says so."""
    hidden = []
    for me, path in MODULES.items():
        tree = ast.parse(path.read_text())
        lines = path.read_text().splitlines()
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in top:
                continue
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            # imports guarded at module level (try/except, if TYPE_CHECKING) still sit at the top
            if node.col_offset <= 4 and _at_module_level(tree, node):
                continue
            if not _commented(lines, node.lineno):
                hidden.append(f"{me}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not hidden, (
        f"{len(hidden)} imports inside functions without a reason:\n"
        + "\n".join(hidden)
    )


def _at_module_level(tree: ast.Module, node: ast.AST) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, (ast.Try, ast.If)):
            if any(n is node for n in ast.walk(stmt)) and not any(
                isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                and any(n is node for n in ast.walk(f))
                for f in ast.walk(stmt)
            ):
                return True
    return False


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_and_functions_stay_small(module):
    path = MODULES[module]
    source = path.read_text()
    n = len(source.splitlines())
    assert n <= MAX_MODULE_LINES, f"{module} has {n} lines (at most {MAX_MODULE_LINES})"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{module}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_few_modules_sit_loose_beside_the_layers():
    loose = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE_MODULES, f"modules loose in lib/gaplab: {loose}"
    folders = {
        p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert folders <= set(LAYERS), (
        f"folders in no layer: {sorted(folders - set(LAYERS))}"
    )


def test_the_checks_above_can_fail():
    """The graph reader sees an upward import and a circle when there is one."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert _floor("gaplab.metrics.gap") == ("metrics", 1)
    assert _floor("gaplab.cli") == ("cli", 7)
    probe = PKG / "metrics" / "gap.py"
    targets = {t for _, t, _, _ in _imports(probe)}
    assert targets and all(t.startswith("gaplab.metrics") for t in targets)
    runs_cache = MODULES["gaplab.runs.mad"]
    assert any(t.startswith("gaplab.training") for _, t, _, _ in _imports(runs_cache))


def test_the_readme_describes_every_layer():
    readme = (PKG.parents[1] / "README.md").read_text()
    table = readme[readme.index("## The package's layers") :]
    folders = {k for k in LAYERS if (PKG / k).is_dir()}
    missing = sorted(f for f in folders if f"`{f}/`" not in table)
    assert not missing, f"README's layer table misses {missing}"
    for module in table.split("| chapter |", 1)[1].split("\n\n", 1)[0].split("`"):
        if module.endswith(".py") and "/" in module:
            assert (PKG / module).exists(), (
                f"README names {module}, which does not exist"
            )


def test_the_run_key_hashes_every_module_a_run_s_numbers_come_from():
    """A module the training loop reaches but the key does not hash lets a changed result pass under an old
    key. What the loop reaches is read from the import graph; only storage-side modules are left out."""
    from gaplab.runs.versions import TRAINING_CODE

    hashed = {_module_name(PKG / f) for f in TRAINING_CODE}
    # where a run is kept, not what it computes; profiles only fill a config's fields, which the key holds
    not_numbers = {
        "gaplab.training.checkpoint",
        "gaplab.storage",
        "gaplab.progress",
        "gaplab.paths",
        "gaplab.profiles",
    }
    seen, todo = set(), ["gaplab.training.train"]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo += [t for _, t, _, _ in _imports(MODULES[mod]) if t not in seen]
    reached = {m for m in seen if MODULES[m].name != "__init__.py"} - not_numbers
    missing = sorted(reached - hashed)
    assert not missing, (
        f"modules the training loop uses that the run key does not hash: {missing}"
    )


def test_scripts_import_only_what_exists():
    """Shell scripts run Python from heredocs that no linter reads: their gaplab imports are checked here."""
    import importlib

    wrong = []
    for script in sorted((PKG.parents[1] / "scripts").rglob("*.sh")):
        for line in script.read_text().splitlines():
            words = line.replace(",", " ").split()
            if len(words) < 4 or words[0] != "from" or words[2] != "import":
                continue
            if words[1].split(".")[0] != "gaplab":
                continue
            try:
                module = importlib.import_module(words[1])
            except ImportError as exc:
                wrong.append(f"{script.name}: {line.strip()} ({exc})")
                continue
            names = (
                [n for n in words[3:] if n != "as"][:1] if "as" in words else words[3:]
            )
            # a submodule is importable without being an attribute yet
            missing = [
                n
                for n in names
                if not hasattr(module, n)
                and importlib.util.find_spec(f"{words[1]}.{n}") is None
            ]
            if missing:
                wrong.append(f"{script.name}: {line.strip()} (no {missing})")
    assert not wrong, "\n".join(wrong)
