"""The content-addressed cache of finished runs, for any kind of run: :func:`cached_run` loads a run by its key
from the first directory of the search path that holds a whole copy, or trains it in a reserved slot (an entry
locked against a second process, resuming a checkpoint an interrupted attempt left), stores it atomically and
says so in one line. A damaged entry is set aside with a warning; with no writable directory the run is trained
and not stored. It knows keys, files and directories, never what a run is: :mod:`gaplab.runs.mad` builds MAD
runs' keys on it, and :mod:`gaplab.experiments.samemodality` its own.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

import torch

from gaplab.profiles import PROFILES
from gaplab.runs import store
from gaplab.runs.versions import code_version
from gaplab.storage import CacheWarning, atomic_save, explain_os_error
from gaplab.training.checkpoint import Checkpoint

__all__ = [
    "cached_run",
    "cache_dir",
    "find_or_reserve",
    "keep",
    "Slot",
    "is_stored",
    "last_numbers",
    "progress_line",
    "minutes",
    "still_to_train",
    "out_of_memory",
    "TrainingOutOfMemory",
]

# one line per event, not once per call site: each run that is not stored deserves its own line
warnings.simplefilter("always", CacheWarning)


class TrainingOutOfMemory(RuntimeError):
    """The GPU ran out of memory while training a run."""


def cache_dir() -> Path:
    """The directory new runs are written to: the first writable one of the search path (or, when none is
    writable, the first one).

    >>> import os, tempfile
    >>> from gaplab import runs
    >>> os.environ["GAPLAB_CACHE"] = folder = tempfile.mkdtemp()
    >>> str(runs.cache_dir()) == folder
    True
    """
    locs = store.locations()
    loc = store.write_location(locs)
    return (loc or locs[0]).path


def last_numbers(history: list[dict]) -> dict:
    """The numeric fields of a run's last evaluation: the summary kept in its ``meta.json``.

    >>> from gaplab import runs
    >>> runs.last_numbers([{"step": 0, "l2m": 0.9}, {"step": 10, "l2m": 0.5, "device": "cpu"}])
    {'step': 10, 'l2m': 0.5}
    """
    return {k: v for k, v in history[-1].items() if isinstance(v, (int, float))}


def _notice(message: str) -> None:
    # stderr: shown in Jupyter and Colab, kept out of the rendered pages; the build log gets it through
    # progress_line, since a kernel's stderr ends up in the notebook
    print(f"gaplab: {message}", file=sys.stderr, flush=True)
    progress_line(message)


def progress_line(message: str) -> None:
    """Append one line to the file named by GAPLAB_BUILD_LOG, if set.

    A chapter's own output goes into its notebook; ``make book`` tails this file, so a long build shows which
    model is training and how long the rest will take.

    >>> import os, tempfile
    >>> from pathlib import Path
    >>> from gaplab import runs
    >>> os.environ["GAPLAB_BUILD_LOG"] = log = os.path.join(tempfile.mkdtemp(), "build.log")
    >>> runs.progress_line("k=2 seed 0 trained in 40 s")
    >>> Path(log).read_text().splitlines()
    ['gaplab: k=2 seed 0 trained in 40 s']
    >>> del os.environ["GAPLAB_BUILD_LOG"]
    """
    log = os.environ.get("GAPLAB_BUILD_LOG")
    if log:
        try:
            with open(log, "a") as f:
                f.write(f"gaplab: {message}\n")
        except OSError:  # a progress line is never worth failing a build for
            pass


def is_stored(key: str) -> bool:
    """Whether a finished copy of run ``key`` sits in some directory of the run cache (not checked further).

    >>> from gaplab import runs
    >>> runs.is_stored("0" * 20)
    False
    >>> config = runs.mad_config("smoke", steps=2, eval_every=2)
    >>> _ = runs.get_or_train(config, device="cpu", progress=False)
    >>> runs.is_stored(runs.run_key(config))
    True
    """
    return any((loc.path / key / store.FINAL).exists() for loc in store.locations())


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def still_to_train(times: list[float], total: int) -> str:
    """ "; N more to train, about T" from the times of the ``len(times)`` of ``total`` done so far."""
    left = total - len(times)
    if not left:
        return ""
    return f"; {left} more to train, about {minutes(left * sum(times) / len(times))}"


def _log_use(key: str) -> None:
    """Append ``key`` to the file named by GAPLAB_RUN_LOG (the tests check the catalogue against it)."""
    log = os.environ.get("GAPLAB_RUN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(key + "\n")


def out_of_memory(exc: Exception, key: str, config: dict) -> TrainingOutOfMemory:
    batch = config.get("batch_size")
    profiles = [
        p.name
        for p in PROFILES.values()
        if p.mad_batch == batch and p.mad_steps == config.get("steps")
    ]
    which = f"profile {profiles[0]!r}, " if profiles else ""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return TrainingOutOfMemory(
        f"the GPU ran out of memory training run {key} ({which}batch size {batch}). The last checkpoint is kept, so "
        f"nothing is lost. Free the GPU (close other notebooks, or restart the runtime) and run the cell again; or "
        f"choose a smaller batch: profile='cpu' in the parameters cell (batch {PROFILES['cpu'].mad_batch}), or "
        f"gaplab.runs.mad_config(profile, batch_size=...) for a run of your own. A smaller batch is another recipe "
        f"(fewer negatives per step), so gaplab does not shrink it behind your back. Cause: {exc}"
    )


@dataclasses.dataclass
class Slot:
    """Where a run that is not cached will be trained and stored: ``run_dir`` is None when it cannot be
    stored; ``lock`` is held on ``run_dir`` until the run is stored (see :meth:`release`)."""

    key: str
    run_dir: Path | None
    target: object
    meta: dict
    lock: store.EntryLock | None = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _set_aside(entry: Path, problem: str, key: str, where: Path) -> None:
    """Move a damaged ``final.pt`` out of the way (not deleted: it may be wanted for a post-mortem);
    the entry's checkpoint, if whole, still lets the run resume instead of starting over."""
    final = entry / store.FINAL
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = entry / f"final.damaged-{stamp}.pt"
    try:
        os.replace(final, aside)
        what = f"set aside as {aside.name}"
    except OSError as exc:
        what = f"could not be set aside ({explain_os_error(exc)})"
    warnings.warn(
        f"cached run {key} in {where} could not be read ({problem}); it was {what}, "
        "and the run is trained again (from its checkpoint, if a whole one is there)",
        CacheWarning,
        stacklevel=5,
    )


def _look_up(key: str, locs, load):
    """``(found, result)`` from the first directory of ``locs`` holding a whole copy of ``key``."""
    for loc in locs:
        entry = loc.path / key
        if not (entry / store.FINAL).exists():
            continue
        problem = store.entry_problem(entry)
        if problem is None:
            try:
                return True, load(entry / store.FINAL)
            except Exception as exc:  # noqa: BLE001 - any unreadable entry is retrained, never trusted
                problem = f"{type(exc).__name__}: {exc}"
        if loc.writable:
            _set_aside(entry, problem, key, loc.path)
        else:
            warnings.warn(
                f"cached run {key} in the read-only {loc.path} could not be read ({problem}); skipping it",
                CacheWarning,
                stacklevel=4,
            )
    return False, None


def find_or_reserve(
    key: str,
    *,
    load,
    kind: str,
    config: dict | None,
    version: str | None,
    label: str | None = None,
):
    """``(loaded result, None)`` when the cache holds a whole copy of ``key``; else
    ``(None, slot)`` with the entry's lock held. ``label`` names the run in the line
    that says it is trained."""
    locs = store.locations()
    _log_use(key)
    found, result = _look_up(key, locs, load)
    if found:
        return result, None

    target = store.write_location(locs)
    run_dir = None
    lock = None
    meta = dict(
        key=key,
        kind=kind,
        config=config or {},
        code_version=version or code_version(),
    )
    if target is None:
        why = "; ".join(f"{loc.path}: {loc.reason}" for loc in locs)
        return None, _unstored(
            key,
            meta,
            None,
            f"no writable run cache ({why}). Add a writable directory to {store.ENV} "
            "to keep it.",
        )
    run_dir = target.path / key
    try:
        run_dir.mkdir(exist_ok=True)
        lock = store.EntryLock(run_dir)
        if not lock.acquire(wait=False):
            _notice(
                f"{_named(label, kind, key)} is being trained by another process; waiting for it"
            )
            lock.acquire()
            # the other process may have stored it while this one waited
            found, result = _look_up(key, [target], load)
            if found:
                lock.release()
                return result, None
        resuming = Checkpoint(run_dir).resumable()
        if not resuming:
            store.write_training_meta(run_dir, **meta)
        _notice(
            f"{_named(label, kind, key)} is not in the cache; "
            + ("resuming its checkpoint" if resuming else "training it")
            + f" in {target.path}"
        )
    except OSError as exc:
        if lock is not None:
            lock.release()
        return None, _unstored(
            key,
            meta,
            target,
            f"{target.path} refused a write ({explain_os_error(exc)})",
        )
    return None, Slot(key, run_dir, target, meta, lock)


def _unstored(key: str, meta: dict, target, why: str) -> Slot:
    """A slot for a run that is trained but cannot be kept, with a warning saying why."""
    warnings.warn(
        f"run {key} will be trained but not stored: {why}", CacheWarning, stacklevel=5
    )
    return Slot(key, None, target, meta)


def _named(label: str | None, kind: str, key: str) -> str:
    """How a notice names a run: what it is, then its key (as ``cache list`` does)."""
    return f"{label} (run {key})" if label else f"{kind} run {key}"


def keep(slot: Slot, result, *, to_state, summarise) -> None:
    """Store a trained ``result`` in its slot (when it has one), drop the checkpoint and
    release the entry's lock."""
    try:
        _store(slot, result, to_state=to_state, summarise=summarise)
    finally:
        slot.release()


def _store(slot: Slot, result, *, to_state, summarise) -> None:
    run_dir = slot.run_dir
    if run_dir is None:
        return
    try:
        atomic_save(
            to_state(result),
            run_dir / store.FINAL,
            # the finished metadata names the new file's checksum before the file takes its
            # place: a kill in between leaves no final.pt (the checkpoint resumes), never a
            # finished run that counts as unfinished
            before_replace=lambda tmp: store.write_complete_meta(
                run_dir,
                **slot.meta,
                seconds=getattr(result, "seconds", 0.0),
                summary=summarise(result) if summarise else None,
                final=tmp,
            ),
        )
    except OSError as exc:
        warnings.warn(
            f"run {slot.key} was trained but could not be stored in {slot.target.path}: "
            f"{explain_os_error(exc)}. It is used now (this session keeps it in memory); to store "
            f"it, free space there (or put another directory first in {store.ENV}) and run the "
            f"same cell or command again: it resumes from its last checkpoint, if one was "
            f"written, or is trained again.",
            CacheWarning,
            stacklevel=5,
        )
        return
    try:
        Checkpoint(run_dir).discard()
    except OSError:
        pass  # the run is stored; a checkpoint left behind is only space, and prune removes it


def cached_run(
    key: str,
    *,
    load,
    train,
    to_state,
    kind: str = "mad",
    config: dict | None = None,
    summarise=None,
    version: str | None = None,
    announce=None,
    label: str | None = None,
):
    """The finished run ``key``: loaded by ``load(final_path)`` from the first directory of the search path
    that holds a whole copy; otherwise ``train(run_dir)`` (which resumes from ``run_dir/ckpt.pt`` when an
    interrupted attempt left one), stored as ``to_state(result)`` in the first writable directory.

    Every directory is checked before anything is built. A damaged entry is reported; in a writable directory it
    is removed and retrained, in a read-only one it is skipped. With no writable directory the run is trained and
    returned but not stored, and a warning says why; so does a full disk at the final save. ``summarise(result)``
    gives a few numbers kept in ``meta.json``; ``version`` is the code version stamped there (default
    :func:`code_version`), which ``python -m gaplab cache prune`` compares. ``announce(seconds)`` is called
    after a run was trained (default: a :func:`progress_line` with the key and the time).
    ``label`` says what the run is ("k=2 seed 0", a chapter's name for it) in the lines
    that announce its training.

    Any result a state dict can hold is cached this way; here a number, trained once:

    >>> import torch
    >>> from gaplab import runs
    >>> trained = []
    >>> def train(run_dir):
    ...     trained.append(run_dir)
    ...     return 42
    >>> def load(final):
    ...     return torch.load(final, weights_only=True)["answer"]
    >>> for _ in range(2):
    ...     runs.cached_run("0123456789abcdef0123", kind="toy", load=load, train=train,
    ...                     to_state=lambda answer: {"answer": answer})
    42
    42
    >>> len(trained)
    1
    """
    found, slot = find_or_reserve(
        key, load=load, kind=kind, config=config, version=version, label=label
    )
    if slot is None:
        return found
    started = time.perf_counter()
    try:
        result = train(slot.run_dir)
    except torch.cuda.OutOfMemoryError as exc:
        slot.release()
        raise out_of_memory(exc, key, config or {}) from None
    except BaseException:
        slot.release()
        raise
    took = time.perf_counter() - started
    if announce is None:
        progress_line(f"{_named(label, kind, key)} trained in {minutes(took)}")
    else:
        announce(took)
    keep(slot, result, to_state=to_state, summarise=summarise)
    return result
