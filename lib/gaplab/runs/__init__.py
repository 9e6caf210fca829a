"""Run configurations from profiles, and a content-addressed cache of finished training runs.

A run's key hashes its :class:`~gaplab.train.TrainConfig` together with the version of the training code (a hash
of the modules and model configs that determine the result), so changing either trains anew. Entries live under
``$GAPLAB_CACHE`` (default: the user's cache folder, e.g. ``~/.cache/gaplab/runs``), one folder per key:
``ckpt.pt`` while training (a killed run resumes from it), ``final.pt`` when done, written atomically and loaded
with ``weights_only=True``. An entry that cannot be read back is reported and retrained.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import torch

from gaplab.models import create_mad_model
from gaplab.profiles import resolve_profile
from gaplab.train import TrainConfig, TrainResult, atomic_save, train

__all__ = ["mad_config", "cache_dir", "code_version", "run_key", "cached_run", "get_or_train", "get_or_train_all",
           "resolve_glyphs"]

_PKG = Path(__file__).parent
_CODE = ["train.py", "losses.py", "models.py", "cnn.py", "tokenizer.py", "data/mad.py", "metrics/gap.py",
         "metrics/entropy.py", "metrics/retrieval.py"]


def mad_config(profile="auto", **overrides) -> TrainConfig:
    """The MAD training configuration of a profile, with any field overridden (e.g. ``k=3``)."""
    prof = resolve_profile(profile)
    base = dict(n_train=prof.mad_n_train, steps=prof.mad_steps, batch_size=prof.mad_batch, eval_n=prof.mad_eval_n,
                eval_every=prof.mad_eval_every, warmup=prof.mad_warmup, glyphs=prof.mad_glyphs)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}; TrainConfig has "
                         f"{', '.join(f.name for f in dataclasses.fields(TrainConfig))}")
    return TrainConfig(**{**base, **overrides})


def cache_dir() -> Path:
    env = os.environ.get("GAPLAB_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gaplab")) / "runs"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    h = hashlib.sha256()
    files = [_PKG / f for f in _CODE] + sorted((_PKG / "model_configs").glob("*.json"))
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def resolve_glyphs(config: TrainConfig) -> TrainConfig:
    """Replace ``glyphs="auto"`` by the source that will really be used, so the cache key says which."""
    if config.glyphs != "auto":
        return config
    from gaplab.data import mad

    try:
        mad._load_mnist(None)
        return dataclasses.replace(config, glyphs="mnist")
    except FileNotFoundError:
        return dataclasses.replace(config, glyphs="procedural")


def run_key(config: TrainConfig) -> str:
    payload = json.dumps({"config": config.to_dict(), "code": code_version()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _load(final: Path, config: TrainConfig, device) -> TrainResult:
    state = torch.load(final, map_location=device, weights_only=True)
    if state.get("config") != config.to_dict():
        raise ValueError("stored config differs from the requested one")
    model = create_mad_model(config.preset, temperature=config.temperature, seed=config.seed, device=device)
    model.load_state_dict(state["model"])
    model.eval()
    return TrainResult(
        config, model, list(state["history"]), state["eval_image"].numpy(), state["eval_text"].numpy(),
        {k: v.numpy() for k, v in state["eval_factors"].items()}, float(state["seconds"]),
    )


def cached_run(run_dir: Path, *, load, train, to_state):
    """The run stored in ``run_dir/final.pt`` if ``load(final_path)`` can read it back; otherwise ``train(run_dir)``
    (which may resume from ``run_dir/ckpt.pt``), then ``to_state(result)`` saved atomically as ``final.pt``.

    An entry that cannot be read (a half-copied file, another code version's layout, a different config) is
    reported and retrained, never trusted.
    """
    final = Path(run_dir) / "final.pt"
    if final.exists():
        try:
            return load(final)
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is retrained
            warnings.warn(f"cached run {Path(run_dir).name} could not be read ({type(exc).__name__}: {exc}); retraining",
                          stacklevel=3)
            shutil.rmtree(run_dir, ignore_errors=True)
    result = train(run_dir)
    atomic_save(to_state(result), final)
    (Path(run_dir) / "ckpt.pt").unlink(missing_ok=True)
    return result


def get_or_train(config: TrainConfig, *, device=None, progress: bool = True) -> TrainResult:
    """The finished run of ``config``: from the cache when present and readable, else trained (resuming a
    checkpoint left by an interrupted attempt) and stored."""
    config = resolve_glyphs(config)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    run_dir = cache_dir() / run_key(config)
    result = cached_run(
        run_dir,
        load=lambda final: _load(final, config, device),
        train=lambda d: train(config, d, device=device, progress=progress),
        to_state=lambda r: {
            "config": config.to_dict(), "code_version": code_version(), "model": r.model.state_dict(),
            "history": r.history, "eval_image": torch.from_numpy(r.eval_image),
            "eval_text": torch.from_numpy(r.eval_text),
            "eval_factors": {k: torch.from_numpy(v) for k, v in r.eval_factors.items()}, "seconds": r.seconds,
        },
    )
    config_file = run_dir / "config.json"
    if not config_file.exists():
        config_file.write_text(json.dumps(config.to_dict(), indent=2))
    return result


def get_or_train_all(configs: dict, *, desc: str = "runs", progress: bool = True) -> dict:
    """``{name: get_or_train(config)}`` for a dict of configurations, with one progress bar over the runs."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(configs), desc=desc, unit="run")
    out = {}
    for name, config in configs.items():
        out[name] = get_or_train(config, progress=progress)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out
