"""Download the wheels of scripts/gpu/wheels.txt for the GPU machine's Python into .whl/ (git-ignored).

    python scripts/gpu/fetch_wheels.py [--python-version 3.12] [--dest .whl]

The GPU machine cannot reach a package registry; scripts/gpu/session.sh installs what lies in .whl/ before it
starts. Run this where pip can reach one, then name .whl in the device call's carry.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 26, 27, 28, 31, 34, 35)] + [
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]


def requirements() -> list[str]:
    lines = (HERE / "wheels.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python-version", default="3.12")
    ap.add_argument("--dest", type=Path, default=HERE.parents[1] / ".whl")
    args = ap.parse_args(argv)
    args.dest.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", args.python_version, "--implementation", "cp"]
    for platform in PLATFORMS:
        cmd += ["--platform", platform]
    cmd += ["-d", str(args.dest), *requirements()]
    done = subprocess.run(cmd)
    if done.returncode == 0:
        size = sum(p.stat().st_size for p in args.dest.glob("*.whl")) / 2**20
        print(
            f"{len(list(args.dest.glob('*.whl')))} wheels, {size:.1f} MiB in {args.dest}"
        )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
