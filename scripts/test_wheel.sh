#!/usr/bin/env bash
# gaplab installed as Colab's first cell installs it: a regular (not editable) `pip install` of a
# clone, into a fresh environment that already has torch (Colab's is preinstalled and kept). Then
# one training chapter executes at `smoke` and `gaplab record` records it, run from outside the
# clone so that the chapters and data are found the way an installed package finds them.
#
#   bash scripts/test_wheel.sh [CHAPTER]      (make test-wheel; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
chapter=${1:-mad_training}
base=${PYTHON_BOOTSTRAP:-$(command -v python3.11 || command -v python3)}
main_py=.venv/bin/python

work=$(mktemp -d "${TMPDIR:-/tmp}/gaplab-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo ">> [test-wheel] $*"; }
# this machine's pip configuration warns about every absent mirror folder: keep the log readable
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

step "clone into $work/gaplab (the committed tree, then this checkout's uncommitted files)"
git clone -q --no-hardlinks "$repo" "$work/gaplab"
git ls-files -z -m -o --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null |
  tar -xf - -C "$work/gaplab"

step "fresh environment with torch preinstalled, as on Colab"
"$base" -m venv "$work/venv"
py="$work/venv/bin/python"
# the same torch as the book's environment (without its local label such as +cu130)
versions=$("$main_py" -c 'import torch, torchvision as tv
print(" ".join(f"{m.__name__}=={m.__version__.split(chr(43))[0]}" for m in (torch, tv)))')
quiet "$py" -m pip install -q --upgrade pip
# shellcheck disable=SC2086
quiet "$py" -m pip install -q $versions ipykernel papermill
# the kernel the chapter runs in is this environment's interpreter, named by its full path
"$py" -m ipykernel install --prefix "$work/venv" --name python3 >/dev/null

step "pip install $work/gaplab (regular install, as Colab's cell runs it)"
quiet "$py" -m pip install -q "$work/gaplab"
"$py" -m pip show gaplab | grep -q "^Editable project location" &&
  { echo "gaplab was installed editable; this check needs a regular install"; exit 1; }

export PATH="$work/venv/bin:$PATH" GAPLAB_CACHE="$work/cache" MPLBACKEND=Agg
# where the package sits, and what it finds without the clone around it
cd "$work"
"$py" - "$work" <<'PY'
import sys
from pathlib import Path

import gaplab
from gaplab import paths
from gaplab.book import record
from gaplab.training.models import MAD_PRESETS

work = Path(sys.argv[1])
here = Path(gaplab.__file__).resolve()
assert "site-packages" in here.parts, f"gaplab imported from {here}, not the install"
assert paths.book_root() == work / "gaplab", paths.book_root()
assert MAD_PRESETS, "no MAD presets: the model configs were not installed"
print(f"gaplab from {here.parent}; book at {paths.book_root()}; "
      f"{len(record.chapters())} chapters; presets {sorted(MAD_PRESETS)}")
PY

step "execute $chapter at smoke"
"$py" -m papermill -k python3 --cwd "$work" -p profile smoke \
  "$work/gaplab/notebooks/$chapter.ipynb" "$work/$chapter.executed.ipynb" --no-progress-bar

step "record $chapter at smoke"
"$py" -m gaplab record --profile smoke --chapters "$chapter" --out "$work/records"
"$py" - "$work/records/smoke/$chapter.json" <<'PY'
import json
import sys

rec = json.load(open(sys.argv[1]))
assert rec["completed"], rec["error"]
assert rec["values"], "the record holds no glued values"
assert rec["commit"], "the record names no commit"
print(f"recorded {len(rec['values'])} values, {len(rec['claims'])} claims, "
      f"commit {rec['commit'][:10]}, {rec['wall_seconds']} s")
PY
step "passed"
