"""The ``gaplab`` command line, in one place: ``python -m gaplab COMMAND``.

python -m gaplab cache {where,list,prepare,export,import,prune}   the run cache (:mod:`gaplab.cli.runs`)
python -m gaplab report --model M --pretrained W --data KIND:PATH    a model's gap on real data (:mod:`gaplab.cli.zoo`)
python -m gaplab record [--profile paper] [--chapters ...]           chapters' results kept (:mod:`gaplab.cli.record`)
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import traceback
import zipfile

from PIL import Image

from gaplab.cli import record, runs, zoo
from gaplab.runs.archive import ArchiveError
from gaplab.runs.store import CacheLocationError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaplab", description="Tools of the gaplab book."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs.add_parser(sub)
    zoo.add_parser(sub)
    record.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "cache":
            return runs.run(args)
        if args.command == "report":
            return zoo.run(args)
        if args.command == "record":
            return record.run(args)
    except _bad_input() as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; whatever was finished is kept, nothing partial is left",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug of gaplab's: one line here, the rest in a file
        print(
            f"internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in gaplab; "
            f"the full traceback is in {_write_traceback()})",
            file=sys.stderr,
        )
        return 1
    return 0


def _bad_input() -> tuple[type[BaseException], ...]:
    """What bad arguments, files and disks raise: each says in words what was wrong."""
    return (
        CacheLocationError,
        ArchiveError,
        OSError,
        ValueError,
        RuntimeError,
        tarfile.TarError,  # a truncated or foreign archive
        zipfile.BadZipFile,  # a broken .npz
        Image.DecompressionBombError,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _write_traceback() -> str:
    fd, path = tempfile.mkstemp(prefix="gaplab-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        traceback.print_exc(file=f)
    return path
