"""Build the book: execute every chapter (through Jupyter Book's cache) and write _build/html.

Called by `make book`. Fails (non-zero exit) when a cell raises, a claim check fails, or the executed
notebooks report errors; Jupyter Book alone would exit 0 on some of those.

    python scripts/build_book.py [BOOK_ROOT]     (default: the repository; the tests build small books)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def source_hash() -> str:
    """Hash of what the notebooks' results depend on besides their own code: gaplab and the shipped data."""
    h = hashlib.sha256()
    files = sorted((REPO / "lib" / "gaplab").rglob("*.py")) + sorted(
        p for p in (REPO / "data").rglob("*") if p.is_file()
    )
    for path in files:
        h.update(str(path.relative_to(REPO)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _follow(path: Path, stop: threading.Event) -> None:
    """Print the lines gaplab appends to ``path`` (which model trains, how long the rest takes) as they come:
    the chapters' own output goes into their notebooks, not into this log."""
    with open(path) as f:
        while True:
            line = f.readline()
            if line:
                print(line.rstrip("\n"), flush=True)
            elif stop.wait(1.0):
                rest = f.read()
                if rest:
                    print(rest.rstrip("\n"), flush=True)
                return


def prepare_runs(root: Path, env: dict) -> int:
    """Train the runs of the chapters about to execute before they do, several at once where the cores allow
    (``gaplab cache prepare --jobs``; GAPLAB_BUILD_JOBS, default ``auto``): on two cores the book's runs trained
    two at a time with one thread each trained 1.14x as fast as one by one on both (gaplab.runs.parallel).
    The chapters then load them."""
    from gaplab.book.catalogue import CHAPTERS
    from gaplab.profiles import resolve_profile
    from gaplab.runs.parallel import cpu_jobs

    jobs = env.get("GAPLAB_BUILD_JOBS", "auto")
    try:
        processes = cpu_jobs(jobs)[0]
    except ValueError as exc:
        raise SystemExit(f"GAPLAB_BUILD_JOBS: {exc}") from None
    chapters = [c for c in CHAPTERS if (root / "notebooks" / f"{c}.ipynb").exists()]
    if not chapters or processes < 2:
        return 0
    cmd = [sys.executable, "-m", "gaplab", "cache", "prepare", "--jobs", jobs]
    cmd += ["--profile", resolve_profile("auto").name]
    for chapter in chapters:
        cmd += ["--chapter", chapter]
    print(">>", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=root, env=env).returncode


def main(root: Path = REPO) -> int:
    root = root.resolve()
    build = root / "_build"
    cache = build / ".jupyter_cache"
    hash_file = build / ".gaplab-sources.sha256"
    digest = source_hash()
    changed = not hash_file.exists() or hash_file.read_text().strip() != digest
    if changed and cache.exists():
        print(
            ">> gaplab or the shipped data changed since the last build: clearing the execution cache"
        )
        shutil.rmtree(cache)
    build.mkdir(exist_ok=True)
    progress = build / "progress.log"
    progress.write_text("")
    env = dict(
        os.environ,
        GAPLAB_SITE_CHARTS="1",
        MPLBACKEND="Agg",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        GAPLAB_BUILD_LOG=str(progress),
    )
    reports_dir = build / "html" / "reports"
    shutil.rmtree(
        reports_dir, ignore_errors=True
    )  # reports of an earlier build are stale
    if changed:
        # every chapter executes: train what they need first, side by side
        code = prepare_runs(root, env)
        if code != 0:
            print(
                f"\nbook build FAILED: training the chapters' runs ended with exit {code}"
            )
            return code
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(root)]
    if changed:
        cmd.append(
            "--all"
        )  # Sphinx would otherwise keep the pages of notebooks whose own source is unchanged
    print(">>", " ".join(cmd), flush=True)
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(progress, stop), daemon=True)
    follower.start()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env)
    finally:
        stop.set()
        follower.join(timeout=5)
    reports = sorted(reports_dir.glob("**/*.log")) if reports_dir.exists() else []
    if proc.returncode != 0 or reports:
        for rep in reports:
            print(
                f"\n== execution report {rep.relative_to(root)} ==\n{rep.read_text()[-4000:]}"
            )
        print(
            f"\nbook build FAILED (jupyter-book exit {proc.returncode}, {len(reports)} execution error reports)"
        )
        return proc.returncode or 1
    build.mkdir(exist_ok=True)
    hash_file.write_text(digest + "\n")
    print(f"\nbook built: {build / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO))
