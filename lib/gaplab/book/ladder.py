"""The scale ladder: each claim's verdict and each key number at every profile, smallest first.

A chapter is built at one profile (``cpu`` for the book) and may be recorded at others
(:mod:`gaplab.book.record`): ``long``, many CPU-hours in the background, and ``paper``, on a GPU. This module
sets them side by side: :func:`show` ends each chapter with a table of verdicts by rung and a table of its
key numbers by rung, :func:`trend` gives the tidy frame its scale chart draws, and :func:`scale_page` writes
the book page that gathers every chapter's claims from the committed records, so that the page cannot
disagree with them (``python -m gaplab.book.ladder`` regenerates it; a test checks that it is current).

``smoke`` is a rung no claim is checked at: it only shows that the code runs.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from gaplab.book import claims as _claims
from gaplab.book import record as records
from gaplab.paths import book_root
from gaplab.profiles import PROFILES

__all__ = [
    "RUNGS",
    "verdict",
    "recorded",
    "claims_table",
    "values_table",
    "trend",
    "show",
    "scale_page",
    "write_scale_page",
    "SCALE_PAGE",
]

#: the profiles from the smallest scale to the largest
RUNGS: tuple[str, ...] = tuple(PROFILES)
#: the book page that gathers every claim, relative to the book's root
SCALE_PAGE = Path("book") / "scale.md"

_NOT_CHECKED = "not checked"


def _missing(profile: str) -> str:
    return "not yet recorded: needs a GPU" if profile == "paper" else "not yet recorded"


def verdict(holds: bool, enforced: bool) -> str:
    """A claim's verdict in words: a claim not enforced at its profile (reported, with the reason on the page)
    is told apart from one the chapter stopped at."""
    if holds:
        return "reproduced"
    return "NOT reproduced" if enforced else "not reproduced (reported)"


def recorded(stem: str, *, out_dir: Path | None = None) -> dict[str, dict | None]:
    """profile -> the record of chapter ``stem`` at it (None where there is none), for every rung."""
    return {p: records.load_record(stem, p, out_dir=out_dir) for p in RUNGS}


def _build_profile(build: str | None) -> str | None:
    if build is not None:
        if build not in PROFILES:
            raise ValueError(
                f"build profile {build!r} is not one of {', '.join(PROFILES)}"
            )
        return build
    seen = {c.profile for c in _claims.CLAIMS if c.profile}
    return seen.pop() if len(seen) == 1 else None


def _column(profile: str, build: str | None) -> str:
    return f"{profile} (this build)" if profile == build else profile


def claims_table(
    claims: list,
    build: str | None,
    recs: dict[str, dict | None],
):
    """One row per claim (those this build checked, then any only a record has), one column per rung:
    this build's verdicts at its own profile, each record's at the others."""
    import pandas as pd  # heavy: only where a table is shown

    mine = {c.statement: c for c in claims}
    order = list(mine)
    by_rung = {}
    for p, rec in recs.items():
        if rec is not None:
            by_rung[p] = {c["statement"]: c for c in rec["claims"]}
            order += [s for s in by_rung[p] if s not in order]
    rows = []
    for statement in order:
        row = {"claim": statement}
        for p in RUNGS:
            if p == build:
                c = mine.get(statement)
                if c is None:
                    cell = "not checked here"
                elif PROFILES[p].check_claims:
                    cell = verdict(c.holds, c.checked)
                else:  # the build's own verdict at a rung that only tests the code
                    cell = f"{'reproduced' if c.holds else 'not reproduced'} (not enforced)"
            elif p in by_rung:
                c = by_rung[p].get(statement)
                cell = verdict(c["holds"], c["enforced"]) if c else "not in the record"
            elif not PROFILES[p].check_claims:
                cell = _NOT_CHECKED
            else:
                cell = _missing(p)
            row[_column(p, build)] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def values_table(
    names,
    glued: dict,
    build: str | None,
    recs: dict[str, dict | None],
):
    """One row per glued value ``names``, one column per rung that checks claims (and this build's)."""
    import pandas as pd  # heavy: only where a table is shown

    rows = []
    for name in names:
        row = {"value": name}
        for p in RUNGS:
            if p != build and not PROFILES[p].check_claims:
                continue
            if p == build:
                cell = records._fmt(glued.get(name, "not computed here"))
            elif recs.get(p) is not None:
                cell = records._fmt(recs[p]["values"].get(name, "not recorded"))
            else:
                cell = _missing(p)
            row[_column(p, build)] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def trend(
    stem: str,
    measures: dict[str, str],
    *,
    build: str | None = None,
    out_dir: Path | None = None,
    glued: dict | None = None,
):
    """The tidy frame of a chapter's headline numbers against scale: columns ``rung``, ``measure`` (the label
    of ``measures``: glued name -> label), ``value`` and ``source`` ("this build" or "recorded"). A rung
    with no number (not recorded, or not a number there) has no row; ``smoke`` is left out, its numbers
    mean nothing."""
    import pandas as pd  # heavy: only where a chart is drawn

    build = _build_profile(build)
    glued = _claims.GLUED if glued is None else glued
    recs = recorded(stem, out_dir=out_dir)
    rows = []
    for p in RUNGS:
        if not PROFILES[p].check_claims:
            continue
        if p == build:
            values, source = glued, "this build"
        elif recs[p] is not None:
            values, source = recs[p]["values"], "recorded"
        else:
            continue
        for name, label in measures.items():
            v = _number(values.get(name))
            if v is not None:
                rows.append({"rung": p, "measure": label, "value": v, "source": source})
    return pd.DataFrame(rows, columns=["rung", "measure", "value", "source"])


def _where(rec: dict) -> str:
    return textwrap.fill(
        f"{records._where(rec)}. Reproduce: {rec['command']}",
        88,
        subsequent_indent="  ",
        break_long_words=False,
    )


def _display(table) -> None:
    from IPython.display import display  # notebook only: not needed to make records

    display(table)


def show(
    stem: str,
    names=(),
    *,
    build: str | None = None,
    out_dir: Path | None = None,
) -> dict[str, dict | None]:
    """End a chapter with its ladder: where each record was made, the verdict of every claim at every rung,
    and the glued values ``names`` at every rung (pandas tables, displayed). ``build``: the profile this
    build runs at (by default, the one its claims were checked at). Returns profile -> record (or None)."""
    build = _build_profile(build)
    recs = recorded(stem, out_dir=out_dir)
    for p, rec in recs.items():
        if rec is not None and p != build:
            print(_where(rec))
            if not rec["completed"]:
                print(f"  the recorded run stopped early: {rec['error']}")
    missing = [p for p, rec in recs.items() if rec is None and p != build]
    missing = [p for p in missing if PROFILES[p].check_claims]
    for p in missing:
        print(
            f"No record at {p!r} yet. To make one, run\n"
            f"  python -m gaplab record --profile {p} --chapters {stem}\n"
            f"  (it writes data/recorded/{p}/{stem}.json)"
        )
    mine = [c for c in _claims.CLAIMS if build is None or c.profile == build]
    claims = claims_table(mine, build, recs)
    if len(claims):
        _display(claims)
    if names:
        _display(values_table(names, _claims.GLUED, build, recs))
    return recs


def scale_page(
    chapters: list[str] | None = None, *, out_dir: Path | None = None
) -> str:
    """The markdown of the book page "What holds at which scale": every claim of every chapter, its verdict
    at each rung as the committed records give it, and where each record was made."""
    chapters = chapters if chapters is not None else records.chapters()
    lines = [
        "(scale-ladder)=",
        "# What holds at which scale",
        "",
        "<!-- Generated by `python -m gaplab.book.ladder` from data/recorded/: do not edit this page;",
        "     record the chapters again and regenerate it. A test checks that the two agree. -->",
        "",
        "Each chapter checks the papers' claims at the profile it runs at. This page gathers every claim",
        "of every chapter and its verdict at each rung of the scale ladder, as the committed records in",
        "`data/recorded/` give them: `smoke` only shows that the code runs and checks nothing; `cpu` is",
        "what the book is built at; `long` trains longer on the same two CPU cores (hours, recorded in",
        "the background); `paper` is the papers' scale, on a GPU. The profiles are defined in",
        "`gaplab.profiles` (see {doc}`how_to_run`). *reproduced* means the check held; *NOT",
        "reproduced* that it failed where the chapter enforces it (the recorded run stopped there);",
        "*not reproduced (reported)* that it failed where the chapter reports it with its reasons",
        "instead of stopping. Each chapter's last section sets the same verdicts beside its key numbers",
        "and draws its headline trend against scale.",
        "",
    ]
    shown = [p for p in RUNGS if PROFILES[p].check_claims]
    made = []
    for stem in chapters:
        recs = recorded(stem, out_dir=out_dir)
        if all(recs[p] is None for p in shown):
            continue
        table = claims_table([], None, {p: recs[p] for p in shown})
        lines += [f"## {stem}", ""]
        header = list(table.columns)
        lines.append("| " + " | ".join(header) + " |")
        lines.append("| " + " | ".join("---" for _ in header) + " |")
        for row in table.itertuples(index=False):
            cells = [str(v).replace("|", "\\|") for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        made += [(stem, p, recs[p]) for p in shown if recs[p] is not None]
    if not made:
        lines += ["No chapter has been recorded yet.", ""]
        return "\n".join(lines)
    lines += [
        "## Where the records were made",
        "",
        "| chapter | profile | device | date | commit | runs trained | executed in | ran to its end |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stem, p, rec in made:
        m = rec["machine"]
        device = m["gpu"] or f"CPU, {m['cpu_count']} cores"
        commit = (rec["commit"] or "unknown")[:10]
        if rec["changed_files"]:
            commit += " (uncommitted changes)"
        lines.append(
            f"| {stem} | {p} | {device} ({m['precision']}) | {rec['date'][:10]} | "
            f"`{commit}` | {_trained(rec)} | {rec['wall_seconds'] / 60:.1f} min | "
            f"{'yes' if rec['completed'] else 'no: ' + str(rec['error'])} |"
        )
    lines += [""]
    for p in shown:
        lines += _cost(p, [rec for _, q, rec in made if q == p])
    lines += [
        "*runs trained*: how many trained models the chapter uses and what training them took, as the run",
        "cache recorded it (a record made before records kept this says *not kept*; a run resumed from",
        "a checkpoint counts from where it resumed, so an interrupted run's time is a lower bound);",
        "*executed in*: the time to run the chapter on those models. Reproduce a record with",
        "`python -m gaplab cache prepare --profile <profile> --chapter <chapter>`, then",
        "`python -m gaplab record --profile <profile> --chapters <chapter>`.",
        "",
    ]
    return "\n".join(lines)


def _trained(rec: dict) -> str:
    runs = rec.get("trained_runs")
    if runs is None:
        return "not kept"
    if not runs:
        return "none"
    known = [s for s in runs.values() if s is not None]
    hours = sum(known) / 3600
    missing = len(runs) - len(known)
    return f"{len(runs)}, {hours:.2f} h" + (f" ({missing} untimed)" if missing else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _cost(profile: str, recs: list[dict]) -> list[str]:
    """One line on what a rung's records cost: training counted once per run, however many chapters
    share it, in hours and core-hours of the machines they were made on."""
    kept = [r for r in recs if r.get("trained_runs") is not None]
    if not kept:
        return []
    seconds: dict[str, tuple[float, int]] = {}
    for rec in kept:
        cores = rec["machine"].get("cpu_count") or 0
        for key, s in rec["trained_runs"].items():
            if s is not None:
                seconds[key] = (s, cores)
    wall = sum(s for s, _ in seconds.values()) / 3600
    on_gpu = any(r["machine"]["gpu"] for r in kept)
    core = sum(s * c for s, c in seconds.values()) / 3600
    cost = f"{wall:.1f} hours" + ("" if on_gpu else f" ({core:.1f} core-hours)")
    executed = sum(r["wall_seconds"] for r in kept) / 3600
    return [
        f"At `{profile}`, training the models of {_n(len(kept), 'record')} that keep their runs took "
        f"{cost}: {_n(len(seconds), 'distinct model')}, each counted once however many chapters use "
        f"it. Executing those chapters on them took {executed:.1f} hours more.",
        "",
    ]


def write_scale_page(path: Path | None = None) -> Path:
    """Write :func:`scale_page` to ``book/scale.md`` (or ``path``); returns the path."""
    path = Path(path or book_root() / SCALE_PAGE)
    path.write_text(scale_page())
    return path


if __name__ == "__main__":
    print(f"wrote {write_scale_page()}")
