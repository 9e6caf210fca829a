"""What the run cache holds and what can go: :func:`list_entries` (``python -m gaplab cache list``) and
:func:`prune` (``cache prune``).

An entry's state is "ok", "training or interrupted", "damaged: ..." or "other code version" (a run made by other
code, which nothing here will load). The cache knows no chapter: what a chapter calls an entry comes from the
caller's ``index`` (the command line builds it with :func:`gaplab.book.catalogue.run_index`); an entry no index
names is described from the configuration its ``meta.json`` keeps.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from gaplab.runs import describe, store
from gaplab.runs.archive import current_version
from gaplab.runs.unpack import stale_imports
from gaplab.storage import StorageError, explain_os_error
from gaplab.training.train import TrainConfig

__all__ = ["list_entries", "prune"]


def _by_name(names: list[tuple[str, str]]) -> str:
    """The chapters that call a run alike share one name, since most runs serve several:
    "mad_training, object_bias: k=2 seed 0; contrastive_gap: loss CLIP"."""
    chapters: dict[str, list[str]] = {}
    for chapter, name in names:
        chapters.setdefault(name, []).append(chapter)
    return "; ".join(f"{', '.join(chs)}: {name}" for name, chs in chapters.items())


def _described(meta: dict, kind: str) -> str:
    """What an entry no chapter lists is, from the configuration its ``meta.json`` keeps
    (a reader's own run, or one of another profile's settings)."""
    config = meta.get("config") or {}
    if kind == "mad" and config:
        try:
            return describe(TrainConfig(**config))
        except (TypeError, ValueError):  # written by another version: say what is known
            pass
    if kind == "same-modality":
        return "same-modality run"
    return "a run no chapter lists"


def _outdated(meta: dict, kind: str, versions) -> bool:
    """Whether ``meta`` names a code version other than the one ``kind`` is made with now."""
    want = current_version(kind, versions)
    return want is not None and meta.get("code_version") != want


def _state(entry: Path, meta: dict, kind: str, versions) -> str:
    if not (entry / store.FINAL).exists() and (
        meta.get("status") == "training" or (entry / store.CKPT).exists()
    ):
        state = "training or interrupted"
    else:
        problem = store.entry_problem(entry)
        state = "ok" if problem is None else f"damaged: {problem}"
    if meta and not state.startswith("damaged") and _outdated(meta, kind, versions):
        state = "other code version"
    return state


def list_entries(
    index: Mapping[str, dict] | None = None,
    versions: Mapping[str, str] | None = None,
) -> list[dict]:
    """Every entry in every directory of the search path: where, what, for which chapter and profile, size,
    date, and its state. ``index`` maps keys to ``{"name", "names", "chapters", "profiles"}`` (``names``: the
    (chapter, name) pairs the chapters use); ``versions`` maps entry kinds to their code version now (default:
    MAD runs' own; a kind it leaves out is not judged by version)."""
    index = index or {}
    rows = []
    for loc in store.locations():
        for entry in sorted(loc.path.iterdir()):
            if not (entry.is_dir() and store.is_entry_name(entry.name)):
                continue
            meta = store.read_meta(entry) or {}
            kind = meta.get(
                "kind",
                "same-modality" if entry.name.startswith("same-modality-") else "mad",
            )
            info = index.get(entry.name, {})
            rows.append(
                {
                    "location": str(loc.path),
                    "writable": loc.writable,
                    "key": entry.name,
                    "kind": kind,
                    "run": info.get("name", "-"),
                    "label": _by_name(info.get("names", [])) or _described(meta, kind),
                    "chapters": info.get("chapters", []),
                    "profiles": info.get("profiles", []),
                    "bytes": store.entry_size(entry),
                    "date": str(meta.get("created") or meta.get("started") or "-"),
                    "state": _state(entry, meta, kind, versions),
                }
            )
    return rows


def _prune_leftovers(entry: Path, dry_run: bool) -> list[dict]:
    """Temporary files of killed writers and damaged files set aside in ``entry``, removed
    only while no process is training it (its lock is free)."""
    lock = store.EntryLock(entry)
    try:
        if not lock.acquire(wait=False):
            return []  # a trainer is writing here now: its temporary file is live
    except OSError:
        return []
    try:
        out = []
        for f in store.leftovers(entry):
            if ".damaged-" in f.name:
                why = "set aside as damaged"
            elif store.is_temporary(f.name):
                why = "temporary file of a writer that was killed"
            else:
                why = "checkpoint of a run that is stored whole"
            out.append({"path": str(f), "bytes": f.stat().st_size, "why": why})
            if not dry_run:
                _remove(f)
        return out
    finally:
        lock.release()


def _why_remove(p: Path, stale: set[Path], versions) -> str | None:
    """Why ``p`` (a member of a cache directory) goes, or None when it stays."""
    if p in stale:
        return "left by an interrupted import"
    if p.is_dir() and store.is_entry_name(p.name):
        meta = store.read_meta(p)
        if meta is None:
            return "no metadata (made by an older gaplab)"
        if _outdated(meta, meta.get("kind", "mad"), versions):
            return "other code version"
    return None


def prune(
    *, dry_run: bool = False, versions: Mapping[str, str] | None = None
) -> list[dict]:
    """Remove, from the writable directories of the search path, entries made by other code versions (which
    nothing can use; ``versions`` as :func:`list_entries` takes), entries older gaplab versions left without
    metadata, leftovers of killed imports, and, inside entries no process is training, temporary files of killed
    writers and files set aside as damaged. Returns what was (or, with ``dry_run``, would be) removed."""
    removed = []
    for loc in store.locations():
        if not loc.writable:
            continue
        stale = set(stale_imports(loc.path))
        for p in sorted(loc.path.iterdir()):
            why = _why_remove(p, stale, versions)
            if why is None:
                if p.is_dir() and store.is_entry_name(p.name):
                    removed += _prune_leftovers(p, dry_run)
                continue
            # a link to an entry elsewhere: the link goes, what it points at stays
            link = p.is_symlink()
            size = (
                0
                if link
                else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
            )
            removed.append({"path": str(p), "bytes": size, "why": why})
            if not dry_run:
                _remove(p)
    return removed


def _remove(path: Path) -> None:
    """Remove a file, a folder, or only the link when ``path`` is a symbolic link (what it
    points at stays); a failure is a :class:`StorageError` naming the path."""
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except OSError as exc:
        raise StorageError(
            exc.errno, f"could not remove {path}: {explain_os_error(exc)}"
        ) from None
