"""Self-checks for the chapters' exercises: a student's answer against what the chapter computes.

Each exercise of the book has an :class:`Exercise` in :mod:`gaplab.teach.exercises`, under the label the
book gives it. The student notebooks (``make student``) follow every exercise with an answer cell that
sets one variable and a cell that calls :func:`check`. The check computes the expected value from the
notebook's own names (so it holds at every profile and on every machine), compares, and says "correct",
"not answered yet" or a hint. It never prints the expected value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Exercise", "NotReady", "Verdict", "check", "stored_run", "verdict"]


class NotReady(Exception):
    """The check needs something the student has not made yet (a training run); the message says what."""


def stored_run(config):
    """The finished MAD run of ``config`` if it is in the run cache; otherwise :class:`NotReady`, so that a
    check never starts a training of its own."""
    from gaplab import runs

    config = runs.resolve_glyphs(config)
    if not runs.is_stored(runs.run_key(config)):
        raise NotReady(
            "train the run the exercise asks for first (runs.get_or_train(...))."
        )
    return runs.get_or_train(config, progress=False)


@dataclass(frozen=True)
class Exercise:
    """How a student answers one of the book's exercises, and how the answer is checked.

    Exactly one of ``expected`` (a value the chapter computes, compared within ``rtol``/``atol``),
    ``accept`` (a test of the answer, for tasks with many right answers) or ``choices`` (multiple
    choice, with ``correct`` the right letter) says what is right.
    """

    label: str
    variable: str
    task: str
    expected: Callable[[dict], Any] | None = None
    accept: Callable[[Any, dict], bool] | None = None
    choices: tuple[str, ...] = ()
    correct: str | None = None
    rtol: float = 1e-4
    atol: float = 1e-6
    hint: str = ""
    # what a student might write; the tests fill it into the answer cell, it is never shown
    worked: str = field(default="", repr=False)

    def __post_init__(self):
        kinds = [self.expected is not None, self.accept is not None, bool(self.choices)]
        if sum(kinds) != 1:
            raise ValueError(
                f"{self.label}: give exactly one of expected, accept or choices"
            )
        if self.choices:
            letters = "abcdefgh"[: len(self.choices)]
            if self.correct not in tuple(letters):
                raise ValueError(
                    f"{self.label}: correct must be one of {tuple(letters)}"
                )
        if not re.fullmatch(r"[A-Za-z_]\w*", self.variable):
            raise ValueError(f"{self.label}: {self.variable!r} is not a Python name")
        if not re.fullmatch(r"[a-z_]+-ex\d+", self.label):
            raise ValueError(
                f"{self.label!r} is not a label of the form <chapter>-ex<N>"
            )

    @property
    def chapter(self) -> str:
        return self.label.rsplit("-ex", 1)[0]

    @property
    def letters(self) -> str:
        return "abcdefgh"[: len(self.choices)]


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
    label, since only the book's table of contents fixes the number."""
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
    :func:`verdict` returns it instead."""
    from gaplab.teach.exercises import exercise

    print(verdict(exercise(label), namespace, number).message)
