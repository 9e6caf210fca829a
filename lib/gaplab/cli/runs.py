"""``python -m gaplab cache ...``: the run cache from the command line.

where      the search path: each directory, whether it can be written, where new runs go
list       every entry: its key, the chapters' names for it, profile, size, date, state
prepare    train the runs the book's chapters need at a profile (what is cached is only checked)
export     pack those runs into a tar archive with a manifest of SHA-256 sums
import     check an archive against its manifest and unpack it into the cache
prune      remove entries of other code versions and leftovers of interrupted imports

The run cache (:mod:`gaplab.runs`) knows no chapter: this is where the book's catalogue
(:mod:`gaplab.book.catalogue`) tells it which runs a chapter needs, what each is called, and the
code version of every kind of entry.
"""

from __future__ import annotations

import json
import os

from gaplab.book import catalogue
from gaplab.book.catalogue import CHAPTERS
from gaplab.profiles import PROFILES
from gaplab.runs import archive, inventory, store, unpack

__all__ = ["add_parser", "run", "list_entries", "export", "import_archive", "prune"]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def add_parser(sub) -> None:

    p = sub.add_parser(
        "cache",
        description="The run cache: the trained MAD models the chapters load instead of training. "
        "GAPLAB_CACHE may name several directories (separated by os.pathsep): runs "
        "load from each in order, new ones go to the first writable one.",
    )
    cmds = p.add_subparsers(dest="cache_command", required=True, metavar="COMMAND")
    cmds.add_parser(
        "where",
        help="the directories of GAPLAB_CACHE, whether each is writable, and the one "
        "new runs are written to",
    )
    ls = cmds.add_parser(
        "list", help="every cached run with its chapters, profile, size, date and state"
    )
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for name, text in (
        ("prepare", "train every run the chapters need at a profile"),
        ("export", "pack the runs the chapters need at a profile into a tar archive"),
    ):
        c = cmds.add_parser(name, help=text)
        c.add_argument(
            "--profile",
            default="cpu",
            choices=list(PROFILES),
            help="profile (default: cpu)",
        )
        c.add_argument(
            "--chapter",
            action="append",
            choices=CHAPTERS,
            help="only this chapter (repeatable)",
        )
        if name == "prepare":
            c.add_argument(
                "--jobs",
                default="1",
                help="train this many runs at once on a CPU, each process with its share "
                "of the cores ('auto': one per core, at most 4; default: 1)",
            )
        if name == "export":
            c.add_argument(
                "--out",
                required=True,
                help="archive to write (.tar, or .tar.gz to compress)",
            )
    imp = cmds.add_parser(
        "import", help="check an archive's SHA-256 sums and unpack it into the cache"
    )
    imp.add_argument("archive")
    imp.add_argument(
        "--into",
        help="directory to unpack into (default: the first writable one of GAPLAB_CACHE)",
    )
    pr = cmds.add_parser(
        "prune",
        help="remove entries of other code versions and leftovers of interrupted imports",
    )
    pr.add_argument(
        "--dry-run", action="store_true", help="only say what would be removed"
    )


# The run cache's operations with the book's catalogue filled in: which runs each chapter
# needs, what the chapters call them, and the code version of each kind of entry.


def list_entries() -> list[dict]:
    """Every cached entry, named by the chapters that use it (:func:`gaplab.runs.inventory.list_entries`)."""
    return inventory.list_entries(catalogue.run_index(), catalogue.entry_versions())


def export(profile="cpu", out="course-runs.tar", chapters=None) -> dict:
    """Pack the runs the book's ``chapters`` (default: all) need at ``profile`` into ``out``
    (:func:`gaplab.runs.archive.export`); returns the manifest."""
    runs = catalogue.book_runs(profile, tuple(chapters) if chapters else CHAPTERS)
    return archive.export(runs, out, profile=profile, order=CHAPTERS)


def import_archive(path, into=None) -> dict:
    """Check and unpack a run archive (:func:`gaplab.runs.unpack.import_archive`)."""
    return unpack.import_archive(
        path, into, versions=catalogue.entry_versions(), order=CHAPTERS
    )


def prune(*, dry_run: bool = False) -> list[dict]:
    """Remove what no chapter can use (:func:`gaplab.runs.inventory.prune`)."""
    return inventory.prune(dry_run=dry_run, versions=catalogue.entry_versions())


def run(args) -> int:

    cmd = args.cache_command
    if cmd == "where":
        _where(store)
    elif cmd == "list":
        _list(args.json)
    elif cmd == "prepare":
        chapters = tuple(args.chapter) if args.chapter else CHAPTERS
        # flushed: the training processes write their notices to the same terminal or log
        runs = catalogue.prepare(
            args.profile,
            chapters,
            progress=False,
            jobs=args.jobs,
            echo=lambda line: print(line, flush=True),
        )
        print(
            f"{len({r.key for r in runs})} runs ready for profile {args.profile!r} in "
            + ", ".join(map(str, store.cache_paths()))
        )
    elif cmd == "export":
        manifest = export(args.profile, args.out, args.chapter)
        entries = manifest["entries"]
        size = sum(f["bytes"] for e in entries.values() for f in e["files"].values())
        for key, e in entries.items():
            print(f"  {key}  {', '.join(e['chapters'])}: {e['name']}")
        print(
            f"wrote {args.out}: {len(entries)} runs for profile {args.profile!r} "
            f"({_size(size)}), with a manifest of SHA-256 sums"
        )
    elif cmd == "import":
        out = import_archive(args.archive, args.into)
        for key in out["added"]:
            print(f"  {key}  {out['labels'][key]}")
        for key in out["busy"]:
            print(f"  {key}  skipped: a process is training it here now")
        print(
            f"imported {len(out['added'])} runs into {out['into']} "
            f"({len(out['present'])} were already there); profile {out['profile']!r}"
        )
    elif cmd == "prune":
        removed = prune(dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        for r in removed:
            print(f"{verb} {r['path']} ({_size(r['bytes'])}): {r['why']}")
        print(
            f"{verb} {len(removed)} entries and files, {_size(sum(r['bytes'] for r in removed))}"
        )
    return 0


def _list(as_json: bool) -> None:
    """``cache list``: every entry, named by the chapters that use it."""
    rows = list_entries()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(
            "the run cache is empty (" + ", ".join(map(str, store.cache_paths())) + ")"
        )
        return
    last = None
    for r in rows:
        if r["location"] != last:
            last = r["location"]
            print(f"\n{last}" + ("" if r["writable"] else "  (read-only)"))
            print(
                f"  {'key':<34} {'profile':<8} {'size':>7}  {'date':<16}  "
                f"{'state':<8} run (chapter: name)"
            )
        profiles = ",".join(r["profiles"]) or "-"
        # the name goes last and whole: "k=2 seed 0, gap closed at initialisation,
        # learnable" cut to a column would not say which run it is
        print(
            f"  {r['key']:<34} {profiles:<8} {_size(r['bytes']):>7}  "
            f"{r['date'][:16].replace('T', ' '):<16}  {r['state']:<8} {r['label']}"
        )
    total = sum(r["bytes"] for r in rows)
    print(f"\n{len(rows)} entries, {_size(total)}")


def _where(store) -> None:
    locs = store.locations()
    for loc in locs:
        state = "writable" if loc.writable else f"read-only: {loc.reason}"
        print(f"{loc.path}  [{state}]")
    target = store.write_location(locs)
    if target is not None:
        print(f"new runs are written to {target.path}")
        return
    # only here is there something to do: with no writable directory nothing is kept
    print(
        f"no directory can be written: new runs are trained and used but not stored. "
        f"Add a writable directory to {store.ENV} (directories separated by "
        f"{os.pathsep!r}), for example ~/.cache/gaplab/runs"
    )
