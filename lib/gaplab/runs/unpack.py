"""Importing a run archive (see :mod:`gaplab.runs.archive`): check everything, then move whole entries in.

An import checks every member against the manifest before anything is moved into the cache, so a damaged,
tampered or foreign archive is refused whole; entries are then moved into place one folder at a time with a
rename, so an interrupted import leaves whole entries or none, and two students importing into one shared folder
at once do not collide. The unpacking happens in a temporary ``.import-<pid>-<hex>`` folder of the target, held
under an :class:`~gaplab.runs.store.EntryLock` while it lives (:func:`stale_imports` finds those of killed imports).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import tarfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from gaplab.runs import store
from gaplab.runs.archive import (
    ENTRY_FILES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_LIMIT,
    ROOT,
    ArchiveError,
    cache_command,
    current_version,
)
from gaplab.storage import explain_os_error

__all__ = ["import_archive", "stale_imports"]

_IMPORT_TMP = re.compile(r"^\.import-(\d+)-[0-9a-f]+$")


def stale_imports(folder: Path) -> list[Path]:
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


def _check_entries(manifest: dict, archive: Path) -> None:
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
    _check_entries(manifest, archive)
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


def _check_versions(manifest: dict, archive: Path, versions, order) -> None:
    """Refuse an archive whose entries another gaplab made: their runs would never be used here."""
    for key, e in manifest["entries"].items():
        want = current_version(e.get("kind", "mad"), versions)
        if want is None or e.get("code_version") == want:
            continue
        again = cache_command(
            "export",
            str(manifest.get("profile") or "cpu"),
            {c for e in manifest["entries"].values() for c in e.get("chapters", [])},
            f"--out {shlex.quote(str(archive))}",
            order=order,
        )
        raise ArchiveError(
            f"{archive} was made by another version of gaplab (entry {key}: code version "
            f"{e.get('code_version')}, this one makes {want}); its runs would never be used here. Export it "
            f"again with the same gaplab commit the students use: {again}"
        )


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


def import_archive(
    archive, into=None, *, versions: Mapping[str, str] | None = None, order=()
) -> dict:
    """Unpack a run archive into ``into`` (default: the first writable directory of the search path).

    Returns ``{"into", "added", "present", "busy", "profile", "labels"}``: the folder, the keys
    added, those already there and those a process is training there now, the archive's profile,
    and for every key the names its chapters give it ("mad_training, object_bias: k=2 seed 0").
    Every file is checked against the manifest's SHA-256 before any entry is moved into the cache;
    a damaged, tampered, foreign or other-version archive (``versions``: kind -> code version, as
    :func:`~gaplab.runs.archive.current_version` takes) raises :class:`ArchiveError` and leaves the
    cache as it was, without a folder that ``into`` made for it. ``order`` (every chapter) shapes
    the export command a refusal advises.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ArchiveError(f"{archive} does not exist (or is not a file)")
    made = [] if into is None else _missing_folders(Path(into).expanduser().absolute())
    try:
        return _import(archive, into, versions, order)
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


def _target(into) -> Path:
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
    return loc.path


def _import(archive: Path, into, versions, order) -> dict:
    target = _target(into)
    try:
        tf = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{archive} is not a readable tar archive ({exc})") from None
    with tf:
        manifest = _read_manifest(tf, archive)
        files = _check_members(tf, manifest, archive)
        _check_versions(manifest, archive, versions, order)
        for stale in stale_imports(target):
            shutil.rmtree(stale, ignore_errors=True)
        _check_space(target, files, archive)
        moved = _unpack(tf, manifest, files, archive, target)
    return {
        "into": str(target),
        **moved,
        "profile": manifest.get("profile"),
        "labels": {
            key: f"{', '.join(e.get('chapters', [])) or '-'}: {e.get('name', '-')}"
            for key, e in manifest["entries"].items()
        },
    }


def _unpack(tf, manifest: dict, files: dict, archive: Path, target: Path) -> dict:
    """Extract into a locked temporary folder of ``target``, check, then move whole entries in:
    ``{"added", "present", "busy"}``."""
    tmp = target / f".import-{os.getpid()}-{secrets.token_hex(4)}"
    moved = {"added": [], "present": [], "busy": []}
    held = None
    try:
        tmp.mkdir()
        held = store.EntryLock(tmp)
        held.acquire()
        for member in files.values():
            _extract(tf, member, manifest, archive, tmp)
        for key in manifest["entries"]:
            problem = store.entry_problem(tmp / key)
            if problem is not None:
                raise ArchiveError(
                    f"{archive}: entry {key} is not whole ({problem}); nothing was imported"
                )
        for key in manifest["entries"]:
            moved[_move_in(tmp / key, target / key)].append(key)
    except OSError as exc:
        raise ArchiveError(
            f"import into {target} failed: {explain_os_error(exc)}; whole entries already moved "
            f"in are kept ({len(moved['added'])}), nothing partial is left"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if held is not None:
            held.release()
    return moved


def _extract(tf, member, manifest: dict, archive: Path, tmp: Path) -> None:
    """One member into ``tmp``, hashed as it is written; never more than the manifest declares."""
    key, fname = member.name.split("/")[1:]
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
            f"{archive} is truncated or damaged at {member.name} ({exc}); nothing was "
            "imported"
        ) from None
    if h.hexdigest() != want.get("sha256") or size != want.get("bytes"):
        raise ArchiveError(
            f"{archive}: {key}/{fname} does not match its SHA-256 in the manifest: the "
            f"archive is damaged or was changed; nothing was imported"
        )


def _move_in(src: Path, dest: Path) -> str:
    """Move one checked entry into the cache: "added", "present" (a whole copy is there) or "busy"."""
    if dest.exists() and store.entry_problem(dest) is None:
        return "present"
    if dest.exists():
        # damaged or unfinished here: the archive's copy replaces it, unless a
        # process is training it right now
        lock = store.EntryLock(dest)
        if not lock.acquire(wait=False):
            return "busy"
        try:
            shutil.rmtree(dest)
        finally:
            lock.release()
    try:
        os.rename(src, dest)
    except OSError:
        if dest.exists() and store.entry_problem(dest) is None:
            return "present"  # another import put it there first
        raise
    return "added"
