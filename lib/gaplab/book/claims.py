"""What chapters need besides the science: glued numbers and checks of the papers' claims.

``glue`` stores plain Python values (not numpy scalars) so that the pages cite them and the tests read them
back with ``ast.literal_eval``; ``glue_row`` glues a row of related values under one prefix in one call.
``check_claim`` asserts a finding at the profiles where it should hold and
fails the build when it does not; at ``smoke`` it only reports.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from IPython import get_ipython
from IPython.display import display as display_rich

from gaplab.profiles import PROFILES, Profile, resolve_profile

__all__ = [
    "glue",
    "glue_row",
    "plain",
    "ClaimNotReproduced",
    "check_claim",
    "note",
    "CLAIMS",
    "GLUED",
]

#: every value glued in this kernel, by name: :func:`gaplab.book.ladder.show` sets recorded numbers beside them
GLUED: dict = {}


def plain(value):
    """Convert numpy scalars and arrays and pandas columns (also inside lists, tuples and dicts) to plain
    Python values."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if callable(getattr(value, "tolist", None)):  # a pandas Series or Index
        return plain(value.tolist())
    raise TypeError(
        f"cannot glue a {type(value).__name__}; give numbers, strings or lists of them"
    )


def glue(name: str, value, display: bool = False) -> None:
    """Glue ``value`` (converted to plain Python) under ``name`` for the page and the tests.

    Returns nothing, so that a glue call ending a cell does not print the value a second time.
    """
    value = plain(value)
    GLUED[name] = value
    # the recorder reads this log, so a record needs no myst-nb (Colab installs gaplab without it)
    log = os.environ.get("GAPLAB_GLUE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"name": name, "value": value}) + "\n")
    try:
        # optional extra (book), heavy: on Colab there is neither myst-nb nor a page
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=display)


def glue_row(prefix: str, values: Mapping[str, object]) -> None:
    """Glue each of ``values`` as :func:`glue` does, under the name ``f"{prefix}_{name}"``.

    A chapter's related numbers (one table row, one experiment's results) in one call:
    ``glue_row("temperature", {"l2m": ..., "rmg": ...})`` glues ``temperature_l2m`` and
    ``temperature_rmg``, in the order given. Returns nothing, like :func:`glue`.
    """
    for name, value in values.items():
        glue(f"{prefix}_{name}", value)


def note(message: str, title: str = "Note") -> None:
    """Show ``message`` to the reader as a note box rather than printed output.

    A printed line keeps its length: on the site it runs past the column or scrolls.
    As HTML it wraps, and the theme draws it as an admonition; links become clickable.
    Outside a notebook it is printed.
    """
    if get_ipython() is None:
        print(message)
        return
    paragraphs = "".join(
        f"<p>{_linked(html.escape(line))}</p>"
        for line in message.splitlines()
        if line.strip()
    )
    box = (
        f'<div class="admonition note"><p class="admonition-title">'
        f"{html.escape(title)}</p>{paragraphs}</div>"
    )
    display_rich({"text/html": box, "text/plain": message}, raw=True)


def _linked(escaped: str) -> str:
    return re.sub(
        r"https?://[^\s<>\"']+[^\s<>\"'.,;:)]",
        lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>',
        escaped,
    )


def _reason_at(reasons: str | Mapping[str, str] | None, profile: str) -> str | None:
    if reasons is None or isinstance(reasons, str):
        return reasons
    if not isinstance(reasons, Mapping):
        raise TypeError(
            "not_at_this_scale must be a reason (str), a mapping from profile "
            f"name to reason, or None, not {type(reasons).__name__}"
        )
    unknown = sorted(set(reasons) - set(PROFILES))
    if unknown:
        # a misspelt rung would silently enforce the claim there; say so instead
        raise ValueError(
            f"not_at_this_scale names unknown profiles {unknown}; "
            f"the profiles are {', '.join(PROFILES)}"
        )
    return reasons.get(profile)


def _log_claim(statement, holds, evidence, enforced, profile, not_at_this_scale):
    """Append the verdict as one JSON line to the file GAPLAB_CLAIM_LOG names, if set (the recorder reads it:
    :mod:`gaplab.book.record`)."""
    log = os.environ.get("GAPLAB_CLAIM_LOG")
    if not log:
        return
    line = {
        "statement": statement,
        "holds": holds,
        "evidence": evidence,
        "enforced": enforced,
        "profile": profile,
        "not_at_this_scale": not_at_this_scale,
    }
    with open(log, "a") as f:
        f.write(json.dumps(line) + "\n")


class ClaimNotReproduced(AssertionError):
    """A paper's finding did not hold at a profile where the book expects it to."""


@dataclass
class Claim:
    statement: str
    holds: bool
    evidence: str
    checked: bool
    #: the profile it was checked at (the rung of the scale ladder this build stands on)
    profile: str = ""


#: every claim checked in this kernel, in order, for a summary table
CLAIMS: list[Claim] = []


def check_claim(
    statement: str,
    holds: bool,
    evidence: str,
    profile: str | Profile,
    *,
    not_at_this_scale: str | Mapping[str, str] | None = None,
) -> None:
    """Record a claim and its evidence (in :data:`CLAIMS`) and print the verdict; raise
    :class:`ClaimNotReproduced` if it fails at a profile where it should hold.

    ``not_at_this_scale``: for a finding the book has measured *not* to reproduce on its models, the reason, said
    on the page. The verdict is still computed and printed from the evidence, but a failure does not stop the
    build; the chapter's prose must report the non-reproduction with the numbers. Pass one reason, or a mapping
    from profile name to reason for the rungs where it was measured not to hold: at any other rung the claim is
    enforced as usual, so a reason written for ``long`` cannot excuse a failure at ``paper``.
    """
    prof = resolve_profile(profile)
    not_at_this_scale = _reason_at(not_at_this_scale, prof.name)
    holds = bool(holds) and not (isinstance(holds, float) and math.isnan(holds))
    enforced = prof.check_claims and not_at_this_scale is None
    CLAIMS.append(Claim(statement, holds, evidence, enforced, prof.name))
    _log_claim(statement, holds, evidence, enforced, prof.name, not_at_this_scale)
    mark = "reproduced" if holds else "NOT reproduced"
    if not prof.check_claims:
        scope = f" (not enforced at profile {prof.name!r})"
    elif not_at_this_scale is not None:
        scope = f" (reported, not enforced: {not_at_this_scale})"
    else:
        scope = ""
    # wrapped to the width of the code, so the verdict reads on the page without a sideways scroll
    lines = [f"[{mark}] {statement}", f"evidence: {evidence}"]
    if scope:
        lines.append(scope.strip())
    print(
        "\n".join(
            textwrap.fill(
                line,
                88,
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            for line in lines
        )
    )
    if enforced and not holds:
        raise ClaimNotReproduced(
            f"{statement}: not reproduced at profile {prof.name!r} ({evidence})"
        )
