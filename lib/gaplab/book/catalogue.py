"""The trained runs each chapter of the book needs, per profile.

This is what a teacher prepares before class (``python -m gaplab cache prepare``) and packs for students
(``python -m gaplab cache export``), and what ``cache list`` uses to say which chapter an entry belongs to. The
tests execute every chapter and check that the runs it asked for are exactly the ones listed here.

One run depends on another's result: the entropy chapter's frozen-temperature fine-tuning keeps the logit scale
its source run ended with, so its key is known only once the source is in the cache (``key`` is None until then).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from gaplab.profiles import resolve_profile

__all__ = ["BookRun", "CHAPTERS", "book_runs", "run_label", "train_book_run", "prepare"]

#: the chapters that train MAD models, in the book's order
CHAPTERS = (
    "mad_training",
    "object_bias",
    "imbalance_training",
    "entropy_link",
    "closing_gap",
    "cone_temperature",
    "contrastive_gap",
    "models_compared",
)


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
    import dataclasses

    from gaplab.runs import resolve_glyphs

    if glyphs is None:
        return resolve_glyphs
    return lambda c: dataclasses.replace(c, glyphs=glyphs) if c.glyphs == "auto" else c


def _mad(chapter, name, config, resolve):
    from gaplab.runs import run_key

    config = resolve(config)
    return BookRun(chapter, name, "mad", config, run_key(config))


def _finetune_runs(prof, chapter, resolve) -> list[BookRun]:
    from gaplab.experiments import imbalance
    from gaplab.runs import run_key, store

    source = _mad(
        chapter,
        "fine-tuning source k=5",
        imbalance.finetune_source_config(prof, 5, 0),
        resolve,
    )
    final = store.find_final(source.key)
    scale = None
    if final is not None:
        scale = (
            (store.read_meta(final.parent) or {}).get("summary", {}).get("logit_scale")
        )
    # the learnable arm does not depend on the source's scale; the frozen arm keeps it
    cfgs = imbalance.finetune_configs(
        prof,
        source_scale=scale if scale is not None else 1.0,
        source_k=5,
        target_k=1,
        source=source.config,
    )
    out = [source]
    for arm in ("frozen", "learnable"):
        cfg = resolve(cfgs[arm])
        known = arm == "learnable" or scale is not None
        out.append(
            BookRun(
                chapter,
                f"fine-tuning {arm} k=5->1",
                "mad",
                cfg if known else None,
                run_key(cfg) if known else None,
                after=source.key,
            )
        )
    return out


def book_runs(
    profile="cpu", chapters=CHAPTERS, *, glyphs: str | None = None
) -> list[BookRun]:
    """Every run the ``chapters`` train at ``profile``, in the order they need them (a run shared by several
    chapters appears once per chapter). ``glyphs`` fixes what a profile's ``glyphs="auto"`` stands for (default:
    what training would use)."""
    from gaplab.experiments import contrastive, imbalance, temperature
    from gaplab.experiments.samemodality import SameModalityConfig
    from gaplab.experiments.samemodality import run_key as same_modality_key

    prof = resolve_profile(profile)
    unknown = set(chapters) - set(CHAPTERS)
    if unknown:
        raise ValueError(
            f"unknown chapters {sorted(unknown)}; the chapters that train runs are {', '.join(CHAPTERS)}"
        )
    grid = [(k, s) for s in range(prof.imbalance_seeds) for k in imbalance.IMBALANCE_KS]
    resolve = _resolver(glyphs)
    out: list[BookRun] = []
    for ch in chapters:
        if ch == "mad_training":
            out.append(
                _mad(ch, "k=2 seed 0", imbalance.imbalance_config(prof, 2, 0), resolve)
            )
        elif ch == "object_bias":
            out += [
                _mad(
                    ch, f"k={k} seed 0", imbalance.imbalance_config(prof, k, 0), resolve
                )
                for k in imbalance.IMBALANCE_KS
            ]
            out.append(
                _mad(
                    ch,
                    "colour as the object, k=2",
                    imbalance.imbalance_config(prof, 2, 0, object_factor="color"),
                    resolve,
                )
            )
        elif ch in ("imbalance_training", "entropy_link", "closing_gap"):
            out += [
                _mad(
                    ch,
                    f"k={k} seed {s}",
                    imbalance.imbalance_config(prof, k, s),
                    resolve,
                )
                for k, s in grid
            ]
            if ch == "imbalance_training" and prof.imbalance_frozen_recipe:
                out += [
                    _mad(
                        ch,
                        f"k={k} seed {s}, temperature frozen",
                        imbalance.imbalance_config(
                            prof, k, s, temperature=imbalance.FROZEN_LOGIT_SCALE
                        ),
                        resolve,
                    )
                    for k, s in grid
                ]
            if ch == "entropy_link":
                out += _finetune_runs(prof, ch, resolve)
        elif ch == "cone_temperature":
            out += [
                _mad(
                    ch,
                    f"logit scale {s:g}",
                    temperature.temperature_config(prof, s),
                    resolve,
                )
                for s in temperature.LOGIT_SCALES
            ]
            out.append(
                _mad(ch, "k=2 seed 0", imbalance.imbalance_config(prof, 2, 0), resolve)
            )
            for label, extra in (
                ("learnable", {}),
                ("logit scale 100", {"temperature": 100.0}),
            ):
                out.append(
                    _mad(
                        ch,
                        f"k=2 seed 0, gap closed at initialisation, {label}",
                        imbalance.imbalance_config(
                            prof, 2, 0, align_init=True, **extra
                        ),
                        resolve,
                    )
                )
        elif ch == "contrastive_gap":
            # the chapter's same-modality set-ups, all at logit scale 100
            same = {
                **{
                    f"same start, crop view, seed {seed}": {
                        "init": "same",
                        "views": "crop",
                        "seed": seed,
                    }
                    for seed in (0, 1, 2)
                },
                "same start, identical inputs": {"init": "same", "views": "identical"},
                "separate seeds, identical inputs": {"views": "identical"},
                "one shared tower, crop view": {"shared": True, "views": "crop"},
            }
            for label, overrides in same.items():
                cfg = SameModalityConfig.from_profile(
                    prof, temperature=100.0, **overrides
                )
                out.append(
                    BookRun(
                        ch,
                        "same-modality " + label,
                        "same-modality",
                        cfg,
                        same_modality_key(cfg),
                    )
                )
            out.append(
                _mad(
                    ch,
                    "logit scale 100",
                    temperature.temperature_config(prof, 100.0),
                    resolve,
                )
            )
            out += [
                _mad(ch, f"loss {v}", contrastive.variant_config(prof, v), resolve)
                for v in contrastive.LOSS_VARIANTS
            ]
            out += [
                _mad(
                    ch,
                    f"loss {v}, {d} dimensions",
                    contrastive.variant_config(prof, v, embed_dim=d),
                    resolve,
                )
                for d in (64, 32)
                for v in ("CLIP", "CUA")
            ]
        elif ch == "models_compared":
            from gaplab.experiments.mad_zoo import mad_zoo_configs

            out += [
                _mad(ch, name, cfg, resolve)
                for name, cfg in mad_zoo_configs(prof, resolve=resolve).values()
            ]
    return out


def train_book_run(run: BookRun, *, progress: bool = True):
    """Load or train one catalogue run through the cache, as its chapter would."""
    if run.config is None:
        raise ValueError(
            f"{run.chapter}: {run.name} depends on run {run.after}, which is not trained yet"
        )
    if run.kind == "same-modality":
        from gaplab.experiments.samemodality import get_or_train_same_modality

        return get_or_train_same_modality(run.config, progress=progress)
    from gaplab.runs import get_or_train

    return get_or_train(run.config, progress=progress, label=run_label(run))


def run_label(run: BookRun) -> str:
    """How the command line names a run: its chapter and what it is there
    ("object_bias: k=3 seed 0")."""
    return f"{run.chapter}: {run.name}"


def _train_in_grids_first(todo: list[BookRun], progress: bool, echo) -> None:
    """Where grids are in use (a GPU, or GAPLAB_GRID=on), train the missing MAD runs in grids first; the
    loop that follows then finds them cached."""
    from gaplab.runs import get_or_train_all, store, use_grids

    if not use_grids(None, None):
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
        get_or_train_all(missing, desc="book runs", progress=progress, together=True)
        echo(f"      done in {time.perf_counter() - t0:.0f} s")


def prepare(
    profile="cpu", chapters=CHAPTERS, *, progress: bool = True, echo=print
) -> list[BookRun]:
    """Train every catalogue run of ``profile`` that is not in the cache yet (those found are only checked);
    returns the runs. Runs that depend on another are trained once it is there."""
    from gaplab.runs import store

    locs = store.locations()
    if store.write_location(locs) is None:
        # training what cannot be kept would cost hours and leave nothing behind
        why = "; ".join(f"{loc.path}: {loc.reason}" for loc in locs)
        raise store.CacheLocationError(
            f"no directory of the run cache can be written ({why}), so prepared runs could "
            f"not be kept. Put a writable directory in {store.ENV} (directories separated "
            f"by {os.pathsep!r}), for example {store.ENV}=~/.cache/gaplab/runs"
        )
    done: set[str] = set()
    for _ in range(2):  # the second pass trains what depended on a run of the first
        runs = book_runs(profile, chapters)
        todo = [r for r in runs if r.key is not None and r.key not in done]
        _train_in_grids_first(todo, progress, echo)
        for i, run in enumerate(todo, 1):
            done.add(run.key)
            if store.find_final(run.key) is not None:
                echo(f"[{i}/{len(todo)}] {run_label(run)} ({run.key}) is cached")
                continue
            echo(f"[{i}/{len(todo)}] {run_label(run)} ({run.key}): training ...")
            t0 = time.perf_counter()
            train_book_run(run, progress=progress)
            echo(f"      done in {time.perf_counter() - t0:.0f} s")
        if all(r.key is not None for r in runs):
            return runs
    missing = [r.name for r in runs if r.key is None]
    raise RuntimeError(
        f"could not determine the runs {missing}: their source runs were not stored (is the cache writable?)"
    )
