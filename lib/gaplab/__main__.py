"""``python -m gaplab``: the package's command line.

python -m gaplab cache {where,list,prepare,export,import,prune}   the run cache (see gaplab.runs.cli)
python -m gaplab report --model M --pretrained W --data KIND:PATH    a model's gap on real data (gaplab.zoo)
python -m gaplab record [--profile paper] [--chapters ...]           chapters' results kept (gaplab.record)
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from gaplab.record import cli as record_cli
    from gaplab.runs import cli as cache_cli
    from gaplab.zoo import cli as report_cli

    parser = argparse.ArgumentParser(
        prog="python -m gaplab", description="Tools of the gaplab book."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cache_cli.add_parser(sub)
    report_cli.add_parser(sub)
    record_cli.add_parser(sub)
    args = parser.parse_args(argv)
    from gaplab.runs.archive import ArchiveError
    from gaplab.runs.store import CacheLocationError

    try:
        if args.command == "cache":
            return cache_cli.run(args)
        if args.command == "report":
            return report_cli.run(args)
        if args.command == "record":
            return record_cli.run(args)
    except (CacheLocationError, ArchiveError, OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; whatever was finished is kept, nothing partial is left",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
