"""Build the book: execute every chapter (through Jupyter Book's cache) and write _build/html.

Called by `make book`. Fails (non-zero exit) when a cell raises, a claim check fails, or the executed
notebooks report errors; Jupyter Book alone would exit 0 on some of those.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
HASH_FILE = BUILD / ".gaplab-sources.sha256"


def source_hash() -> str:
    """Hash of what the notebooks' results depend on besides their own code: gaplab and the shipped data."""
    h = hashlib.sha256()
    files = sorted((ROOT / "lib" / "gaplab").rglob("*.py")) + sorted(p for p in (ROOT / "data").rglob("*") if p.is_file())
    for path in files:
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def main() -> int:
    digest = source_hash()
    if CACHE.exists() and (not HASH_FILE.exists() or HASH_FILE.read_text().strip() != digest):
        print(">> gaplab or the shipped data changed since the last build: clearing the execution cache")
        shutil.rmtree(CACHE)
    env = dict(os.environ, GAPLAB_SITE_CHARTS="1", MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    shutil.rmtree(BUILD / "html" / "reports", ignore_errors=True)  # reports of an earlier build are stale
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT)]
    print(">>", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    reports = sorted((BUILD / "html" / "reports").glob("**/*.log")) if (BUILD / "html" / "reports").exists() else []
    if proc.returncode != 0 or reports:
        for rep in reports:
            print(f"\n== execution report {rep.relative_to(ROOT)} ==\n{rep.read_text()[-4000:]}")
        print(f"\nbook build FAILED (jupyter-book exit {proc.returncode}, {len(reports)} execution error reports)")
        return proc.returncode or 1
    BUILD.mkdir(exist_ok=True)
    HASH_FILE.write_text(digest + "\n")
    print(f"\nbook built: {BUILD / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
