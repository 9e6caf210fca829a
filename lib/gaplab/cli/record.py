"""``python -m gaplab record``: execute chapters at a profile and keep their results as records."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gaplab.book import record
from gaplab.paths import book_root
from gaplab.profiles import PROFILES
from gaplab.storage import check_output_dir


def add_parser(sub) -> None:
    p = sub.add_parser(
        "record",
        description="Execute each chapter at --profile and write data/recorded/<profile>/<chapter>.json: "
        "every glued value, every claim verdict, the device, precision, date, commit and wall time. "
        "A chapter already recorded at this commit is skipped (unless --force), so a session that "
        "ends half-way goes on where it stopped. Keep GAPLAB_CACHE on lasting storage: the trained "
        "models are reused.",
        epilog="examples (long on any machine, in the background; paper on a GPU):\n"
        "  python -m gaplab record --profile long --max-minutes 120\n"
        "  python -m gaplab record --profile paper\n"
        "  python -m gaplab record --profile paper --chapters imbalance_training --force",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    p.add_argument(
        "--profile",
        default="paper",
        choices=list(PROFILES),
        help="profile to run (default paper)",
    )
    p.add_argument(
        "--chapters",
        nargs="+",
        metavar="CHAPTER",
        help="chapters to record (default: all, in the book's order)",
    )
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="records folder (default data/recorded)"
    )
    p.add_argument(
        "--force", action="store_true", help="record again what is already recorded"
    )
    p.add_argument(
        "--max-minutes",
        type=_minutes,
        metavar="M",
        help="start no new chapter after M minutes (to end cleanly inside a time limit)",
    )


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of minutes"
        ) from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 or more minutes")
    return value


def run(args) -> int:

    known = record.chapters()
    if not known:
        # exiting 0 here would look like a finished recording that wrote nothing
        raise record.RecordError(
            f"no chapters found in {book_root() / 'notebooks'}; is this the book's "
            "repository? Set GAPLAB_BOOK to the clone's folder"
        )
    stems = args.chapters or known
    unknown = [s for s in stems if s not in known]
    if unknown:
        raise ValueError(f"unknown chapters {unknown}; chapters: {', '.join(known)}")

    # before hours of execution, not after: a records folder that cannot be written
    check_output_dir((args.out or record.record_dir()) / args.profile, "records folder")
    commit = record._git("rev-parse", "HEAD")
    started = time.perf_counter()
    failed = []
    for i, stem in enumerate(stems, 1):
        old = record.load_record(stem, args.profile, out_dir=args.out)
        if (
            not args.force
            and old is not None
            and old["completed"]
            and old["commit"] == commit
            and not old["changed_files"]
        ):
            print(f"[{i}/{len(stems)}] {stem}: recorded at this commit; skipped")
            continue
        elapsed = (time.perf_counter() - started) / 60
        if args.max_minutes is not None and elapsed >= args.max_minutes:
            print(
                f"stopping after {elapsed:.1f} min (--max-minutes {args.max_minutes}); "
                f"run the same command again to go on from {stem}"
            )
            break
        print(
            f"[{i}/{len(stems)}] {stem}: executing at profile {args.profile!r} ...",
            flush=True,
        )
        rec = record.record_chapter(stem, args.profile, out_dir=args.out)
        verdicts = [c for c in rec["claims"] if c["enforced"]]
        held = sum(c["holds"] for c in verdicts)
        state = "done" if rec["completed"] else f"STOPPED: {rec['error']}"
        print(
            f"      {state} in {rec['wall_seconds'] / 60:.1f} min; {len(rec['values'])} values, "
            f"{held} of {len(verdicts)} enforced claims held"
        )
        if not rec["completed"]:
            failed.append(stem)
    if failed:
        print(f"chapters that stopped early (recorded as such): {', '.join(failed)}")
        return 1
    return 0
