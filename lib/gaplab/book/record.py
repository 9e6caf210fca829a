"""Recorded results: a chapter executed at a profile, kept as JSON beside the numbers the build computes.

The book is built on two CPU cores at ``profile="cpu"``; the papers' scale (``paper``) needs a GPU. A record
is one chapter executed through papermill at a profile, with every value it glued, every claim verdict it
printed, and where it ran: device, precision, torch, date, commit, wall time and the command that reproduces
it. Records live in ``data/recorded/<profile>/<chapter>.json``, written atomically, one chapter at a time, so
a session that ends half-way keeps the chapters it finished and the next one goes on from there.

Each chapter ends with :func:`gaplab.book.ladder.show`, which puts the recorded numbers of every profile
beside the ones its build just computed, labelled as recorded, rung by rung; with no record it says so and
gives the command.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from gaplab.paths import BookNotFoundError, book_root, data_dir, toc_order

__all__ = [
    "RecordError",
    "record_dir",
    "record_chapter",
    "load_record",
    "read_glued",
    "chapters",
    "trained_runs",
    "SCHEMA",
]

SCHEMA = 1
#: the keys every record has
_FIELDS = (
    "schema",
    "chapter",
    "profile",
    "completed",
    "error",
    "date",
    "commit",
    "changed_files",
    "machine",
    "wall_seconds",
    "command",
    "values",
    "claims",
)


class RecordError(ValueError):
    """A record file that cannot be read as one, or a chapter that cannot be recorded."""


def record_dir() -> Path:
    """``data/recorded`` of the book's shipped data (see :func:`gaplab.paths.data_dir`)."""
    return data_dir() / "recorded"


def chapters(notebooks: Path | None = None) -> list[str]:
    """The chapters in the order of the book's table of contents (a chapter that compares others' runs
    comes after them)."""
    root = book_root()
    notebooks = notebooks or root / "notebooks"
    return toc_order((p.stem for p in notebooks.glob("*.ipynb")), root / "_toc.yml")


def read_glued(nb) -> dict:
    """name -> value of every ``glue`` call in an executed notebook (plain Python literals)."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook", {})
            if record.get("name"):
                text = out["data"][record.get("mime_prefix", "") + "text/plain"]
                values[record["name"]] = ast.literal_eval(text)
    return values


def _git(*args) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=book_root(), capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError, BookNotFoundError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _changed_files(records: Path) -> str | None:
    """``git status`` of the book's tracked files, leaving out the records folder: a record written a moment
    ago by the same command is not a change to the code the next chapter runs."""
    spec = ["."]
    try:
        inside = records.resolve().relative_to(book_root().resolve())
    except (ValueError, BookNotFoundError):
        inside = None
    if inside is not None and str(inside) != ".":
        spec.append(f":(exclude){inside.as_posix()}")
    return _git("status", "--porcelain", "--untracked-files=no", "--", *spec)


def machine() -> dict:
    """Where a record is made: device, GPU name and compute capability, training precision, torch."""
    # heavy: torch (and the precision rule, which needs it) only when a record is made
    import torch

    from gaplab.training.precision import (  # heavy: imports torch
        choose_precision,
        cpu_precision_default,
    )

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    return {
        "device": device.type,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
        # the chapters' runs are built from the profile, so they train in the environment's CPU precision
        "precision": choose_precision(device, cpu_precision_default()).name,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
    }


def trained_runs(stem: str, profile: str) -> dict[str, float | None]:
    """The trained runs chapter ``stem`` uses at ``profile``: cache key -> the seconds its training took, as
    its cache entry says (None where no finished entry is found). Empty for a chapter that trains nothing.

    A record's ``wall_seconds`` is the time to execute the chapter, usually on runs trained before
    (``gaplab cache prepare``); this is what the training itself cost. Keys let a sum over several
    records count a run that two chapters share once."""
    # heavy (torch, the experiments): only when a record is made
    from gaplab.book import catalogue
    from gaplab.runs import store  # torch too, as the line above

    if stem not in catalogue.CHAPTERS:
        return {}
    out: dict[str, float | None] = {}
    for run in catalogue.book_runs(profile, [stem]):
        if run.key is None:  # its source run was never trained
            continue
        final = store.find_final(run.key)
        meta = store.read_meta(final.parent) if final is not None else None
        seconds = meta.get("train_seconds") if meta else None
        out[run.key] = float(seconds) if isinstance(seconds, (int, float)) else None
    return out


def _path(stem: str, profile: str, out_dir: Path | None) -> Path:
    return Path(out_dir or record_dir()) / profile / f"{stem}.json"


def record_chapter(
    stem: str,
    profile: str = "paper",
    *,
    out_dir: Path | None = None,
    notebooks: Path | None = None,
    command: str | None = None,
) -> dict:
    """Execute chapter ``stem`` at ``profile`` and write its record; returns the record.

    A chapter that stops with an error (a claim not reproduced, a cell that fails) is recorded too, with
    ``completed`` false, the error, and what it glued and checked before it stopped.
    """
    try:
        import papermill  # optional: only recording executes chapters
    except ImportError as exc:  # Colab and a plain install have no papermill
        raise RecordError(
            "recording executes chapters with papermill, which is not installed: "
            "pip install papermill"
        ) from exc

    notebooks = Path(notebooks or book_root() / "notebooks")
    source = notebooks / f"{stem}.ipynb"
    if not source.exists():
        known = ", ".join(chapters(notebooks))
        raise RecordError(f"no chapter {stem!r} in {notebooks}; chapters: {known}")
    path = _path(stem, profile, out_dir)
    command = command or (
        f"python -m gaplab record --profile {profile} --chapters {stem}"
    )
    values, claims, error, wall = _execute(papermill, source, notebooks, profile)
    trained = trained_runs(stem, profile)
    changed = _changed_files(Path(out_dir or record_dir()))
    record = {
        "schema": SCHEMA,
        "chapter": stem,
        "profile": profile,
        "completed": error is None,
        "error": error,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "HEAD"),
        "changed_files": changed.splitlines() if changed else [],
        "machine": machine(),
        "wall_seconds": round(wall, 1),
        "trained_runs": trained,
        "command": command,
        "values": values,
        "claims": claims,
    }
    _write_atomic(path, record)
    return record


def _execute(papermill, source: Path, notebooks: Path, profile: str):
    """Run chapter ``source`` at ``profile`` through papermill; returns what it glued (name -> value), the
    claims it checked, the error it stopped at (or None) and its wall time in seconds."""
    with tempfile.TemporaryDirectory(prefix="gaplab-record-") as tmp:
        executed = Path(tmp) / source.name
        logs = {
            "GAPLAB_CLAIM_LOG": Path(tmp) / "claims.jsonl",
            "GAPLAB_GLUE_LOG": Path(tmp) / "glued.jsonl",
        }
        saved = {name: os.environ.get(name) for name in logs}
        os.environ.update({name: str(path) for name, path in logs.items()})
        error = None
        started = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters={"profile": profile},
                kernel_name="python3",
                cwd=str(notebooks),
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        wall = time.perf_counter() - started
        # a name glued twice keeps its last value, as on the page
        values = {
            line["name"]: line["value"] for line in _lines(logs["GAPLAB_GLUE_LOG"])
        }
        claims = _lines(logs["GAPLAB_CLAIM_LOG"])
    return values, claims, error, wall


def _lines(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines()]
        if path.exists()
        else []
    )


def _write_atomic(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_record(
    stem: str, profile: str = "paper", *, out_dir: Path | None = None
) -> dict | None:
    """The record of chapter ``stem`` at ``profile``, or None when there is none; a file that is not a whole
    record raises :class:`RecordError` naming it."""
    path = _path(stem, profile, out_dir)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path} is not a readable record: {exc}") from None
    missing = (
        [k for k in _FIELDS if k not in record] if isinstance(record, dict) else _FIELDS
    )
    if missing:
        raise RecordError(
            f"{path} is not a whole record: it lacks {', '.join(missing)}"
        )
    if record["schema"] != SCHEMA:
        raise RecordError(
            f"{path} has schema {record['schema']}; this gaplab reads {SCHEMA}"
        )
    if record["chapter"] != stem or record["profile"] != profile:
        raise RecordError(
            f"{path} holds {record['chapter']!r} at {record['profile']!r}, not {stem!r} at {profile!r}"
        )
    return record


def _where(record: dict) -> str:
    m = record["machine"]
    device = (
        f"{m['gpu']} ({m['precision']})" if m.get("gpu") else f"CPU ({m['precision']})"
    )
    commit = (record["commit"] or "unknown commit")[:10]
    if record["changed_files"]:
        commit += " with uncommitted changes"
    return (
        f"recorded at profile {record['profile']!r} on {device}, {record['date'][:10]}, "
        f"commit {commit}, {record['wall_seconds'] / 60:.1f} min"
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.3g}" for v in value) + "]"
    return str(value)
