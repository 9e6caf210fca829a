"""MAD runs in the cache: a run's key (its :class:`~gaplab.training.config.TrainConfig` and the training code's
version), :func:`get_or_train` for one run and :func:`get_or_train_all` for a chapter's set, trained one by one
or, on a GPU, in grids of compatible runs (:mod:`gaplab.training.grid`), each stored as its own run. A
fine-tuning run's ``init_from`` is found here, in the cache, and handed to training as a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gaplab.data.mad import load_mnist
from gaplab.progress import progress_bars
from gaplab.runs import store
from gaplab.runs.cache import (
    cached_run,
    find_or_reserve,
    is_stored,
    keep,
    last_numbers,
    minutes,
    out_of_memory,
    progress_line,
    still_to_train,
)
from gaplab.runs.versions import code_version
from gaplab.training.checkpoint import Checkpoint
from gaplab.training.config import TrainConfig, TrainResult
from gaplab.training.grid import (
    describe_grid,
    grid_refusal,
    group_grids,
    train_grid,
)
from gaplab.training.train import build_model, train

__all__ = [
    "mad_config",
    "run_key",
    "resolve_glyphs",
    "init_weights",
    "describe",
    "get_or_train",
    "get_or_train_all",
    "use_grids",
    "GRID_ENV",
    "GRID_MAX_ENV",
]


def mad_config(profile="auto", **overrides) -> TrainConfig:
    """The MAD training configuration of a profile, with any field overridden (e.g. ``k=3``): a delegate to
    :meth:`TrainConfig.from_profile <gaplab.training.config.MADRecipe.from_profile>`, kept for chapters and the README.

    >>> from gaplab import runs
    >>> config = runs.mad_config("smoke", k=3, steps=2)
    >>> config.k, config.steps, config.batch_size
    (3, 2, 64)
    """
    return TrainConfig.from_profile(profile, **overrides)


def resolve_glyphs(config: TrainConfig) -> TrainConfig:
    """Replace ``glyphs="auto"`` by the source that will really be used, so the cache key says which.

    >>> from gaplab import runs
    >>> runs.resolve_glyphs(runs.mad_config("smoke", glyphs="procedural")).glyphs
    'procedural'
    >>> runs.resolve_glyphs(runs.mad_config("smoke", glyphs="auto")).glyphs in ("mnist", "procedural")
    True
    """
    if config.glyphs != "auto":
        return config
    try:
        load_mnist(None)
        return dataclasses.replace(config, glyphs="mnist")
    except FileNotFoundError:
        return dataclasses.replace(config, glyphs="procedural")


def run_key(config: TrainConfig) -> str:
    """The cache key of a MAD run: 20 hex digits of the SHA-256 of its configuration and of
    :func:`~gaplab.runs.versions.code_version`, so another setting or changed training code is another run.

    >>> from gaplab import runs
    >>> key = runs.run_key(runs.mad_config("smoke"))
    >>> len(key), key == runs.run_key(runs.mad_config("smoke"))
    (20, True)
    >>> key == runs.run_key(runs.mad_config("smoke", seed=1))
    False
    """
    payload = json.dumps(
        {"config": config.to_dict(), "code": code_version()}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def init_weights(config: TrainConfig) -> Path | None:
    """The weights file a fine-tuning run starts from, found in the cache before training: training reads
    a file and knows nothing of the cache's search path (see :func:`gaplab.runs.store.resolve_init`).

    >>> from gaplab import runs
    >>> runs.init_weights(runs.mad_config("smoke")) is None  # not a fine-tuning run: it starts from scratch
    True
    """
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


def describe(config: TrainConfig) -> str:
    """A MAD run in a few words: k, seed, steps, and whatever else sets it apart from
    the profile's recipe (a frozen logit scale, loss terms, the embedding size, ...), so two
    runs of one chapter read apart.

    >>> from gaplab import runs
    >>> runs.describe(runs.mad_config("smoke", k=3, temperature=10.0))
    'MAD k=3 seed 0, 20 steps, logit scale 10 frozen'
    """
    parts = [f"MAD k={config.k} seed {config.seed}", f"{config.steps} steps"]
    if config.temperature_end is not None:
        parts.append(
            f"logit scale scheduled from {float(config.temperature):g} to "
            f"{float(config.temperature_end):g}"
        )
    elif config.temperature != "learnable":
        parts.append(f"logit scale {float(config.temperature):g} frozen")
    if config.temperature_param != "exp":
        parts.append(f"{config.temperature_param} temperature")
    if config.loss != "clip":
        parts.append(f"{config.loss} loss")
    if config.swap_prob:
        parts.append(f"{config.swap_mode} modality swap p={config.swap_prob:g}")
    if config.embed_norm:
        parts.append("embedding normalisation")
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
    if config.cpu_precision != "float32":
        parts.append(f"{config.cpu_precision} on a CPU")
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
    lines that announce its training (default: :func:`describe` of the config).

    A run of two steps, trained on the first call (a line on stderr says so) and loaded on the second:

    >>> from gaplab import runs
    >>> config = runs.mad_config("smoke", steps=2, eval_every=2)
    >>> result = runs.get_or_train(config, device="cpu", progress=False)
    >>> result.config == config, [row["step"] for row in result.history]
    (True, [0, 2])
    >>> runs.get_or_train(config, device="cpu", progress=False).history == result.history
    True
    """
    config = resolve_glyphs(config)
    key = run_key(config)
    device = _device(device)
    progress = progress_bars(progress)
    label = label or describe(config)
    if announce is None:

        def announce(seconds):
            progress_line(f"{label} (run {key}) trained in {minutes(seconds)}")

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
    """Whether missing runs are trained in grids: ``together`` when given, else as :data:`GRID_ENV` says.

    >>> import os
    >>> from gaplab import runs
    >>> runs.use_grids(True, "cpu"), runs.use_grids(False, "cuda")
    (True, False)
    >>> _ = os.environ.pop(runs.GRID_ENV, None)  # the default, "auto": grids on a GPU only
    >>> runs.use_grids(None, "cpu"), runs.use_grids(None, "cuda")
    (False, True)
    """
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
    slots, by_start = {}, {}
    try:
        for name, config in configs.items():
            config = resolve_glyphs(config)
            # a second name for a run already reserved here is loaded once it is stored
            if run_key(config) in {s.key for _, s in slots.values()}:
                continue
            if is_stored(run_key(config)):
                continue
            # a run a grid cannot train (grid_refusal names why) is left to the single-run path
            if grid_refusal(config) is not None:
                continue
            found, slot = find_or_reserve(
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
            raise out_of_memory(
                exc, slots[names[0]][1].key, cfgs[0].to_dict()
            ) from None
        except BaseException:
            _release_all(slots)
            raise
        took = time.perf_counter() - started
        times.append(took)
        trainer = f"grid of {len(names)}"
        for name, result in zip(names, results):
            keep(
                slots[name][1],
                result,
                to_state=lambda r, c=slots[name][0]: _mad_state(c, r, trainer),
                summarise=lambda r: _mad_summary(r, trainer),
            )
            trained[name] = result
        progress_line(
            f"{desc}: {describe_grid(cfgs)} ({cfgs[0].steps} steps) trained in "
            f"{minutes(took)}, grid {i} of {len(grids)}{still_to_train(times, len(grids))}"
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

    >>> from gaplab import runs
    >>> configs = {k: runs.mad_config("smoke", k=k, steps=2, eval_every=2) for k in (2, 3)}
    >>> results = runs.get_or_train_all(configs, device="cpu", progress=False)
    >>> {k: r.config.k for k, r in results.items()}
    {2: 2, 3: 3}
    """
    device = _device(device)
    progress = progress_bars(progress)
    trained = {}
    if use_grids(together, device):
        trained = _train_in_grids(configs, desc, progress, device)
    bar = None
    if progress:
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
                f"{desc}: {name!s} ({config.steps} steps) trained in {minutes(seconds)}, "
                f"{len(times)} of {len(missing)}{still_to_train(times, len(missing))}"
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
