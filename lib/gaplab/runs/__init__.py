"""Run configurations from profiles, and a content-addressed cache of finished training runs.

A run's key hashes its :class:`~gaplab.training.train.TrainConfig` together with the version of the training code (a hash
of the modules and model configs that determine the result), so changing either trains anew. Entries live in the
directories of ``$GAPLAB_CACHE`` (default: the user's cache folder, e.g. ``~/.cache/gaplab/runs``; several
directories may be given, see :mod:`gaplab.runs.store`), one folder per key: ``ckpt.pt`` while training (a killed
run resumes from it once its SHA-256 is checked), ``final.pt`` and ``meta.json`` when done, written atomically,
checked against their SHA-256 and loaded with ``weights_only=True``. A damaged file is set aside, named in a
warning, and the run resumes from its checkpoint or trains again; one process trains a key at a time (an
advisory lock on the entry), and a second one waits for the first and loads its run.

:mod:`gaplab.book.catalogue` lists the runs each chapter needs, :mod:`gaplab.runs.archive` packs them for a
class, and ``python -m gaplab cache`` is the command line over both.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch

from gaplab.profiles import PROFILES
from gaplab.progress import progress_bars
from gaplab.runs import store
from gaplab.runs.store import CacheLocationError
from gaplab.storage import (
    CacheWarning,
    atomic_save,
    explain_os_error,
    source_fingerprint,
)
from gaplab.training.train import (
    Checkpoint,
    TrainConfig,
    TrainResult,
    build_model,
    train,
)

__all__ = [
    "mad_config",
    "cache_dir",
    "code_version",
    "run_key",
    "cached_run",
    "describe",
    "get_or_train",
    "get_or_train_all",
    "resolve_glyphs",
    "is_stored",
    "progress_line",
    "CacheLocationError",
    "CacheWarning",
    "TrainingOutOfMemory",
    "use_grids",
    "GRID_ENV",
]

_PKG = Path(__file__).resolve().parents[1]
_CODE = [
    "training/train.py",
    "training/losses.py",
    "training/models.py",
    "training/cnn.py",
    "training/tokenizer.py",
    "data/mad.py",
    "metrics/gap.py",
    "metrics/entropy.py",
    "metrics/retrieval.py",
]


class TrainingOutOfMemory(RuntimeError):
    """The GPU ran out of memory while training a run."""


# one line per event, not once per call site: each run that is not stored deserves its own line
warnings.simplefilter("always", CacheWarning)


def mad_config(profile="auto", **overrides) -> TrainConfig:
    """The MAD training configuration of a profile, with any field overridden (e.g. ``k=3``): a delegate to
    :meth:`TrainConfig.from_profile <gaplab.training.config.MADRecipe.from_profile>`, kept for chapters and the README."""
    return TrainConfig.from_profile(profile, **overrides)


def cache_dir() -> Path:
    """The directory new runs are written to: the first writable one of the search path (or, when none is
    writable, the first one)."""
    locs = store.locations()
    loc = store.write_location(locs)
    return (loc or locs[0]).path


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    h = hashlib.sha256()
    configs = sorted((_PKG / "training" / "model_configs").glob("*.json"))
    if not configs:
        # without them every run key would silently differ from the book's, and no preset exists
        raise FileNotFoundError(
            f"gaplab's model configs are missing from {_PKG / 'training' / 'model_configs'}: this install "
            "is incomplete; reinstall gaplab from the book's repository (pip install ./gaplab)"
        )
    files = [_PKG / f for f in _CODE] + configs
    for path in files:
        h.update(path.name.encode())
        h.update(source_fingerprint(path))
    return h.hexdigest()[:16]


def resolve_glyphs(config: TrainConfig) -> TrainConfig:
    """Replace ``glyphs="auto"`` by the source that will really be used, so the cache key says which."""
    if config.glyphs != "auto":
        return config
    from gaplab.data import mad

    try:
        mad.load_mnist(None)
        return dataclasses.replace(config, glyphs="mnist")
    except FileNotFoundError:
        return dataclasses.replace(config, glyphs="procedural")


def run_key(config: TrainConfig) -> str:
    payload = json.dumps(
        {"config": config.to_dict(), "code": code_version()}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def init_weights(config: TrainConfig) -> Path | None:
    """The weights file a fine-tuning run starts from, found in the cache before training: training reads
    a file and knows nothing of the cache's search path (see :func:`gaplab.runs.store.resolve_init`)."""
    return store.resolve_init(config.init_from) if config.init_from else None


def _load(final: Path, config: TrainConfig, device) -> TrainResult:
    state = torch.load(final, map_location=device, weights_only=True)
    if state.get("config") != config.to_dict():
        raise ValueError("stored config differs from the requested one")
    model = build_model(config, device)
    model.load_state_dict(state["model"])
    model.eval()
    return TrainResult(
        config,
        model,
        list(state["history"]),
        state["eval_image"].numpy(),
        state["eval_text"].numpy(),
        {k: v.numpy() for k, v in state["eval_factors"].items()},
        float(state["seconds"]),
        str(state.get("precision", "float32")),
    )


def last_numbers(history: list[dict]) -> dict:
    """The numeric fields of a run's last evaluation: the summary kept in its ``meta.json``."""
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
    """
    log = os.environ.get("GAPLAB_BUILD_LOG")
    if log:
        try:
            with open(log, "a") as f:
                f.write(f"gaplab: {message}\n")
        except OSError:  # a progress line is never worth failing a build for
            pass


def is_stored(key: str) -> bool:
    """Whether a finished copy of run ``key`` sits in some directory of the run cache (not checked further)."""
    return any((loc.path / key / store.FINAL).exists() for loc in store.locations())


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _still_to_train(times: list[float], total: int) -> str:
    """ "; N more to train, about T" from the times of the ``len(times)`` of ``total`` done so far."""
    left = total - len(times)
    if not left:
        return ""
    return f"; {left} more to train, about {_minutes(left * sum(times) / len(times))}"


def _log_use(key: str) -> None:
    """Append ``key`` to the file named by GAPLAB_RUN_LOG (the tests check the catalogue against it)."""
    log = os.environ.get("GAPLAB_RUN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(key + "\n")


def _out_of_memory(exc: Exception, key: str, config: dict) -> TrainingOutOfMemory:
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
class _Slot:
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


def _find_or_reserve(
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
    return None, _Slot(key, run_dir, target, meta, lock)


def _unstored(key: str, meta: dict, target, why: str) -> _Slot:
    """A slot for a run that is trained but cannot be kept, with a warning saying why."""
    warnings.warn(
        f"run {key} will be trained but not stored: {why}", CacheWarning, stacklevel=5
    )
    return _Slot(key, None, target, meta)


def _named(label: str | None, kind: str, key: str) -> str:
    """How a notice names a run: what it is, then its key (as ``cache list`` does)."""
    return f"{label} (run {key})" if label else f"{kind} run {key}"


def _keep(slot: _Slot, result, *, to_state, summarise) -> None:
    """Store a trained ``result`` in its slot (when it has one), drop the checkpoint and
    release the entry's lock."""
    try:
        _store(slot, result, to_state=to_state, summarise=summarise)
    finally:
        slot.release()


def _store(slot: _Slot, result, *, to_state, summarise) -> None:
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
    """
    found, slot = _find_or_reserve(
        key, load=load, kind=kind, config=config, version=version, label=label
    )
    if slot is None:
        return found
    started = time.perf_counter()
    try:
        result = train(slot.run_dir)
    except torch.cuda.OutOfMemoryError as exc:
        slot.release()
        raise _out_of_memory(exc, key, config or {}) from None
    except BaseException:
        slot.release()
        raise
    took = time.perf_counter() - started
    if announce is None:
        progress_line(f"{_named(label, kind, key)} trained in {_minutes(took)}")
    else:
        announce(took)
    _keep(slot, result, to_state=to_state, summarise=summarise)
    return result


def describe(config: TrainConfig) -> str:
    """A MAD run in a few words: k, seed, steps, and whatever else sets it apart from
    the profile's recipe (a frozen logit scale, loss terms, the embedding size, ...), so two
    runs of one chapter read apart."""
    parts = [f"MAD k={config.k} seed {config.seed}", f"{config.steps} steps"]
    if config.temperature != "learnable":
        parts.append(f"logit scale {float(config.temperature):g} frozen")
    if config.object_factor != "digit":
        parts.append(f"{config.object_factor} as the object")
    for name in ("uniformity", "alignment", "cross_uniformity"):
        weight = getattr(config, f"{name}_weight")
        if weight:
            parts.append(f"{name.replace('_', ' ')} weight {weight:g}")
    if config.embed_dim is not None:
        parts.append(f"{config.embed_dim} dimensions")
    if config.align_init:
        parts.append("gap closed at initialisation")
    if config.init_from is not None:
        parts.append(f"fine-tuned from {config.init_from}")
    if config.preset != "mad-cnn":
        parts.append(config.preset)
    return ", ".join(parts)


def _mad_state(config: TrainConfig, r: TrainResult, trainer: str) -> dict:
    return {
        "config": config.to_dict(),
        "code_version": code_version(),
        "model": r.model.state_dict(),
        "history": r.history,
        "eval_image": torch.from_numpy(r.eval_image),
        "eval_text": torch.from_numpy(r.eval_text),
        "eval_factors": {k: torch.from_numpy(v) for k, v in r.eval_factors.items()},
        "seconds": r.seconds,
        "precision": r.precision,
        "trainer": trainer,
    }


def _mad_summary(r: TrainResult, trainer: str) -> dict:
    return {**last_numbers(r.history), "precision": r.precision, "trainer": trainer}


def _device(device=None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def get_or_train(
    config: TrainConfig,
    *,
    device=None,
    progress: bool = True,
    announce=None,
    label: str | None = None,
) -> TrainResult:
    """The finished run of ``config``: from the cache when present and whole, else trained (resuming a
    checkpoint left by an interrupted attempt) and stored. ``announce(seconds)`` replaces the build-log line
    written after training (see :func:`progress_line`); ``label`` names the run in the
    lines that announce its training (default: :func:`describe` of the config)."""
    config = resolve_glyphs(config)
    key = run_key(config)
    device = _device(device)
    progress = progress_bars(progress)
    label = label or describe(config)
    if announce is None:

        def announce(seconds):
            progress_line(f"{label} (run {key}) trained in {_minutes(seconds)}")

    return cached_run(
        key,
        kind="mad",
        config=config.to_dict(),
        load=lambda final: _load(final, config, device),
        train=lambda d: train(
            config,
            d,
            device=device,
            progress=progress,
            init_weights=init_weights(config),
        ),
        summarise=lambda r: _mad_summary(r, "single run"),
        announce=announce,
        label=label,
        to_state=lambda r: _mad_state(config, r, "single run"),
    )


#: environment variable: "auto" (default) trains a chapter's missing runs in grids on a GPU and one by one on
#: the CPU; "on" and "off" force either way
GRID_ENV = "GAPLAB_GRID"
#: environment variable: the most runs one grid may hold (default 16)
GRID_MAX_ENV = "GAPLAB_GRID_MAX"


def use_grids(together: bool | None, device) -> bool:
    """Whether missing runs are trained in grids: ``together`` when given, else as :data:`GRID_ENV` says."""
    if together is not None:
        return bool(together)
    mode = os.environ.get(GRID_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"{GRID_ENV}={mode!r}: use 'auto', 'on' or 'off'")
    return mode == "on" or (mode == "auto" and _device(device).type == "cuda")


def _grid_max() -> int:
    raw = os.environ.get(GRID_MAX_ENV, "16")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{GRID_MAX_ENV}={raw!r}: give a positive whole number")
    return value


def _checkpoint_step(run_dir: Path | None) -> int:
    return 0 if run_dir is None else Checkpoint(run_dir).step()


def _release_all(slots: dict) -> None:
    for _, slot in slots.values():
        slot.release()


def _train_in_grids(configs: dict, desc: str, progress: bool, device) -> dict:
    """Train the runs of ``configs`` that are not cached, in grids of compatible runs; store each run in its
    own cache entry. Returns ``{name: result}`` for the runs trained here."""
    from gaplab.training.grid import describe_grid, group_grids, train_grid

    slots, by_start = {}, {}
    try:
        for name, config in configs.items():
            config = resolve_glyphs(config)
            # a second name for a run already reserved here is loaded once it is stored
            if run_key(config) in {s.key for _, s in slots.values()}:
                continue
            if is_stored(run_key(config)):
                continue
            found, slot = _find_or_reserve(
                run_key(config),
                load=lambda final, config=config: _load(final, config, device),
                kind="mad",
                config=config.to_dict(),
                version=None,
                label=_in_set(desc, name, config),
            )
            if slot is None:
                continue
            slots[name] = (config, slot)
            by_start.setdefault(_checkpoint_step(slot.run_dir), {})[name] = config
    except BaseException:
        _release_all(slots)
        raise
    grids = [g for group in by_start.values() for g in group_grids(group, _grid_max())]
    trained, times = {}, []
    for i, names in enumerate(grids, 1):
        cfgs = [slots[n][0] for n in names]
        dirs = [slots[n][1].run_dir for n in names]
        started = time.perf_counter()
        try:
            results = train_grid(
                cfgs,
                dirs,
                device=device,
                progress=progress,
                init_weights=[init_weights(c) for c in cfgs],
            )
        except torch.cuda.OutOfMemoryError as exc:
            _release_all(slots)
            raise _out_of_memory(
                exc, slots[names[0]][1].key, cfgs[0].to_dict()
            ) from None
        except BaseException:
            _release_all(slots)
            raise
        took = time.perf_counter() - started
        times.append(took)
        trainer = f"grid of {len(names)}"
        for name, result in zip(names, results):
            _keep(
                slots[name][1],
                result,
                to_state=lambda r, c=slots[name][0]: _mad_state(c, r, trainer),
                summarise=lambda r: _mad_summary(r, trainer),
            )
            trained[name] = result
        progress_line(
            f"{desc}: {describe_grid(cfgs)} ({cfgs[0].steps} steps) trained in "
            f"{_minutes(took)}, grid {i} of {len(grids)}{_still_to_train(times, len(grids))}"
        )
    return trained


def _in_set(desc: str, name, config: TrainConfig) -> str:
    """A run of a set, described and named as the set names it: a key such as (2, 0)
    alone would not say what it is."""
    return f"{describe(config)} [{desc} {name!s}]"


def get_or_train_all(
    configs: dict,
    *,
    desc: str = "runs",
    progress: bool = True,
    together: bool | None = None,
    device=None,
) -> dict:
    """``{name: get_or_train(config)}`` for a dict of configurations, with one progress bar over the runs and,
    for each run trained, a build-log line with the time the runs still to train should take.

    ``together``: train the runs that are not cached in grids of compatible runs (:mod:`gaplab.training.grid`), each
    still stored as its own run. Default (None): as :data:`GRID_ENV` says, which by default means on a GPU,
    where one small model cannot keep the device busy, and not on the CPU, where grids are no faster and the
    book's numbers come from single runs.
    """
    device = _device(device)
    progress = progress_bars(progress)
    trained = {}
    if use_grids(together, device):
        trained = _train_in_grids(configs, desc, progress, device)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(configs), desc=desc, unit="run")
    missing = [
        name
        for name, config in configs.items()
        if name not in trained and not is_stored(run_key(resolve_glyphs(config)))
    ]
    times: list[float] = []
    out = {}
    for name, config in configs.items():

        def announce(seconds, name=name, config=config):
            times.append(seconds)
            progress_line(
                f"{desc}: {name!s} ({config.steps} steps) trained in {_minutes(seconds)}, "
                f"{len(times)} of {len(missing)}{_still_to_train(times, len(missing))}"
            )

        if name in trained:
            out[name] = trained[name]
        else:
            out[name] = get_or_train(
                config,
                device=device,
                progress=progress,
                announce=announce,
                label=_in_set(desc, name, config),
            )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out
