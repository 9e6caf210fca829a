"""The prepared GPU session (scripts/gpu/session.sh), run end to end at toy sizes on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.notebooks  # it executes a chapter


def test_the_session_runs_every_step_and_writes_only_to_out(tmp_path):
    before = sorted(p.name for p in (ROOT / "benchmarks" / "results").iterdir())
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "PYTHON": sys.executable,
        "GAPLAB_CACHE": str(tmp_path / "cache"),
        "SESSION_QUICK": "1",
        "SESSION_WHEELS": "0",
        "SESSION_PROFILE": "smoke",
        "SESSION_CHAPTERS": "mad_training",
    }
    # the minutes are the recording's budget: generous, so that a slow or busy machine
    # still reaches the recording step (the test checks the steps' work, not their speed)
    done = subprocess.run(
        ["bash", "scripts/gpu/session.sh", "600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = tmp_path / "out"
    probe = json.loads((out / "probe.json").read_text())
    assert probe["precision"] == "float32" and probe["device"] == "cpu"
    assert "error" not in probe["steps"], probe["steps"]
    assert probe["steps"]["single_run"]["all_finite"]
    assert probe["steps"]["grid"]["all_finite"]
    assert max(probe["grid_against_single"]["largest_difference"].values()) < 0.05
    assert all(
        v["difference_from_host"] < 1e-6 for v in probe["metrics_on_device"].values()
    )
    names = sorted(p.name for p in out.glob("*.json"))
    assert [n.split("-")[0] for n in names] == ["grid", "mad", "metrics", "probe.json"]
    rec = json.loads((out / "recorded" / "smoke" / "mad_training.json").read_text())
    assert rec["completed"] and rec["values"]["mad_train_samples"] > 0
    assert "session: done" in (out / "session.log").read_text()
    # the benchmarks wrote to $OUT, not into the repository's recorded results
    assert sorted(p.name for p in (ROOT / "benchmarks" / "results").iterdir()) == before
