"""A run cache packed for a class: listing, exporting, importing and pruning entries.

A teacher trains the book's runs once (``python -m gaplab cache prepare``), packs them into one tar archive
(:func:`export`), and students unpack it (:func:`import_archive`) or point ``GAPLAB_CACHE`` at a read-only copy.
The archive holds ``gaplab-runs/manifest.json`` (format, gaplab's code version, the profile, and for every entry
its chapters and the SHA-256 and size of each file) and one folder per entry. An import checks every member
against the manifest before anything is moved into the cache, so a damaged, tampered or foreign archive is
refused whole; entries are then moved into place one folder at a time with a rename, so an interrupted import
leaves whole entries or none, and two students importing into one shared folder at once do not collide.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import secrets
import shlex
import shutil
import tarfile
import zlib
from pathlib import Path

from gaplab.runs import store
from gaplab.storage import (
    StorageError,
    check_output_dir,
    explain_os_error,
    sha256_file,
)

__all__ = [
    "ArchiveError",
    "FORMAT",
    "cache_command",
    "current_version",
    "list_entries",
    "export",
    "import_archive",
    "prune",
]

FORMAT = "gaplab-run-cache"
FORMAT_VERSION = 1
ROOT = "gaplab-runs"
#: a manifest of every run of every profile is a few hundred kilobytes; more is not a run archive
MANIFEST_LIMIT = 16 << 20
ENTRY_FILES = (store.FINAL, store.META)
_IMPORT_TMP = re.compile(r"^\.import-(\d+)-[0-9a-f]+$")


class ArchiveError(RuntimeError):
    """An archive cannot be written or imported; nothing was changed in the cache."""


def current_version(kind: str) -> str:
    """The code version a new entry of ``kind`` would be stamped with."""
    if kind == "same-modality":
        from gaplab.experiments.samemodality import entry_version

        return entry_version()
    from gaplab.runs import code_version

    return code_version()


def _catalogue_index() -> dict[str, dict]:
    """key -> {"profiles", "chapters", "name", "names"} over every profile's book runs;
    ``names`` holds (chapter, what the chapter calls the run) pairs."""
    from gaplab.book.catalogue import book_runs
    from gaplab.profiles import PROFILES

    index: dict[str, dict] = {}
    # glyphs="auto" (paper) may stand for either source: list both, and never download MNIST to find out
    variants = [
        (name, g)
        for name, p in PROFILES.items()
        for g in ((None,) if p.mad_glyphs != "auto" else ("mnist", "procedural"))
    ]
    for name, glyphs in variants:
        for run in book_runs(name, glyphs=glyphs):
            if run.key is None:
                continue
            item = index.setdefault(
                run.key,
                {"profiles": [], "chapters": [], "name": run.name, "names": []},
            )
            if name not in item["profiles"]:
                item["profiles"].append(name)
            if run.chapter not in item["chapters"]:
                item["chapters"].append(run.chapter)
                item["names"].append((run.chapter, run.name))
    return index


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
        from gaplab.runs import describe
        from gaplab.training.train import TrainConfig

        try:
            return describe(TrainConfig(**config))
        except (TypeError, ValueError):  # written by another version: say what is known
            pass
    if kind == "same-modality":
        return "same-modality run"
    return "a run no chapter lists"


def list_entries() -> list[dict]:
    """Every entry in every directory of the search path: where, what, for which chapter and profile, size,
    date, and its state ("ok", "training" or interrupted, "damaged: ...", "other code version")."""
    index = _catalogue_index()
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
            if not (entry / store.FINAL).exists() and (
                meta.get("status") == "training" or (entry / store.CKPT).exists()
            ):
                state = "training or interrupted"
            else:
                problem = store.entry_problem(entry)
                state = "ok" if problem is None else f"damaged: {problem}"
            if (
                meta
                and not state.startswith("damaged")
                and meta.get("code_version") != current_version(kind)
            ):
                state = "other code version"
            info = index.get(entry.name, {})
            label = _by_name(info.get("names", [])) or _described(meta, kind)
            rows.append(
                {
                    "location": str(loc.path),
                    "writable": loc.writable,
                    "key": entry.name,
                    "kind": kind,
                    "run": info.get("name", "-"),
                    "label": label,
                    "chapters": info.get("chapters", []),
                    "profiles": info.get("profiles", []),
                    "bytes": store.entry_size(entry),
                    "date": str(meta.get("created") or meta.get("started") or "-"),
                    "state": state,
                }
            )
    return rows


def cache_command(command: str, profile: str, chapters=None, *extra: str) -> str:
    """A ``python -m gaplab cache`` command line with every flag it needs, to be copied
    as it is printed."""
    from gaplab.book.catalogue import CHAPTERS

    words = ["python -m gaplab cache", command, "--profile", shlex.quote(profile)]
    # all chapters is the default: eight --chapter flags would only hide the one that
    # matters
    if chapters and set(chapters) != set(CHAPTERS):
        words += [f"--chapter {c}" for c in CHAPTERS if c in set(chapters)]
    return " ".join([*words, *extra])


def _entry_record(entry: Path) -> dict:
    return {
        name: {
            "sha256": sha256_file(entry / name),
            "bytes": (entry / name).stat().st_size,
        }
        for name in ENTRY_FILES
    }


def export(profile="cpu", out="course-runs.tar", chapters=None) -> dict:
    """Write the runs the book's ``chapters`` (default: all) need at ``profile`` into the tar archive ``out``
    (``.tar.gz`` compresses); returns its manifest. Raises :class:`ArchiveError` listing any run that is not in
    the cache, with the command that trains them."""
    from gaplab.book.catalogue import CHAPTERS, book_runs
    from gaplab.profiles import resolve_profile

    prof = resolve_profile(profile)
    out = Path(out)
    if out.is_dir():
        raise ArchiveError(f"--out {out} is a folder; give the archive's file name")
    try:
        check_output_dir(out.parent, "archive's folder")
    except OSError as exc:
        raise ArchiveError(str(exc)) from None
    runs = book_runs(prof, CHAPTERS if chapters is None else tuple(chapters))
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
    if missing:
        raise ArchiveError(
            f"{len(missing)} of the runs the book needs at profile {prof.name!r} are not in the run cache "
            f"({', '.join(map(str, store.cache_paths()))}): {'; '.join(missing)}. Train them first: "
            f"{cache_command('prepare', prof.name, chapters)}"
        )
    from gaplab import __version__

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gaplab_version": __version__,
        "profile": prof.name,
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
    return manifest


def _stale_imports(folder: Path) -> list[Path]:
    """Temporary folders of imports that no process is running: each live import holds its
    folder's lock (a process id says nothing in another PID namespace or on another machine
    sharing a network file system)."""
    out = []
    for p in folder.iterdir():
        if not (_IMPORT_TMP.fullmatch(p.name) and p.is_dir()):
            continue
        lock = store.EntryLock(p)
        try:
            free = lock.acquire(wait=False)
        except (OSError, RuntimeError):
            continue
        if free:
            lock.release()
            out.append(p)
    return out


def _read_manifest(tf: tarfile.TarFile, archive: Path) -> dict:
    _members(tf, archive)  # reads the whole index: a truncated archive is named here
    try:
        member = tf.getmember(f"{ROOT}/manifest.json")
        if member.size > MANIFEST_LIMIT:
            raise ArchiveError(
                f"{archive}: its manifest declares {member.size} bytes, more than any run "
                f"archive needs ({MANIFEST_LIMIT}); refusing the archive"
            )
        try:
            raw = tf.extractfile(member).read(MANIFEST_LIMIT + 1)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise ArchiveError(
                f"{archive} is truncated or damaged ({type(exc).__name__}: {exc}); copy it again"
            ) from None
        manifest = json.loads(raw)
    except (KeyError, AttributeError, ValueError):
        raise ArchiveError(
            f"{archive} is not a gaplab run archive (no readable {ROOT}/manifest.json); "
            "make one with: "
            + cache_command("export", "cpu", None, "--out course-runs.tar")
        ) from None
    if not isinstance(manifest, dict):
        raise ArchiveError(
            f"{archive} is not a gaplab run archive (its manifest is not a JSON object)"
        )
    if manifest.get("format") != FORMAT:
        raise ArchiveError(
            f"{archive} is not a gaplab run archive (its manifest has format {manifest.get('format')!r})"
        )
    if not isinstance(manifest.get("entries"), dict):
        raise ArchiveError(
            f"{archive}: its manifest's 'entries' is a {type(manifest.get('entries')).__name__}, "
            "not an object of runs; refusing the archive"
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArchiveError(
            f"{archive} has archive format {manifest.get('format_version')}; this gaplab reads "
            f"format {FORMAT_VERSION}"
        )
    return manifest


def _check_members(
    tf: tarfile.TarFile, manifest: dict, archive: Path
) -> dict[str, tarfile.TarInfo]:
    """The file members by name, after refusing anything the manifest does not describe (links, devices,
    paths outside the archive's folder, unknown entries)."""
    wanted = {
        f"{ROOT}/{key}/{name}"
        for key, e in manifest["entries"].items()
        for name in e.get("files", {})
    }
    for key, e in manifest["entries"].items():
        if (
            not store.is_entry_name(key)
            or not isinstance(e, dict)
            or not isinstance(e.get("files"), dict)
            or set(e["files"]) != set(ENTRY_FILES)
            or not all(
                isinstance(f, dict) and _is_size(f.get("bytes"))
                for f in e["files"].values()
            )
        ):
            raise ArchiveError(
                f"{archive}: the manifest's entry {key!r} is not a run cache entry; refusing the archive"
            )
    files = {}
    for m in _members(tf, archive):
        if m.name in (ROOT, f"{ROOT}/manifest.json") or (
            m.isdir() and m.name.rstrip("/").count("/") <= 1
        ):
            continue
        if m.name not in wanted or not m.isfile():
            raise ArchiveError(
                f"{archive}: unexpected member {m.name!r} (not in the manifest, or not a plain file); "
                f"refusing the archive"
            )
        key, fname = m.name.split("/")[1:]
        declared = manifest["entries"][key]["files"][fname]["bytes"]
        if m.issparse() or m.size != declared:
            # refused before a byte is written: a 10 KB archive may declare a 10 GB sparse file
            raise ArchiveError(
                f"{archive}: {m.name} holds {m.size} bytes"
                + (" as a sparse file" if m.issparse() else "")
                + f" where the manifest says {declared}; refusing the archive"
            )
        files[m.name] = m
    absent = sorted(wanted - set(files))
    if absent:
        raise ArchiveError(
            f"{archive} lacks files its manifest lists ({', '.join(absent[:3])}{', ...' if len(absent) > 3 else ''}); "
            f"the archive is incomplete"
        )
    for key, e in manifest["entries"].items():
        _check_entry_meta(tf, files[f"{ROOT}/{key}/{store.META}"], e, archive)
    return files


def _check_entry_meta(tf, member, entry: dict, archive: Path) -> None:
    """An entry's own meta.json must be for its key and describe the final.pt the manifest
    describes: checked before a byte of the (large) final.pt is written, not after."""
    key = member.name.split("/")[1]
    try:
        meta = json.loads(tf.extractfile(member).read(MANIFEST_LIMIT))
        want = meta["files"][store.FINAL]
        same = (
            meta.get("key", key) == key
            and want["bytes"] == entry["files"][store.FINAL]["bytes"]
            and want["sha256"] == entry["files"][store.FINAL]["sha256"]
        )
    except (ValueError, KeyError, TypeError):
        same = False
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(
            f"{archive} is truncated or damaged at {member.name} ({exc}); copy it again"
        ) from None
    if not same:
        raise ArchiveError(
            f"{archive}: {member.name} does not describe the {store.FINAL} its manifest "
            "lists (another run's key, size or SHA-256, or not a finished entry); refusing "
            "the archive"
        )


def _is_size(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _members(tf: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    try:
        return tf.getmembers()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ArchiveError(
            f"{archive} is truncated or damaged ({type(exc).__name__}: {exc}); copy it again"
        ) from None


def _check_space(target: Path, files: dict, archive: Path) -> None:
    need = sum(m.size for m in files.values())
    try:
        free = shutil.disk_usage(target).free
    except OSError:
        return
    if need > free:
        raise ArchiveError(
            f"{archive} needs {need / 1e6:.1f} MB and {target} has {free / 1e6:.1f} MB free; "
            "free some space or import with --into another folder; nothing was written"
        )


def import_archive(archive, into=None) -> dict:
    """Unpack a run archive into ``into`` (default: the first writable directory of the search path).

    Returns ``{"into", "added", "present", "profile", "labels"}``: the folder, the keys
    added and those already there, the archive's profile, and for every key the names
    its chapters give it ("mad_training, object_bias: k=2 seed 0"). Every file is
    checked against the manifest's SHA-256 before any entry is moved into the cache; a
    damaged, tampered, foreign or other-version archive raises :class:`ArchiveError` and
    leaves the cache as it was, without a folder that ``into`` made for it.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ArchiveError(f"{archive} does not exist (or is not a file)")
    made = [] if into is None else _missing_folders(Path(into).expanduser().absolute())
    try:
        return _import(archive, into)
    except BaseException:
        # a refused import leaves no trace: the folders --into made are removed again,
        # innermost first and only while empty, so nothing that was there before (or
        # that another import put there) goes
        for folder in made:
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _missing_folders(path: Path) -> list[Path]:
    """The folders of ``path`` that do not exist yet, innermost first."""
    out = []
    for folder in [path, *path.parents]:
        if folder.exists() or folder.is_symlink():
            break
        out.append(folder)
    return out


def _import(archive: Path, into) -> dict:
    if into is None:
        loc = store.write_location()
        if loc is None:
            raise ArchiveError(
                f"no writable directory in {store.ENV} ({', '.join(map(str, store.cache_paths()))}) "
                f"to import into; pass --into DIR"
            )
    else:
        loc = store.check_location(Path(into).expanduser().absolute(), "--into")
        if not loc.writable:
            raise ArchiveError(
                f"cannot import into {loc.path}: {loc.reason}; choose another --into"
            )
    target = loc.path
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{archive} is not a readable tar archive ({exc})") from None
    with tf:
        manifest = _read_manifest(tf, archive)
        files = _check_members(tf, manifest, archive)
        for key, e in manifest["entries"].items():
            want = current_version(e.get("kind", "mad"))
            if e.get("code_version") != want:
                again = cache_command(
                    "export",
                    str(manifest.get("profile") or "cpu"),
                    {
                        c
                        for e in manifest["entries"].values()
                        for c in e.get("chapters", [])
                    },
                    f"--out {shlex.quote(str(archive))}",
                )
                raise ArchiveError(
                    f"{archive} was made by another version of gaplab (entry {key}: code version "
                    f"{e.get('code_version')}, this one makes {want}); its runs would never be used here. Export it "
                    f"again with the same gaplab commit the students use: {again}"
                )
        for stale in _stale_imports(target):
            shutil.rmtree(stale, ignore_errors=True)
        _check_space(target, files, archive)
        tmp = target / f".import-{os.getpid()}-{secrets.token_hex(4)}"
        added, present, busy = [], [], []
        held = None
        try:
            tmp.mkdir()
            held = store.EntryLock(tmp)
            held.acquire()
            for name, member in files.items():
                key, fname = name.split("/")[1:]
                want = manifest["entries"][key]["files"][fname]
                dest = tmp / key / fname
                dest.parent.mkdir(exist_ok=True)
                h, size = hashlib.sha256(), 0
                try:
                    with tf.extractfile(member) as src, open(dest, "wb") as out:
                        # never more than the manifest declared, whatever the stream holds
                        while size <= want["bytes"] and (block := src.read(1 << 20)):
                            h.update(block)
                            size += len(block)
                            out.write(block)
                except (tarfile.TarError, EOFError, zlib.error) as exc:
                    raise ArchiveError(
                        f"{archive} is truncated or damaged at {name} ({exc}); nothing was "
                        "imported"
                    ) from None
                if h.hexdigest() != want.get("sha256") or size != want.get("bytes"):
                    raise ArchiveError(
                        f"{archive}: {key}/{fname} does not match its SHA-256 in the manifest: the "
                        f"archive is damaged or was changed; nothing was imported"
                    )
            for key in manifest["entries"]:
                problem = store.entry_problem(tmp / key)
                if problem is not None:
                    raise ArchiveError(
                        f"{archive}: entry {key} is not whole ({problem}); nothing was imported"
                    )
            for key in manifest["entries"]:
                dest = target / key
                if dest.exists() and store.entry_problem(dest) is None:
                    present.append(key)
                    continue
                if dest.exists():
                    # damaged or unfinished here: the archive's copy replaces it, unless a
                    # process is training it right now
                    lock = store.EntryLock(dest)
                    if not lock.acquire(wait=False):
                        busy.append(key)
                        continue
                    try:
                        shutil.rmtree(dest)
                    finally:
                        lock.release()
                try:
                    os.rename(tmp / key, dest)
                    added.append(key)
                except OSError:
                    if dest.exists() and store.entry_problem(dest) is None:
                        present.append(key)  # another import put it there first
                    else:
                        raise
        except OSError as exc:
            raise ArchiveError(
                f"import into {target} failed: {explain_os_error(exc)}; whole entries already moved "
                f"in are kept ({len(added)}), nothing partial is left"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if held is not None:
                held.release()
    return {
        "into": str(target),
        "added": added,
        "present": present,
        "busy": busy,
        "profile": manifest.get("profile"),
        "labels": {
            key: f"{', '.join(e.get('chapters', [])) or '-'}: {e.get('name', '-')}"
            for key, e in manifest["entries"].items()
        },
    }


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


def prune(*, dry_run: bool = False) -> list[dict]:
    """Remove, from the writable directories of the search path, entries made by other code versions (which no
    chapter can use), entries older gaplab versions left without metadata, leftovers of killed imports, and,
    inside entries no process is training, temporary files of killed writers and files set aside as damaged.
    Returns what was (or, with ``dry_run``, would be) removed."""
    removed = []
    for loc in store.locations():
        if not loc.writable:
            continue
        stale = set(_stale_imports(loc.path))
        for p in sorted(loc.path.iterdir()):
            why = None
            if p in stale:
                why = "left by an interrupted import"
            elif p.is_dir() and store.is_entry_name(p.name):
                meta = store.read_meta(p)
                if meta is None:
                    why = "no metadata (made by an older gaplab)"
                elif meta.get("code_version") != current_version(
                    meta.get("kind", "mad")
                ):
                    why = "other code version"
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
