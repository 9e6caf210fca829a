"""Teaching with the book: self-checks for the exercises and the student notebooks built from the chapters.

``check(label, globals())`` judges a student's answer (:mod:`gaplab.teach.selfcheck`);
``python -m gaplab.teach.student`` writes the student notebooks (:mod:`gaplab.teach.student`).
"""

from gaplab.teach.selfcheck import (
    Exercise,
    NotReady,
    Verdict,
    check,
    stored_run,
    verdict,
)

__all__ = ["Exercise", "NotReady", "Verdict", "check", "stored_run", "verdict"]
