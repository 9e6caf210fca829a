"""The self-checks of the book's exercises, one module per chapter (named as the chapter).

A chapter module lists its exercises in ``EXERCISES``. A chapter added later needs only its own module
here: the student notebooks and the tests find it by name.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from gaplab.teach.spec import Exercise

__all__ = ["all_exercises", "exercise"]


@functools.lru_cache(maxsize=1)
def all_exercises() -> dict[str, Exercise]:
    """label -> Exercise, over every chapter module of this package."""
    found: dict[str, Exercise] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for ex in getattr(module, "EXERCISES", ()):
            if ex.chapter != info.name:
                raise ValueError(
                    f"{ex.label} is listed in the module of chapter {info.name}"
                )
            if ex.label in found:
                raise ValueError(f"exercise {ex.label} is defined twice")
            found[ex.label] = ex
    return found


def exercise(label: str) -> Exercise:
    """The exercise with the book's label ``label`` (e.g. ``"gap_geometry-ex2"``)."""
    table = all_exercises()
    if label not in table:
        raise KeyError(
            f"no self-check for exercise {label!r}; gaplab.teach.exercises has "
            f"{', '.join(sorted(table)) or 'none'}"
        )
    return table[label]
