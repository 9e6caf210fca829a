#!/usr/bin/env bash
# gaplab as others install it, each from a clone of this checkout and run from outside it:
#
# 1. the sdist and the wheel built (`python -m build`) and their contents checked
#    (scripts/check_dist.py: every module, data file and model config, py.typed, the extras and
#    the `gaplab` command in the metadata; no tests, notebooks or book pages);
# 2. the core wheel alone in a fresh environment (numpy, scipy, scikit-learn, platformdirs from
#    the registry): importing gaplab and gaplab.metrics loads no torch, the metrics equal their
#    direct formulas (scripts/smoke_core.py), `gaplab report --embeddings` prints its table and
#    `gaplab report --model` names the models extra (exit code 2);
# 3. Colab's first cell: a regular (not editable) `pip install` of the clone with the extras the
#    chapters need, into an environment that already has torch (Colab's is preinstalled and
#    kept); one training chapter executes at `smoke` and `gaplab record` records it;
# 4. the wheel with the models extra in that environment: `gaplab report` on a local open_clip
#    checkpoint and a class folder of PNGs (scripts/smoke_models.py writes both, then checks).
#
#   bash scripts/test_wheel.sh [CHAPTER]      (make test-wheel; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
chapter=${1:-mad_training}
base=${PYTHON_BOOTSTRAP:-$(command -v python3.11 || command -v python3)}
main_py=$repo/.venv/bin/python
# the extras the Colab cell installs (scripts/repo_address.py writes the cell from the same words)
colab_extras=$("$main_py" -c 'import sys; sys.path.insert(0, "scripts")
import repo_address; print(repo_address.COLAB_EXTRAS)')

work=$(mktemp -d "${TMPDIR:-/tmp}/gaplab-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS
step() { echo ">> [test-wheel $((SECONDS - started)) s] $*"; }
# this machine's pip configuration warns about every absent mirror folder: keep the log readable
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
fresh_venv() { "$base" -m venv "$1" && quiet "$1/bin/python" -m pip install -q --upgrade pip; }

step "clone into $work/gaplab (the committed tree, then this checkout's uncommitted files)"
git clone -q --no-hardlinks "$repo" "$work/gaplab"
git ls-files -z -m -o --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null |
  tar -xf - -C "$work/gaplab"

# ---------------------------------------------------------------------------------------------
step "build the sdist and the wheel (python -m build: the wheel is built from the sdist)"
"$main_py" -m build --outdir "$work/dist" "$work/gaplab" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
sdist=$(echo "$work"/dist/gaplab-*.tar.gz)
wheel=$(echo "$work"/dist/gaplab-*.whl)
"$main_py" "$work/gaplab/scripts/check_dist.py" "$work/gaplab" "$sdist" "$wheel"

# ---------------------------------------------------------------------------------------------
step "the core wheel alone in a fresh environment"
fresh_venv "$work/core"
quiet "$work/core/bin/python" -m pip install -q "$wheel"
mkdir "$work/smoke"
cp "$work/gaplab/data/liang2022-embeddings/features_clip.npy" "$work/smoke/"
(
  cd "$work/smoke"
  export PATH="$work/core/bin:$PATH"
  "$work/core/bin/python" "$work/gaplab/scripts/smoke_core.py" features_clip.npy
)

# ---------------------------------------------------------------------------------------------
step "fresh environment with torch preinstalled, as on Colab"
fresh_venv "$work/venv"
py="$work/venv/bin/python"
# the same torch as the book's environment (without its local label such as +cu130)
versions=$("$main_py" -c 'import torch, torchvision as tv
print(" ".join(f"{m.__name__}=={m.__version__.split(chr(43))[0]}" for m in (torch, tv)))')
# shellcheck disable=SC2086
quiet "$py" -m pip install -q $versions ipykernel papermill
# the kernel the chapter runs in is this environment's interpreter, named by its full path
"$py" -m ipykernel install --prefix "$work/venv" --name python3 >/dev/null

step "pip install \"$work/gaplab[$colab_extras]\" (regular install, as Colab's cell runs it)"
quiet "$py" -m pip install -q "$work/gaplab[$colab_extras]"
"$py" -m pip show gaplab | grep -q "^Editable project location" &&
  { echo "gaplab was installed editable; this check needs a regular install"; exit 1; }
"$py" - "$versions" <<'PY'
import sys
from importlib import metadata

# the chapters' extras install next to Colab's torch, not over it
for pinned in sys.argv[1].split():
    name, version = pinned.split("==")
    have = metadata.version(name).split("+")[0]
    assert have == version, f"installing gaplab replaced {name} {version} by {have}"
PY

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
gaplab record --profile smoke --chapters "$chapter" --out "$work/records"
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

# ---------------------------------------------------------------------------------------------
step "the wheel with the models extra: gaplab report on a local checkpoint"
quiet "$py" -m pip install -q --force-reinstall --no-deps "$wheel"
quiet "$py" -m pip install -q "$wheel[models]"
mkdir "$work/models-smoke"
cd "$work/models-smoke"
"$py" "$work/gaplab/scripts/smoke_models.py"
step "passed"
