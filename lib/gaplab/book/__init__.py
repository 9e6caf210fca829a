"""The book layer: what chapters need besides the science.

- :mod:`~gaplab.book.claims`: glued numbers and checks of the papers' claims (``glue``, ``glue_row``,
  ``check_claim``);
- :mod:`~gaplab.book.charts`, :mod:`~gaplab.book.widgets`, :mod:`~gaplab.book.gallery`: what pages draw;
- :mod:`~gaplab.book.papers`: the three papers' own numbers beside the book's;
- :mod:`~gaplab.book.record`: chapters' results kept from a GPU run and shown beside the live ones;
- :mod:`~gaplab.book.catalogue`: every run the chapters train, gathered from the experiments.
"""

from gaplab.book.claims import (
    CLAIMS,
    GLUED,
    Claim,
    ClaimNotReproduced,
    check_claim,
    glue,
    glue_row,
    note,
    plain,
)

__all__ = [
    "CLAIMS",
    "GLUED",
    "Claim",
    "ClaimNotReproduced",
    "check_claim",
    "glue",
    "glue_row",
    "note",
    "plain",
]
