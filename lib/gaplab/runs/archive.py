"""A run cache packed for a class: the archive format and :func:`export`.

A teacher trains the runs a course needs once (``python -m gaplab cache prepare``), packs them into one tar archive
(:func:`export`), and students unpack it (:func:`gaplab.runs.unpack.import_archive`) or point ``GAPLAB_CACHE`` at a
read-only copy. The archive holds ``gaplab-runs/manifest.json`` (format, gaplab's code version, the profile, and
for every entry the chapters that use it and the SHA-256 and size of each file) and one folder per entry.

The run cache knows configurations and files, no chapter: which runs to pack, and the names and chapters they go
by, come from the caller (the command line gathers them from :mod:`gaplab.book.catalogue`), as do the code
versions of entry kinds other than MAD runs (``versions``: kind -> version).
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import shlex
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from gaplab import __version__
from gaplab.profiles import resolve_profile
from gaplab.runs import code_version, store
from gaplab.storage import check_output_dir, explain_os_error, sha256_file

__all__ = [
    "ArchiveError",
    "FORMAT",
    "cache_command",
    "current_version",
    "export",
]

FORMAT = "gaplab-run-cache"
FORMAT_VERSION = 1
ROOT = "gaplab-runs"
#: a manifest of every run of every profile is a few hundred kilobytes; more is not a run archive
MANIFEST_LIMIT = 16 << 20
ENTRY_FILES = (store.FINAL, store.META)


class ArchiveError(RuntimeError):
    """An archive cannot be written or imported; nothing was changed in the cache."""


def current_version(kind: str, versions: Mapping[str, str] | None = None) -> str | None:
    """The code version a new entry of ``kind`` is stamped with, from ``versions`` (kind -> version; default:
    MAD runs' own). None for a kind ``versions`` does not name: such entries are not judged by version."""
    if versions is None:
        versions = {"mad": code_version()}
    return versions.get(kind)


def cache_command(
    command: str, profile: str, chapters=None, *extra: str, order=()
) -> str:
    """A ``python -m gaplab cache`` command line with every flag it needs, to be copied as it is printed.
    ``order`` is every chapter the command knows, in the order its flags follow."""
    words = ["python -m gaplab cache", command, "--profile", shlex.quote(profile)]
    # all chapters is the default: eight --chapter flags would only hide the one that
    # matters
    if chapters and set(chapters) != set(order):
        wanted = set(chapters)
        words += [f"--chapter {c}" for c in (order or sorted(wanted)) if c in wanted]
    return " ".join([*words, *extra])


def _entry_record(entry: Path) -> dict:
    return {
        name: {
            "sha256": sha256_file(entry / name),
            "bytes": (entry / name).stat().st_size,
        }
        for name in ENTRY_FILES
    }


def _gather(runs) -> tuple[dict[str, dict], list[str]]:
    """The stored entries of ``runs`` by key (a run several chapters use is packed once, naming them all) and
    the runs that are not stored ("chapter: name")."""
    entries: dict[str, dict] = {}
    missing = []
    for run in runs:
        final = store.find_final(run.key) if run.key else None
        if final is None:
            missing.append(f"{run.chapter}: {run.name}")
            continue
        item = entries.setdefault(
            run.key,
            {"name": run.name, "kind": run.kind, "chapters": [], "entry": final.parent},
        )
        if run.chapter not in item["chapters"]:
            item["chapters"].append(run.chapter)
    return entries, missing


def _manifest(profile: str, entries: dict[str, dict]) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gaplab_version": __version__,
        "profile": profile,
        "created": _dt.datetime.now(_dt.timezone.utc)
        .replace(microsecond=0)
        .isoformat(),
        "entries": {
            key: {
                "name": e["name"],
                "kind": e["kind"],
                "chapters": e["chapters"],
                "code_version": (store.read_meta(e["entry"]) or {}).get("code_version"),
                "files": _entry_record(e["entry"]),
            }
            for key, e in entries.items()
        },
    }


def _write(out: Path, manifest: dict, entries: dict[str, dict]) -> None:
    """The archive, written under a temporary name and renamed: a reader never sees half of one."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    mode = "w:gz" if out.name.endswith((".tar.gz", ".tgz")) else "w"
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT) as tf:
            info = tarfile.TarInfo(f"{ROOT}/manifest.json")
            info.size, info.mode, info.mtime = (
                len(data),
                0o644,
                int(_dt.datetime.now().timestamp()),
            )
            tf.addfile(info, io.BytesIO(data))
            for key, e in entries.items():
                for name in ENTRY_FILES:
                    tf.add(
                        e["entry"] / name,
                        arcname=f"{ROOT}/{key}/{name}",
                        recursive=False,
                    )
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ArchiveError(f"could not write {out}: {explain_os_error(exc)}") from None


def export(runs: Iterable, out="course-runs.tar", *, profile="cpu", order=()) -> dict:
    """Write the cached entries of ``runs`` (each with ``key``, ``name``, ``kind`` and the ``chapter`` that uses
    it, as :func:`gaplab.book.catalogue.book_runs` gives them for ``profile``) into the tar archive ``out``
    (``.tar.gz`` compresses); returns its manifest. Raises :class:`ArchiveError` listing any run that is not in
    the cache, with the command that trains them (``order``: every chapter, as :func:`cache_command` takes)."""
    prof = resolve_profile(profile)
    out = Path(out)
    if out.is_dir():
        raise ArchiveError(f"--out {out} is a folder; give the archive's file name")
    try:
        check_output_dir(out.parent, "archive's folder")
    except OSError as exc:
        raise ArchiveError(str(exc)) from None
    runs = list(runs)
    entries, missing = _gather(runs)
    if missing:
        chapters = list(dict.fromkeys(r.chapter for r in runs))
        raise ArchiveError(
            f"{len(missing)} of the runs the book needs at profile {prof.name!r} are not in the run cache "
            f"({', '.join(map(str, store.cache_paths()))}): {'; '.join(missing)}. Train them first: "
            f"{cache_command('prepare', prof.name, chapters, order=order)}"
        )
    manifest = _manifest(prof.name, entries)
    _write(out, manifest, entries)
    return manifest
