"""The trained runs each chapter of the book needs, per profile, gathered from the experiments that own them.

Each chapter that trains MAD models has one experiment module that lists its runs (``chapter_runs(profile,
chapter)``, built by the same functions the chapter trains with); :data:`SOURCES` says which. The catalogue is what
a teacher prepares before class (``python -m gaplab cache prepare``) and packs for students (``python -m gaplab
cache export``), and what ``cache list`` uses to say which chapter an entry belongs to. The tests execute every
chapter and check that the runs it asked for are exactly the ones listed here.

One run depends on another's result: the entropy chapter's frozen-temperature fine-tuning keeps the logit scale
its source run ended with, so its key is known only once the source is in the cache (``key`` is None until then).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

from gaplab import runs as run_cache
from gaplab.experiments import (
    contrastive,
    imbalance,
    mad_zoo,
    remedies,
    samemodality,
    temperature,
)
from gaplab.profiles import PROFILES, resolve_profile
from gaplab.runs import parallel, store

__all__ = [
    "BookRun",
    "CHAPTERS",
    "SOURCES",
    "book_runs",
    "run_index",
    "entry_versions",
    "run_label",
    "train_book_run",
    "prepare",
]

#: the chapters that train MAD models, in the book's order, and the experiment module that lists each one's runs
SOURCES = {
    "mad_training": imbalance,
    "object_bias": imbalance,
    "imbalance_training": imbalance,
    "entropy_link": imbalance,
    "closing_gap": imbalance,
    "cone_temperature": temperature,
    "contrastive_gap": contrastive,
    "models_compared": mad_zoo,
    "remedies": remedies,
}
CHAPTERS = tuple(SOURCES)


@dataclass(frozen=True)
class BookRun:
    chapter: str
    #: what the run is, in a few words ("k=2 seed 0", "logit scale 10", ...)
    name: str
    kind: str
    config: object
    #: the cache key; None while it depends on a run that is not trained yet
    key: str | None
    #: the key of the run this one starts from
    after: str | None = None


def _resolver(glyphs):
    """How ``glyphs="auto"`` becomes a source: as training would (MNIST when it can be had, which may download
    it), or fixed to ``glyphs`` (listing a cache must not download anything)."""
    if glyphs is None:
        return run_cache.resolve_glyphs
    return lambda c: dataclasses.replace(c, glyphs=glyphs) if c.glyphs == "auto" else c


def _book_run(chapter: str, name: str, config, resolve) -> BookRun:
    if isinstance(config, samemodality.SameModalityConfig):
        key = samemodality.run_key(config)
        return BookRun(chapter, name, "same-modality", config, key)
    if isinstance(config, imbalance.AwaitingRun):
        return BookRun(chapter, name, "mad", None, None, after=config.key)
    config = resolve(config)
    start = config.init_from or ""
    after = start[len("run:") :] if start.startswith("run:") else None
    return BookRun(chapter, name, "mad", config, run_cache.run_key(config), after)


def book_runs(
    profile="cpu", chapters=CHAPTERS, *, glyphs: str | None = None
) -> list[BookRun]:
    """Every run the ``chapters`` train at ``profile``, in the order they need them (a run shared by several
    chapters appears once per chapter). ``glyphs`` fixes what a profile's ``glyphs="auto"`` stands for (default:
    what training would use)."""
    prof = resolve_profile(profile)
    unknown = set(chapters) - set(CHAPTERS)
    if unknown:
        raise ValueError(
            f"unknown chapters {sorted(unknown)}; the chapters that train runs are {', '.join(CHAPTERS)}"
        )
    resolve = _resolver(glyphs)
    return [
        _book_run(chapter, name, config, resolve)
        for chapter in chapters
        for name, config in SOURCES[chapter]
        .chapter_runs(prof, chapter, resolve=resolve)
        .items()
    ]


def run_index() -> dict[str, dict]:
    """key -> {"profiles", "chapters", "name", "names"} over every profile's book runs, for ``cache list``;
    ``names`` holds (chapter, what the chapter calls the run) pairs."""
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


def entry_versions() -> dict[str, str]:
    """The code version a new cache entry of each kind the catalogue lists is stamped with: entries of another
    version are never used, so the run cache reports and prunes them."""
    return {
        "mad": run_cache.code_version(),
        "same-modality": samemodality.entry_version(),
    }


def train_book_run(run: BookRun, *, progress: bool = True):
    """Load or train one catalogue run through the cache, as its chapter would."""
    if run.config is None:
        raise ValueError(
            f"{run.chapter}: {run.name} depends on run {run.after}, which is not trained yet"
        )
    if run.kind == "same-modality":
        return samemodality.get_or_train_same_modality(run.config, progress=progress)
    return run_cache.get_or_train(run.config, progress=progress, label=run_label(run))


def run_label(run: BookRun) -> str:
    """How the command line names a run: its chapter and what it is there
    ("object_bias: k=3 seed 0")."""
    return f"{run.chapter}: {run.name}"


def _train_in_grids_first(todo: list[BookRun], progress: bool, echo) -> None:
    """Where grids are in use (a GPU, or GAPLAB_GRID=on), train the missing MAD runs in grids first; the
    loop that follows then finds them cached."""
    if not run_cache.use_grids(None, None):
        return
    # one per cache key: a run two chapters share is trained once, under its first
    # chapter's name
    first: dict[str, BookRun] = {}
    for r in todo:
        if r.kind == "mad" and store.find_final(r.key) is None:
            first.setdefault(r.key, r)
    missing = {run_label(r): r.config for r in first.values()}
    if len(missing) > 1:
        echo(f"training {len(missing)} MAD runs in grids ...")
        t0 = time.perf_counter()
        run_cache.get_or_train_all(
            missing, desc="book runs", progress=progress, together=True
        )
        echo(f"      done in {time.perf_counter() - t0:.0f} s")


def _train_one_by_one(todo: list[BookRun], progress: bool, done: set, echo) -> None:
    for i, run in enumerate(todo, 1):
        done.add(run.key)
        if store.find_final(run.key) is not None:
            echo(f"[{i}/{len(todo)}] {run_label(run)} ({run.key}) is cached")
            continue
        echo(f"[{i}/{len(todo)}] {run_label(run)} ({run.key}): training ...")
        t0 = time.perf_counter()
        train_book_run(run, progress=progress)
        echo(f"      done in {time.perf_counter() - t0:.0f} s")


def _train_quietly(run: BookRun) -> None:
    # in a worker process: the result stays in the cache, no model travels back
    train_book_run(run, progress=False)


def _train_side_by_side(
    todo: list[BookRun], jobs: int, threads: int, done: set, echo
) -> None:
    """Train the missing runs of ``todo`` in ``jobs`` processes; a run whose start run is not stored yet waits
    for the next pass (it cannot share a pass with the run it starts from)."""
    missing: dict[str, BookRun] = {}
    for run in todo:
        if store.find_final(run.key) is not None:
            done.add(run.key)
        elif run.after is None or store.find_final(run.after) is not None:
            missing.setdefault(run.key, run)  # a run two chapters share trains once
    if not missing:
        return
    echo(
        f"training {len(missing)} runs, {jobs} at a time with {threads} "
        f"thread{'s' if threads > 1 else ''} each ..."
    )
    count = iter(range(1, len(missing) + 1))

    def finished(run: BookRun, seconds: float) -> None:
        done.add(run.key)
        echo(
            f"[{next(count)}/{len(missing)}] {run_label(run)} ({run.key}): "
            f"trained in {seconds:.0f} s"
        )

    parallel.map_in_processes(
        _train_quietly, missing.values(), jobs=jobs, threads=threads, on_done=finished
    )


def prepare(
    profile="cpu",
    chapters=CHAPTERS,
    *,
    progress: bool = True,
    echo=print,
    jobs: int | str = 1,
) -> list[BookRun]:
    """Train every catalogue run of ``profile`` that is not in the cache yet (those found are only checked);
    returns the runs. Runs that depend on another are trained once it is there.

    ``jobs`` > 1 (or ``"auto"``, see :func:`gaplab.runs.parallel.cpu_jobs`) trains that many runs at once
    in processes of their own, sharing the cores, where runs are not trained in grids (a CPU)."""
    locs = store.locations()
    if store.write_location(locs) is None:
        # training what cannot be kept would cost hours and leave nothing behind
        why = "; ".join(f"{loc.path}: {loc.reason}" for loc in locs)
        raise store.CacheLocationError(
            f"no directory of the run cache can be written ({why}), so prepared runs could "
            f"not be kept. Put a writable directory in {store.ENV} (directories separated "
            f"by {os.pathsep!r}), for example {store.ENV}=~/.cache/gaplab/runs"
        )
    n_jobs, threads = parallel.cpu_jobs(jobs)
    side_by_side = n_jobs > 1 and not run_cache.use_grids(None, None)
    done: set[str] = set()
    for _ in range(2):  # the second pass trains what depended on a run of the first
        runs = book_runs(profile, chapters)
        todo = [r for r in runs if r.key is not None and r.key not in done]
        _train_in_grids_first(todo, progress, echo)
        if side_by_side:
            _train_side_by_side(todo, n_jobs, threads, done, echo)
        else:
            _train_one_by_one(todo, progress, done, echo)
        if all(r.key is not None and r.key in done for r in runs):
            return runs
    missing = [r.name for r in runs if r.key is None or r.key not in done]
    raise RuntimeError(
        f"could not determine the runs {missing}: their source runs were not stored (is the cache writable?)"
    )
