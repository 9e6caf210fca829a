"""The teaching kit: self-checks judge answers without giving them away, and the student notebooks are the
chapters without their solutions, current with their sources."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaplab.teach import Exercise, NotReady, student, verdict
from gaplab.teach.exercises import all_exercises, exercise

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks_py").glob("*.py"))
SOLUTION = re.compile(r"```\{solution\}[^\n]*\n(.*?)\n```", re.S)


def _labels(path: Path) -> list[str]:
    text = path.read_text()
    return re.findall(r"^# ```\{exercise\}\n# :label: (\S+)", text, re.M)


def _numeric(**kw):
    base = dict(
        label="toy-ex1",
        variable="answer",
        task="the mean of `x`.",
        expected=lambda ns: float(np.mean(ns["x"])),
        hint="average the entries.",
    )
    return Exercise(**{**base, **kw})


# --- verdicts -------------------------------------------------------------------------------------


def test_blank_or_missing_answers_are_not_answered_yet():
    ex = _numeric()
    for ns in ({"x": [1.0, 2.0]}, {"x": [1.0, 2.0], "answer": None}):
        v = verdict(ex, ns)
        assert v.status == "unanswered"
        assert "not answered yet" in v.message and "`answer`" in v.message


def test_a_right_answer_is_correct_and_a_wrong_one_gets_the_hint():
    ex = _numeric()
    assert verdict(ex, {"x": [1.0, 2.0], "answer": 1.5}).status == "correct"
    wrong = verdict(ex, {"x": [1.0, 2.0], "answer": 3.0})
    assert wrong.status == "wrong"
    assert "average the entries" in wrong.message
    assert "1.5" not in wrong.message


@pytest.mark.parametrize("answer", ["1.5", True, [1.5, 1.5], float("nan"), object()])
def test_answers_of_the_wrong_kind_are_named_not_judged(answer):
    v = verdict(_numeric(), {"x": [1.0, 2.0], "answer": answer})
    assert v.status in {"invalid", "wrong"}
    assert v.status != "correct"


def test_a_tensor_that_requires_grad_is_judged_not_a_crash():
    import torch

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    assert (
        verdict(_numeric(), {"x": [1.0, 2.0], "answer": x.mean()}).status == "correct"
    )
    assert verdict(_numeric(), {"x": [1.0, 2.0], "answer": x.sum()}).status == "wrong"


def test_a_notebook_missing_a_name_is_told_to_run_the_cells_above():
    v = verdict(_numeric(), {"answer": 1.5})  # no `x`: the cells above did not run
    assert v.status == "invalid"
    assert "no `x`" in v.message and "run the cells above" in v.message


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=20),
    st.floats(0.01, 10.0),
)
def test_the_verdict_never_prints_the_expected_value(xs, offset):
    ex = _numeric()
    expected = float(np.mean(xs))
    for answer in (expected, expected + offset, None):
        message = verdict(ex, {"x": xs, "answer": answer}).message
        for shown in (repr(expected), f"{expected:.3f}", f"{expected:.2f}"):
            if len(shown.strip("-0.")) >= 2:
                assert shown not in message


@settings(max_examples=40, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False), st.floats(1e-3, 1.0))
def test_tolerance_is_relative_to_the_expected_value(e, rel):
    ex = _numeric(expected=lambda ns: e, rtol=1e-4, atol=1e-9)
    assert verdict(ex, {"answer": e * (1 + 1e-6)}).status == "correct"
    off = e + max(abs(e), 1.0) * rel
    assert verdict(ex, {"answer": off}).status == "wrong"


def test_multiple_choice():
    ex = Exercise(
        "toy-ex2",
        variable="pick",
        task="the reason.",
        choices=("x", "y", "z"),
        correct="b",
    )
    assert verdict(ex, {"pick": "b"}).status == "correct"
    assert verdict(ex, {"pick": " B "}).status == "correct"
    assert verdict(ex, {"pick": "a"}).status == "wrong"
    bad = verdict(ex, {"pick": "d"})
    assert bad.status == "invalid" and '"a", "b", "c"' in bad.message


def test_accepting_constructions_and_malformed_ones():
    def accept(answer, ns):
        x, y = answer
        if np.shape(x) != np.shape(y):
            raise ValueError("two arrays of one shape")
        return bool(np.allclose(x, y))

    ex = Exercise("toy-ex3", variable="pair", task="a pair.", accept=accept)
    assert verdict(ex, {"pair": ([1, 2], [1, 2])}).status == "correct"
    assert verdict(ex, {"pair": ([1, 2], [1, 3])}).status == "wrong"
    bad = verdict(ex, {"pair": ([1, 2], [1])})
    assert bad.status == "invalid" and "two arrays of one shape" in bad.message


def test_a_check_that_needs_a_run_says_so_instead_of_training(tmp_path, monkeypatch):
    from gaplab import runs
    from gaplab.teach import stored_run

    monkeypatch.setenv("GAPLAB_CACHE", str(tmp_path))
    config = runs.mad_config("smoke", k=5)
    with pytest.raises(NotReady):
        stored_run(config)
    ex = _numeric(expected=lambda ns: stored_run(config).history[-1]["rmg"])
    v = verdict(ex, {"answer": 0.5})
    assert v.status == "invalid" and "train the run" in v.message
    assert not any(tmp_path.iterdir()), "a check must not start a training"


@pytest.mark.parametrize(
    "kw, problem",
    [
        (dict(expected=None), "exactly one"),
        (dict(choices=("a", "b")), "exactly one"),
        (dict(variable="not a name"), "not a Python name"),
        (dict(label="Toy 1"), "label"),
    ],
)
def test_malformed_exercises_are_refused(kw, problem):
    with pytest.raises(ValueError, match=problem):
        _numeric(**kw)


# --- the book's exercises -------------------------------------------------------------------------


def test_every_exercise_of_the_book_has_a_self_check_and_no_check_is_orphaned():
    in_book = {label for path in CHAPTERS for label in _labels(path)}
    directives = sum(p.read_text().count("```{exercise}") for p in CHAPTERS)
    assert len(in_book) == directives > 0
    assert in_book == set(all_exercises())


@pytest.mark.parametrize("label", sorted(all_exercises()))
def test_worked_answers_set_their_variable(label):
    ex = exercise(label)
    tree = ast.parse(ex.worked)
    targets = {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    assert ex.variable in targets
    assert all(len(line) <= 88 for line in ex.worked.splitlines())
    assert ex.hint and ex.task


# --- student notebooks ----------------------------------------------------------------------------


def test_student_notebooks_are_current(tmp_path):
    written = student.write_student_notebooks(ROOT / "notebooks_py", tmp_path)
    committed = ROOT / "notebooks" / "student"
    assert {p.name for p in written} == {p.name for p in committed.glob("*.ipynb")}
    for path in written:
        assert path.read_text() == (committed / path.name).read_text(), (
            f"{path.name} is stale: run `make student`"
        )


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebooks_hold_no_solution(source):
    nb = nbformat.read(ROOT / "notebooks" / "student" / f"{source.stem}.ipynb", 4)
    text = "\n".join(c.source for c in nb.cells)
    assert "{solution}" not in text and "{exercise}" not in text
    chapter = "\n".join(
        line[2:] if line.startswith("# ") else line.lstrip("#")
        for line in source.read_text().splitlines()
    )
    solutions = SOLUTION.findall(chapter)
    assert len(solutions) == len(_labels(source))
    for body in solutions:
        for sentence in re.split(r"(?<=[.:;])\s+", body):
            sentence = sentence.strip()
            if len(sentence) >= 30 and not sentence.startswith(":"):
                assert sentence not in text, (
                    f"solution text in the student notebook: {sentence}"
                )


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_each_exercise_is_followed_by_an_answer_cell_and_a_check(source):
    nb = nbformat.read(ROOT / "notebooks" / "student" / f"{source.stem}.ipynb", 4)
    labels = _labels(source)
    numbers = student.book_numbers()
    for label in labels:
        ex, n = exercise(label), numbers[label]
        heading = [
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and f"### Exercise {n}\n" in c.source
        ]
        assert len(heading) == 1, label
        answer, check = nb.cells[heading[0] + 1], nb.cells[heading[0] + 2]
        assert answer.cell_type == check.cell_type == "code"
        assert answer.source.endswith(f"\n{ex.variable} = None")
        assert answer.source.startswith(f"# Exercise {n}: ")
        assert f'check("{label}", globals(), number={n})' in check.source
    # the chapter itself is all there: every code cell of the source appears in order
    import jupytext

    code = [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]
    kept = [c.source for c in nb.cells if c.cell_type == "code"]
    assert [c for c in kept if c in code] == code


def test_a_later_chapter_is_picked_up_and_an_unchecked_exercise_is_refused(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    text = (ROOT / "notebooks_py" / "gap_geometry.py").read_text()
    (src / "gap_geometry.py").write_text(text)
    (src / "zz_new_chapter.py").write_text(
        text.replace("gap_geometry-ex", "zz_new_chapter-ex")
    )
    with pytest.raises(
        KeyError, match="no self-check for exercise 'zz_new_chapter-ex1'"
    ):
        student.write_student_notebooks(src, tmp_path / "out")
    (src / "zz_new_chapter.py").unlink()
    assert [p.name for p in student.write_student_notebooks(src, tmp_path / "out")] == [
        "gap_geometry.ipynb"
    ]


def test_book_numbers_run_through_the_book_in_the_order_of_the_toc(tmp_path):
    numbers = student.book_numbers()
    assert sorted(numbers.values()) == list(range(1, len(numbers) + 1))
    assert set(numbers) == {label for src in CHAPTERS for label in _labels(src)}
    # within a chapter, in the chapter's order; chapters in the order of _toc.yml
    toc = (ROOT / "_toc.yml").read_text()
    first = {s.stem: numbers[_labels(s)[0]] for s in CHAPTERS if _labels(s)}
    assert sorted(first, key=first.get) == sorted(first, key=toc.index)
    # a chapter outside the table of contents comes last
    src = tmp_path / "notebooks_py"
    src.mkdir()
    for name in ("gap_geometry", "mad_training"):
        (src / f"{name}.py").write_text(
            (ROOT / "notebooks_py" / f"{name}.py").read_text()
        )
    (tmp_path / "_toc.yml").write_text("- file: notebooks/mad_training\n")
    local = student.book_numbers(src)
    assert local["mad_training-ex1"] == 1 and local["gap_geometry-ex1"] == 3


def test_check_prints_the_number_it_is_given(capsys):
    from gaplab.teach import check

    check("gap_geometry-ex1", {}, number=17)
    assert capsys.readouterr().out.startswith("Exercise 17: not answered yet")


def test_rehearsal_checks_every_exercise_blank_then_worked():
    nb = student.rehearsal_notebook(
        student.student_notebook(ROOT / "notebooks_py" / "gap_geometry.py")
    )
    checks = [c.source for c in nb.cells if 'check("gap_geometry-ex1"' in c.source]
    assert len(checks) == 2
    assert exercise("gap_geometry-ex1").worked in [c.source for c in nb.cells]
