"""Self-checks for the chapters' exercises: a student's answer against what the chapter computes.

Each exercise of the book has an :class:`Exercise` in :mod:`gaplab.teach.exercises`, under the label the
book gives it. The student notebooks (``make student``) follow every exercise with an answer cell that
sets one variable and a cell that calls :func:`check`. The check computes the expected value from the
notebook's own names (so it holds at every profile and on every machine), compares, and says "correct",
"not answered yet" or a hint. It never prints the expected value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaplab.teach.exercises import exercise
from gaplab.teach.spec import Exercise, NotReady, stored_run

__all__ = ["Exercise", "NotReady", "Verdict", "check", "stored_run", "verdict"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``status`` is "correct", "wrong", "unanswered" or "invalid"."""

    status: str
    message: str

    def __str__(self) -> str:
        return self.message


def _as_floats(value) -> np.ndarray:
    """``value`` as a float array; a torch tensor may require grad or live on a GPU."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def _close(answer, expected, rtol: float, atol: float) -> bool:
    try:
        a = _as_floats(answer)
        e = _as_floats(expected)
    except (TypeError, ValueError, RuntimeError):
        return False
    if a.shape != e.shape:
        return False
    return bool(np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=False))


def _is_number_like(value) -> bool:
    if isinstance(value, (bool, str, bytes)):
        return False
    try:
        arr = _as_floats(value)
    except (TypeError, ValueError, RuntimeError):
        return False
    return bool(np.all(np.isfinite(arr)))


def verdict(ex: Exercise, namespace: dict, number: int | None = None) -> Verdict:
    """Judge the answer stored in ``namespace[ex.variable]`` (None or missing: not answered yet).
    ``number`` is the exercise's number in the book; without it the verdict names the exercise by its
    label, since only the book's table of contents fixes the number.

    An exercise of your own, with the value it expects, judged three times:

    >>> from gaplab.teach import Exercise, verdict
    >>> ex = Exercise("my_chapter-ex1", variable="answer", task="two plus two", expected=lambda ns: 4.0)
    >>> verdict(ex, {"answer": 4})
    Verdict(status='correct', message='Exercise my_chapter-ex1: correct.')
    >>> print(verdict(ex, {"answer": 5}, number=1))
    Exercise 1: not yet.
    >>> verdict(ex, {"answer": None}).status
    'unanswered'

    A multiple-choice exercise takes a letter:

    >>> quiz = Exercise("my_chapter-ex2", variable="choice", task="which?", choices=("yes", "no"), correct="b")
    >>> print(verdict(quiz, {"choice": "c"}))
    Exercise my_chapter-ex2: `choice` should be one of "a", "b".
    """
    head = f"Exercise {ex.label if number is None else number}"
    if not isinstance(namespace, dict):
        return Verdict(
            "invalid",
            f"{head}: cannot check: pass the notebook's variables as a dict, "
            f"`globals()`, not {type(namespace).__name__}.",
        )
    try:
        return _verdict(ex, namespace, head)
    except NotReady as why:
        return Verdict("invalid", f"{head}: cannot check yet: {why}")


def _verdict(ex: Exercise, namespace: dict, head: str) -> Verdict:
    answer = namespace.get(ex.variable)
    if answer is None:
        return Verdict(
            "unanswered",
            f"{head}: not answered yet (store your answer in `{ex.variable}`).",
        )
    if ex.choices:
        if not isinstance(answer, str) or answer.strip().lower() not in tuple(
            ex.letters
        ):
            options = ", ".join(f'"{c}"' for c in ex.letters)
            return Verdict(
                "invalid", f"{head}: `{ex.variable}` should be one of {options}."
            )
        ok = answer.strip().lower() == ex.correct
    elif ex.accept is not None:
        try:
            ok = bool(ex.accept(answer, namespace))
        except (
            Exception
        ) as err:  # a malformed answer is the student's to fix, not a crash
            return Verdict("invalid", f"{head}: could not check `{ex.variable}`: {err}")
    else:
        if not _is_number_like(answer):
            return Verdict(
                "invalid",
                f"{head}: `{ex.variable}` should be a finite number "
                f"(or an array of them), not {type(answer).__name__}.",
            )
        try:
            expected = ex.expected(namespace)
        except KeyError as missing:
            return Verdict(
                "invalid",
                f"{head}: cannot check yet: this notebook has no `{missing.args[0]}`; "
                "run the cells above the exercise first.",
            )
        ok = _close(answer, expected, ex.rtol, ex.atol)
    if ok:
        return Verdict("correct", f"{head}: correct.")
    hint = f" Hint: {ex.hint}" if ex.hint else ""
    return Verdict("wrong", f"{head}: not yet.{hint}")


def check(label: str, namespace: dict, number: int | None = None) -> None:
    """Print the verdict on the answer to the exercise ``label`` stored in ``namespace`` (a notebook
    passes ``globals()``; the student notebooks pass the book's ``number`` of the exercise too).
    :func:`verdict` returns it instead.

    >>> from gaplab.teach import check
    >>> check("gap_geometry-ex3", {"l2m_shifted": None}, number=3)
    Exercise 3: not answered yet (store your answer in `l2m_shifted`).
    >>> check("gap_geometry-ex3", "not a dict")
    Exercise gap_geometry-ex3: cannot check: pass the notebook's variables as a dict, `globals()`, not str.
    """
    print(verdict(exercise(label), namespace, number).message)
