"""Student notebooks: every chapter with its solutions removed and a place to answer each exercise.

Run ``make student`` (or ``python -m gaplab.teach.student``). Each ``notebooks_py/<chapter>.py`` becomes
``notebooks/student/<chapter>.ipynb``: the exercise directives become plain Markdown (Jupyter and Colab do
not render MyST directives), every solution directive is dropped, and each exercise is followed by an
answer cell (one variable, set to ``None``) and a cell that calls :func:`gaplab.teach.check`. The notebooks
are generated, never edited by hand; a test checks that the committed ones are current.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import nbformat

from gaplab.paths import book_root, toc_order
from gaplab.teach.exercises import exercise

__all__ = [
    "ROOT",
    "book_numbers",
    "student_notebook",
    "write_student_notebooks",
    "rehearsal_notebook",
    "rehearse",
    "main",
]

ROOT = book_root()
SOURCES = ROOT / "notebooks_py"
TARGET = ROOT / "notebooks" / "student"

_EXERCISE = re.compile(r"```\{exercise\}[^\n]*\n(?P<body>.*?)\n```", re.S)
_SOLUTION = re.compile(r"\n*```\{solution\}.*?\n```\n*", re.S)
_LABEL = re.compile(r"^:label:\s*(\S+)\s*$", re.M)
_OPTION = re.compile(r"^:[\w-]+:.*$\n?", re.M)
_GLUE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_]\w*)(?::[^`]*)?`")

BANNER = (
    "**Student version.** Generated from the book's chapter by `make student`: the solutions are "
    "left out, and every exercise has an answer cell and a self-check cell. Run the chapter from the "
    "top, answer in the empty cells, then run the check below each one."
)


def book_numbers(sources=SOURCES, toc=None) -> dict[str, int]:
    """label -> the number the built book gives the exercise.

    sphinx-exercise numbers the exercises through the whole book, in the order of the table of contents
    (``_toc.yml`` beside ``sources``); chapters it does not list follow, in name order. The student
    notebooks use the same numbers, so "Exercise 20" is one exercise on the site and in the notebook.
    """
    sources = Path(sources)
    toc = Path(toc) if toc is not None else sources.parent / "_toc.yml"
    ranked = toc_order((p.stem for p in sources.glob("*.py")), toc)
    labels = [label for stem in ranked for label in _labels(sources / f"{stem}.py")]
    return {label: i for i, label in enumerate(labels, start=1)}


def _labels(source: Path) -> list[str]:
    """The labels of a chapter's exercises, in the chapter's order."""
    import jupytext  # optional: a book-building tool, not a dependency of gaplab

    cells = jupytext.read(source).cells
    text = "\n\n".join(c.source for c in cells if c.cell_type == "markdown")
    found = (_LABEL.search(body) for body in _EXERCISE.findall(text))
    return [m.group(1) for m in found if m]


def _exercise_markdown(body: str, numbers: dict) -> tuple[str, str]:
    """(label, Markdown) of one exercise directive's body."""
    found = _LABEL.search(body)
    if not found:
        raise ValueError(f"an exercise without a :label: option:\n{body[:200]}")
    label = found.group(1)
    text = _OPTION.sub("", body).strip()
    # a glued value has no renderer outside the book: name the variable that holds it instead
    text = _GLUE.sub(lambda m: f"(the chapter's `{m.group(1)}`)", text)
    exercise(label)  # an exercise without a self-check fails here, by name
    return label, f"### Exercise {numbers[label]}\n\n{text}"


def _answer_source(label: str, number: int) -> str:
    ex = exercise(label)
    lines = [f"# Exercise {number}: {ex.task}"]
    if ex.choices:
        letters = ", ".join(f'"{c}"' for c in ex.letters)
        lines[0] += f" Store {letters} in `{ex.variable}`."
        lines += [f"#   ({c}) {text}" for c, text in zip(ex.letters, ex.choices)]
    lines.append(f"{ex.variable} = None")
    return "\n".join(lines)


def _check_source(label: str, number: int) -> str:
    return f'from gaplab.teach import check\n\ncheck("{label}", globals(), number={number})'


def student_notebook(
    source: Path, numbers: dict | None = None
) -> nbformat.NotebookNode:
    """The student version of one chapter (a ``notebooks_py`` percent script); ``numbers`` are the
    book's exercise numbers (default: :func:`book_numbers` of the chapter's folder)."""
    import jupytext  # optional: a book-building tool, not a dependency of gaplab

    source = Path(source)
    numbers = book_numbers(source.parent) if numbers is None else numbers
    chapter = jupytext.read(source)
    out = nbformat.v4.new_notebook(metadata=dict(chapter.metadata))
    out.metadata.pop("jupytext", None)
    banner_done = False
    for cell in chapter.cells:
        if cell.cell_type != "markdown" or "```{" not in cell.source:
            out.cells.append(_copy(cell))
            if cell.cell_type == "markdown" and not banner_done:
                out.cells.append(nbformat.v4.new_markdown_cell(BANNER))
                banner_done = True
            continue
        text = _SOLUTION.sub("\n\n", cell.source).strip()
        labels = []
        text = _EXERCISE.sub(lambda m: _replace(m, labels, numbers), text)
        if text:
            out.cells.append(nbformat.v4.new_markdown_cell(text))
        for label in labels:
            n = numbers[label]
            out.cells.append(nbformat.v4.new_code_cell(_answer_source(label, n)))
            out.cells.append(nbformat.v4.new_code_cell(_check_source(label, n)))
    # stable ids, so that regenerating an unchanged chapter rewrites nothing
    for i, cell in enumerate(out.cells):
        cell.id = f"{source.stem[:40]}-{i:03d}"
    nbformat.validator.normalize(out)
    return out


def _replace(match, labels: list, numbers: dict) -> str:
    label, text = _exercise_markdown(match.group("body"), numbers)
    labels.append(label)
    return text


def _copy(cell):
    new = nbformat.from_dict(dict(cell))
    if new.cell_type == "code":
        new.outputs, new.execution_count = [], None
    return new


def write_student_notebooks(sources=SOURCES, target=TARGET) -> list[Path]:
    """Write the student notebook of every chapter in ``sources`` into ``target``; the paths written."""
    sources, target = Path(sources), Path(target)
    chapters = sorted(sources.glob("*.py"))
    if not chapters:
        raise FileNotFoundError(f"no chapter sources (*.py) in {sources}")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    numbers = book_numbers(sources)
    for src in chapters:
        nb = student_notebook(src, numbers)
        path = target / f"{src.stem}.ipynb"
        text = nbformat.writes(nb) + "\n"
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".ipynb.tmp")
            tmp.write_text(text)
            tmp.replace(path)
        written.append(path)
    stale = {p.name for p in target.glob("*.ipynb")} - {p.name for p in written}
    for name in stale:
        (target / name).unlink()
    return written


def rehearsal_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A student notebook in which every exercise is checked twice: left blank, then answered with the
    exercise's worked answer. What a teacher (and the tests) run to see that every self-check works."""
    out = nbformat.from_dict(dict(nb))
    cells = []
    for cell in out.cells:
        cells.append(cell)
        found = re.fullmatch(
            r'from gaplab.teach import check\n\ncheck\("([^"]+)", globals\(\), number=\d+\)',
            cell.source,
        )
        if cell.cell_type == "code" and found:
            ex = exercise(found.group(1))
            if not ex.worked:
                raise ValueError(
                    f"exercise {ex.label} has no worked answer to rehearse"
                )
            cells.append(nbformat.v4.new_code_cell(ex.worked))
            cells.append(nbformat.v4.new_code_cell(cell.source))
    out.cells = cells
    return out


def _printed(cell) -> str:
    return "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout"
    )


def rehearse(
    chapter: str, *, profile: str = "smoke", workdir=None
) -> dict[str, tuple[str, str]]:
    """Execute the rehearsal of one chapter's student notebook at ``profile``; label ->
    (what the check said with the answer blank, what it said with the worked answer).
    The notebooks are written to ``workdir`` when one is given (and kept there), else to
    a temporary folder that is removed afterwards, also when the rehearsal fails."""
    try:
        import papermill  # optional: only rehearsals execute notebooks
    except ImportError as err:
        raise ImportError(
            "rehearsing needs papermill: pip install 'gaplab[test]'"
        ) from err

    src = SOURCES / f"{chapter}.py"
    if not src.is_file():
        raise FileNotFoundError(f"no chapter {chapter!r}: {src} does not exist")
    if workdir is not None:
        return _rehearse(src, chapter, profile, Path(workdir), papermill)
    # a folder of its own, gone again however the rehearsal ends (a CI run rehearses
    # every chapter, and each left one behind in /tmp)
    with tempfile.TemporaryDirectory(prefix="gaplab-rehearsal-") as tmp:
        return _rehearse(src, chapter, profile, Path(tmp), papermill)


def _rehearse(src: Path, chapter: str, profile: str, workdir: Path, papermill) -> dict:
    path = workdir / f"{chapter}.ipynb"
    nbformat.write(rehearsal_notebook(student_notebook(src)), path)
    done = workdir / f"{chapter}.executed.ipynb"
    papermill.execute_notebook(
        str(path),
        str(done),
        parameters={"profile": profile},
        kernel_name="python3",
        cwd=str(TARGET if TARGET.is_dir() else ROOT / "notebooks"),
        progress_bar=False,
    )
    said: dict[str, list[str]] = {}
    for cell in nbformat.read(done, as_version=4).cells:
        found = (
            re.search(r'check\("([^"]+)"', cell.source)
            if cell.cell_type == "code"
            else None
        )
        if found:
            said.setdefault(found.group(1), []).append(_printed(cell).strip())
    return {label: tuple(texts) for label, texts in said.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        # what people type: argparse would otherwise name the file, "student.py"
        prog="python -m gaplab.teach.student",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--sources",
        default=SOURCES,
        type=Path,
        metavar="DIR",
        help="the chapters' percent scripts to read (default: notebooks_py/)",
    )
    parser.add_argument(
        "--out",
        default=TARGET,
        type=Path,
        metavar="DIR",
        help="where to write the student notebooks; notebooks there of chapters that "
        "no longer exist are removed (default: notebooks/student/)",
    )
    parser.add_argument(
        "--rehearse",
        metavar="CHAPTER",
        help="instead: run CHAPTER's student notebook at smoke, each exercise checked "
        "blank and then with its worked answer; exit 1 if a check says otherwise",
    )
    args = parser.parse_args(argv)
    if args.rehearse:
        failed = 0
        for label, texts in rehearse(args.rehearse).items():
            ok = (
                len(texts) == 2
                and "not answered yet" in texts[0]
                and texts[1].endswith("correct.")
            )
            failed += not ok
            print(f"{'ok ' if ok else 'BAD'} {label}: {' | '.join(texts)}")
        return 1 if failed else 0
    for path in write_student_notebooks(args.sources, args.out):
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
