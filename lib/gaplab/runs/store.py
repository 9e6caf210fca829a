"""Where finished runs are kept: the cache search path and its entries.

``GAPLAB_CACHE`` names one directory or several, separated by ``os.pathsep`` (``:`` on Linux and macOS), for
example a teacher's read-only course cache first and the student's own cache last. Loads look in each in order;
new runs go to the first writable one. Every directory is checked before any model is built: one that cannot be
used at all (a path under a file, no permission to read, missing and impossible to create) raises
:class:`CacheLocationError` naming the variable, the path and the remedy; one that can be read but not written is
used for loading only.

An entry is a folder named by the run's key holding ``final.pt`` (the finished run) and ``meta.json`` (its
configuration, code version, creation date and the SHA-256 of ``final.pt``); a run counts as stored only once
``final.pt`` matches the checksum in ``meta.json``. While a run trains, its folder holds ``ckpt.pt`` (with its
checksums in ``ckpt.json``) and a ``meta.json`` with ``"status": "training"``; the trainer holds the entry's
:class:`EntryLock`. The finished ``meta.json`` names the SHA-256 of the new ``final.pt`` before that file takes
its place, so a kill between the two leaves a finished run whose checksum still proves it whole, or no
``final.pt`` and the last checkpoint to resume.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: EntryLock does nothing
    fcntl = None

from gaplab.storage import (
    atomic_write_json,
    explain_os_error,
    is_temporary,
    probe_write,
    sha256_file,
)

__all__ = [
    "ENV",
    "CacheLocationError",
    "Location",
    "cache_paths",
    "locations",
    "write_location",
    "is_entry_name",
    "read_meta",
    "entry_problem",
    "write_training_meta",
    "write_complete_meta",
    "entry_size",
    "leftovers",
    "EntryLock",
    "find_final",
    "resolve_init",
]

ENV = "GAPLAB_CACHE"
META = "meta.json"
FINAL = "final.pt"
CKPT = "ckpt.pt"
CKPT_SUMS = "ckpt.json"
LOCK = ".lock"
#: a run key (gaplab.runs.run_key) or a same-modality key; anything else in a cache directory is not an entry
_ENTRY = re.compile(r"^(same-modality-)?[0-9a-f]{20}$")


class CacheLocationError(RuntimeError):
    """A directory named by ``GAPLAB_CACHE`` (or the default cache) cannot be used."""


@dataclass(frozen=True)
class Location:
    path: Path
    writable: bool
    #: why it cannot be written (None when it can)
    reason: str | None = None


def _default_dir() -> Path:
    # optional dependency: platformdirs comes with Jupyter, not with gaplab's own requirements, and only a
    # cache without GAPLAB_CACHE needs it
    import platformdirs

    return Path(platformdirs.user_cache_dir("gaplab")) / "runs"


def cache_paths() -> list[Path]:
    """The directories of the search path, in order (absolute; ``~`` expanded)."""
    env = os.environ.get(ENV)
    if env is None or not env.strip():
        return [_default_dir()]
    parts = [p.strip() for p in env.split(os.pathsep) if p.strip()]
    return [Path(p).expanduser().absolute() for p in parts]


def _where() -> str:
    return (
        f"{ENV}={os.environ[ENV]!r}"
        if os.environ.get(ENV, "").strip()
        else f"the default run cache (set {ENV} to change it)"
    )


def _fail(
    path: Path, problem: str, remedy: str, origin: str | None
) -> CacheLocationError:
    where = _where() if origin is None else origin
    return CacheLocationError(
        f"run cache {path} cannot be used: {problem}. It comes from {where}. {remedy}"
    )


def _file_above(path: Path) -> Path | None:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            return parent
    return None


#: why a directory cannot be written, without a remedy: a read-only course folder
#: beside a writable one is how a class is meant to work; remedies are the caller's
_NOT_WRITABLE = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission to write in it",
    errno.EPERM: "writing is not permitted",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
}


def _probe_writable(path: Path) -> str | None:
    """None if a file can be created in ``path``; otherwise the reason."""
    try:
        probe_write(path)
    except OSError as exc:
        return _NOT_WRITABLE.get(exc.errno, exc.strerror or str(exc))
    return None


def check_location(path: Path, origin: str | None = None) -> Location:
    """Validate one directory of the search path, creating it when it is missing and can be made.
    ``origin`` says where the path came from when not from ``GAPLAB_CACHE`` (``"--into"``)."""
    point = f"Point {ENV} at" if origin is None else f"Give {origin}"
    blocker = _file_above(path)
    if blocker is not None:
        what = (
            "it is a file"
            if blocker == path
            else f"{blocker} is a file, not a directory"
        )
        raise _fail(
            path,
            what,
            f"{point} a directory (for example ~/.cache/gaplab/runs).",
            origin,
        )
    if not path.exists():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fail(
                path,
                f"it does not exist and cannot be created ({explain_os_error(exc)})",
                f"Create it yourself, or {point[0].lower() + point[1:]} a directory that exists.",
                origin,
            ) from None
    if not os.access(path, os.R_OK | os.X_OK):
        raise _fail(
            path,
            "no permission to read it",
            "Ask for read access"
            + (f", or remove it from {ENV}." if origin is None else "."),
            origin,
        )
    reason = _probe_writable(path)
    return Location(path, reason is None, reason)


def locations() -> list[Location]:
    """Every directory of the search path, validated (raises :class:`CacheLocationError` for an unusable one)."""
    return [check_location(p) for p in cache_paths()]


def write_location(locs: list[Location] | None = None) -> Location | None:
    """The first writable directory of the search path, or None when there is none."""
    for loc in locations() if locs is None else locs:
        if loc.writable:
            return loc
    return None


def is_entry_name(name: str) -> bool:
    return bool(
        _ENTRY.fullmatch(name)
    )  # match's $ would pass a name ending in a newline


def read_meta(entry: Path) -> dict | None:
    """The entry's metadata, or None when it is missing, unreadable or not a JSON object."""
    try:
        meta = json.loads((Path(entry) / META).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def entry_problem(entry: Path, *, check_hash: bool = True) -> str | None:
    """Why the finished run in ``entry`` cannot be trusted, or None when it is whole."""
    entry = Path(entry)
    final = entry / FINAL
    if not final.exists():
        return f"no {FINAL}"
    meta = read_meta(entry)
    if meta is None:
        return f"no readable {META} (an incomplete copy?)"
    if meta.get("key") not in (None, entry.name):
        return f"{META} is for run {meta.get('key')!r}, not {entry.name!r} (a renamed copy?)"
    if meta.get("status") != "complete":
        return f"{META} says the run is {meta.get('status', 'unfinished')}"
    files = meta.get("files")
    want = files.get(FINAL) if isinstance(files, dict) else None
    if not isinstance(want, dict):
        return f"{META} names no checksum for {FINAL}"
    try:
        size = final.stat().st_size
    except OSError as exc:
        return f"{FINAL} cannot be read ({explain_os_error(exc)})"
    if size != want.get("bytes"):
        return f"{FINAL} has {size} bytes, {META} says {want.get('bytes')} (truncated?)"
    if check_hash and sha256_file(final) != want.get("sha256"):
        return f"{FINAL} does not match its SHA-256 in {META} (damaged?)"
    return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _write_meta(entry: Path, identity: dict, status: str, **fields) -> None:
    """``meta.json``: the entry's identity (key, kind, config, code version), its status, then ``fields``."""
    atomic_write_json(Path(entry) / META, {**identity, "status": status, **fields})


def write_training_meta(
    entry: Path, *, key: str, kind: str, config: dict, code_version: str
) -> None:
    identity = dict(key=key, kind=kind, config=config, code_version=code_version)
    _write_meta(entry, identity, "training", started=_now())


def write_complete_meta(
    entry: Path,
    *,
    key: str,
    kind: str,
    config: dict,
    code_version: str,
    seconds: float,
    summary: dict | None = None,
    final: Path | None = None,
) -> None:
    """Mark ``entry`` finished, naming the SHA-256 of ``final`` (default: its ``final.pt``;
    the run cache names the new file while it still has a temporary name, see ``_keep``)."""
    final = Path(entry) / FINAL if final is None else Path(final)
    identity = dict(key=key, kind=kind, config=config, code_version=code_version)
    _write_meta(
        entry,
        identity,
        "complete",
        created=_now(),
        train_seconds=round(float(seconds), 3),
        summary=summary or {},
        files={FINAL: {"sha256": sha256_file(final), "bytes": final.stat().st_size}},
    )


def entry_size(entry: Path) -> int:
    """Bytes of the entry's own files (a killed writer's temporary file is not one)."""
    return sum(
        p.stat().st_size
        for p in Path(entry).iterdir()
        if p.is_file() and not is_temporary(p.name) and p.name != LOCK
    )


def leftovers(entry: Path) -> list[Path]:
    """Files a killed writer or a damaged run left in ``entry``: temporary files,
    checkpoints or finished runs set aside as damaged, and the checkpoint of a run that
    is stored whole. Only safe to remove under the entry's lock."""
    entry = Path(entry)
    done = entry_problem(entry, check_hash=False) is None
    return sorted(
        p
        for p in entry.iterdir()
        if p.is_file()
        and (
            is_temporary(p.name)
            or ".damaged-" in p.name
            or (done and p.name in (CKPT, CKPT_SUMS))
        )
    )


class EntryLock:
    """An exclusive advisory lock on a cache entry (``flock`` on its ``.lock`` file).

    One process trains a run at a time; a second one with the same key waits and then loads the
    finished run. ``flock`` works across PID namespaces (containers sharing a course folder) and,
    on Linux, on NFS, where process ids mean nothing. Where ``fcntl`` is missing (Windows) the lock
    does nothing. The kernel drops it when its holder dies, so a killed trainer never leaves a
    stale lock.
    """

    #: lock files this process holds: flock would make a second open of one wait for itself
    _held: set = set()

    def __init__(self, entry: Path):
        self.path = Path(entry) / LOCK
        self._fd: int | None = None

    def acquire(self, *, wait: bool = True) -> bool:
        """Take the lock; with ``wait=False`` return False at once when another holds it."""
        if fcntl is None:  # pragma: no cover - Windows
            return True
        if str(self.path) in EntryLock._held:
            if not wait:
                return False
            raise RuntimeError(
                f"this process already holds the lock {self.path}; one run is being "
                "trained twice at once"
            )
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        EntryLock._held.add(str(self.path))
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
            EntryLock._held.discard(str(self.path))


def find_final(key: str, locs: list[Location] | None = None) -> Path | None:
    """``final.pt`` of the whole entry ``key`` in the first directory of the search path that has one."""
    for loc in locations() if locs is None else locs:
        entry = loc.path / key
        if entry.is_dir() and entry_problem(entry) is None:
            return entry / FINAL
    return None


def resolve_init(init_from: str) -> Path:
    """The weights file named by a training config's ``init_from``: ``"run:<key>"`` (a cached run, found through
    the search path wherever it lives) or a path."""
    if init_from.startswith("run:"):
        key = init_from[4:]
        final = find_final(key)
        if final is None:
            raise FileNotFoundError(
                errno.ENOENT,
                f"the run {key} to start from is not in the run cache ({', '.join(map(str, cache_paths()))}); "
                f"train it first (for the entropy chapter: gaplab.experiments.imbalance.finetune_experiment does)",
            )
        return final
    return Path(init_from)
