"""The ``gaplab`` command (also ``python -m gaplab``), in one place.

gaplab report --embeddings FILE                          precomputed embeddings' gap (the core install)
gaplab report --model M --pretrained W --data KIND:PATH  a model's gap on real data (:mod:`gaplab.cli.zoo`)
gaplab cache {where,list,prepare,export,import,prune}    the run cache (:mod:`gaplab.cli.runs`)
gaplab record [--profile paper] [--chapters ...]         chapters' results kept (:mod:`gaplab.cli.record`)

A subcommand's module is imported only when it runs, so that ``gaplab --help``, ``--version`` and
``report --embeddings`` need only the core install; one that reaches a module of an extra the
install lacks says which extra to install (:mod:`gaplab.cli.extras`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import traceback
import zipfile

from gaplab import __version__
from gaplab.cli.extras import needs_extra

__all__ = ["COMMANDS", "WANTS", "main"]

#: the subcommands and the line ``gaplab --help`` shows for each (without importing them)
COMMANDS = {
    "report": "measure an open_clip model (or precomputed embeddings) on real data",
    "cache": "list, prepare, export, import and prune trained runs",
    "record": "execute chapters at a profile (the papers' scale on a GPU) and record "
    "their results",
}

#: the extras a subcommand needs whatever its arguments (report's depend on them: its
#: missing module names its own extra)
WANTS = {"cache": ("models", "charts"), "record": ("book",)}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # --help, --version and an unknown command end here, before any subcommand is imported
    command = _parser().parse_known_args(argv)[0].command
    args = None
    try:
        module = _module(command)
        args = _parser(module).parse_args(argv)
        return module.run(args)
    except ModuleNotFoundError as exc:
        line = needs_extra(exc, _doing(command, args), wanted=WANTS.get(command, ()))
        if line is None:
            return _internal_error(exc)
        print(f"error: {line}", file=sys.stderr)
        return 2
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
        return _internal_error(exc)


def _parser(module=None) -> argparse.ArgumentParser:
    """The command's parser: with ``module``, its subcommand's full arguments; without,
    every subcommand by name only (enough for ``--help`` and to find the command)."""
    parser = argparse.ArgumentParser(
        prog="gaplab",
        description="Measure the modality gap and object bias of CLIP-style models; "
        "the tools of the gaplab book.",
    )
    parser.add_argument("--version", action="version", version=f"gaplab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if module is not None:
        module.add_parser(sub)
        return parser
    for name, text in COMMANDS.items():
        # the arguments are the module's: left to the second parse
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _module(command: str):
    """The module of ``command``, imported now: each needs other extras."""
    if command == "report":
        from gaplab.cli import zoo  # lazy: report --embeddings runs on the core install

        return zoo
    if command == "cache":
        from gaplab.cli import runs  # lazy: the run cache needs the models extra

        return runs
    from gaplab.cli import record  # lazy: recording chapters needs the book extra

    return record


def _doing(command: str, args) -> str:
    """What was asked, as the missing-extra line names it."""
    model = command == "report" and getattr(args, "model", None)
    return f"gaplab {command}" + (" --model" if model else "")


def _bad_input() -> tuple[type[BaseException], ...]:
    """What bad arguments, files and disks raise: each says in words what was wrong."""
    # a decompression bomb can only come from PIL once something loaded it: no import here
    image = sys.modules.get("PIL.Image")
    return (
        OSError,
        ValueError,
        RuntimeError,  # the run cache's CacheLocationError and ArchiveError among them
        tarfile.TarError,  # a truncated or foreign archive
        zipfile.BadZipFile,  # a broken .npz
        *((image.DecompressionBombError,) if image is not None else ()),
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _internal_error(exc: BaseException) -> int:
    print(
        f"internal error: {type(exc).__name__}: {_one_line(exc)} (a bug in gaplab; "
        f"the full traceback is in {_write_traceback()})",
        file=sys.stderr,
    )
    return 1


def _write_traceback() -> str:
    fd, path = tempfile.mkstemp(prefix="gaplab-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        traceback.print_exc(file=f)
    return path
