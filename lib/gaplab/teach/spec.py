"""What an exercise of the book is: :class:`Exercise` (its answer variable and how the answer is judged),
:class:`NotReady` and :func:`stored_run` for checks that need a finished training run.

The chapter modules of :mod:`gaplab.teach.exercises` define their exercises with these;
:mod:`gaplab.teach.selfcheck` judges the answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Exercise", "NotReady", "stored_run"]


class NotReady(Exception):
    """The check needs something the student has not made yet (a training run); the message says what."""


def stored_run(config):
    """The finished MAD run of ``config`` if it is in the run cache; otherwise :class:`NotReady`, so that a
    check never starts a training of its own.

    >>> from gaplab import runs
    >>> from gaplab.teach import NotReady, stored_run
    >>> config = runs.mad_config("smoke", steps=2, eval_every=2, seed=7)
    >>> try:
    ...     stored_run(config)
    ... except NotReady as why:
    ...     print(why)
    train the run the exercise asks for first (runs.get_or_train(...)).
    >>> trained = runs.get_or_train(config, device="cpu", progress=False)
    >>> stored_run(config).history == trained.history
    True
    """
    # heavy: the run cache loads torch; only the checks that need a finished run pay for it
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
