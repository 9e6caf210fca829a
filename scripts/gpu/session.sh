#!/usr/bin/env bash
# One GPU session for the paper scale, run from the repository root on the GPU machine (scripts/gpu/README.md).
#
#   scripts/gpu/session.sh [MINUTES]
#
# 1. probe.py: the precision gaplab chooses on this GPU, single-run and grid steps, a grid against single runs,
#    the gap measures on GPU tensors;
# 2. the benchmarks (bench_mad.py, bench_metrics.py, compare_grid.py at the cpu profile's run length);
# 3. python -m gaplab record --profile paper for what is left of MINUTES (default 6).
# Everything it measures goes to $OUT (default /tmp/gaplab-session): probe.json, the benchmark JSON files,
# recorded/paper/<chapter>.json and session.log. Wheels in .whl/ (scripts/gpu/fetch_wheels.py) are installed
# first when the machine lacks gaplab's dependencies (SESSION_WHEELS=0 skips them). SESSION_QUICK=1 runs every
# step at toy sizes, SESSION_PROFILE sets the recording's profile and SESSION_CHAPTERS its chapters (its test).
set -uo pipefail
MINUTES=${1:-6}
OUT=${OUT:-/tmp/gaplab-session}
PY=${PYTHON:-python3}
PROFILE=${SESSION_PROFILE:-paper}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
start=$(date +%s)
echo "session: $(date -u +%FT%TZ), commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"

if [ "${SESSION_WHEELS:-1}" = 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
    echo "session: installing $(ls .whl/*.whl | wc -l) wheels into /tmp/site"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/lib${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
export GAPLAB_DATA=$PWD/data
export GAPLAB_CACHE=${GAPLAB_CACHE:-/tmp/gaplab-runs}

if [ "${SESSION_QUICK:-0}" = 1 ]; then
    probe=(--steps 2 --batch 16 --grid 2)
    mad=(--steps 2 --batch 16 --n 256 --grid 2 --workers 0 --no-budgets)
    metrics=(--n 500 --d 32)
    grid=(--profile smoke --ks 0 1)
else
    probe=()
    mad=(--no-budgets)
    metrics=()
    grid=(--profile cpu)
fi
step() { echo "session: $1 ($(( $(date +%s) - start )) s in)"; }
step "probe"
$PY scripts/gpu/probe.py "${probe[@]}" --out "$OUT/probe.json" > /dev/null
step "benchmarks"
$PY benchmarks/bench_mad.py "${mad[@]}" --out "$OUT"
$PY benchmarks/bench_metrics.py "${metrics[@]}" --out "$OUT"
$PY benchmarks/compare_grid.py "${grid[@]}" --out "$OUT"
left=$(( MINUTES - ($(date +%s) - start) / 60 ))
step "recording at $PROFILE for up to $left more minutes"
if [ "$left" -gt 0 ]; then
    $PY -m gaplab record --profile "$PROFILE" --max-minutes "$left" --out "$OUT/recorded" \
        ${SESSION_CHAPTERS:+--chapters $SESSION_CHAPTERS}
fi
step "done"
