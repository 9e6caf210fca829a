"""Training a CLIP on MAD: one run from one :class:`TrainConfig`, and the step loop single runs and grids share.

The data live on the training device as uint8 tensors; each step draws a batch of images and fresh random
captions for them, so no DataLoader or per-sample Python work sits in the loop. Every ``eval_every`` steps the
run is measured on a fixed held-out set (:mod:`gaplab.training.evaluate`) and writes a checkpoint atomically
(:mod:`gaplab.training.checkpoint`); a run killed mid-way resumes from it and, on the CPU, ends with the same
numbers as one that was never interrupted. One step, its optimiser and schedule are in
:mod:`gaplab.training.step`; the configuration in :mod:`gaplab.training.config`. The names of those modules
that chapters and tests import from here are re-exported.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gaplab.data.mad import MADSet
from gaplab.training.checkpoint import Checkpoint
from gaplab.training.config import (
    MADRecipe,
    TrainConfig,
    TrainResult,
    check_positive_ints,
)
from gaplab.training.evaluate import (
    align_text_to_images,
    class_prompt_embeddings,
    class_prompts,
    encode,
    encode_images,
    eval_set,
    evaluate,
    mad_data,
)
from gaplab.training.models import (
    calibrate_batchnorm,
    create_mad_model,
    logit_scale_param,
    logit_scale_value,
    set_temperature,
)
from gaplab.training.precision import Precision, choose_precision, make_scaler
from gaplab.training.step import (
    apply_gradients,
    batch_embeddings,
    flush_denormal,
    lr_at,
    make_optimizer,
    param_groups,
    precision_autocast,
    set_learning_rate,
    train_step,
    training_loss,
)
from gaplab.training.tokenizer import MADTokenizer, caption_tokens

__all__ = [
    "train",
    "prepare_run",
    "build_model",
    "load_start_weights",
    "init_weights_path",
    "run_steps",
    "draw_batch",
    "record_evaluation",
    "finish_run",
    "history_row",
    "RunState",
    # re-exported from the modules the loop is made of
    "MADRecipe",
    "TrainConfig",
    "TrainResult",
    "check_positive_ints",
    "Checkpoint",
    "encode",
    "encode_images",
    "class_prompts",
    "class_prompt_embeddings",
    "eval_set",
    "evaluate",
    "mad_data",
    "align_text_to_images",
    "apply_gradients",
    "batch_embeddings",
    "flush_denormal",
    "lr_at",
    "make_optimizer",
    "param_groups",
    "precision_autocast",
    "set_learning_rate",
    "train_step",
    "training_loss",
]


def train(
    cfg: TrainConfig,
    run_dir: str | Path | None = None,
    *,
    device=None,
    progress: bool = True,
    stop_after: int | None = None,
    init_weights: str | Path | None = None,
) -> TrainResult:
    """Train (or resume) the run described by ``cfg``; checkpoints go to ``run_dir`` when given.

    ``stop_after`` ends the loop after that many steps without a final save, as if the process were killed
    (the tests use it to check resumption). ``init_weights``: the weights file ``cfg.init_from`` names, as
    the run cache resolved it (needed for ``"run:<key>"``; a path in ``init_from`` is read as it is).
    """
    with flush_denormal():
        return _train(
            cfg,
            run_dir,
            device=device,
            progress=progress,
            stop_after=stop_after,
            init_weights=init_weights,
        )


@dataclass
class RunState:
    """One run between its set-up and its result: what the loop changes, and what it reads."""

    cfg: TrainConfig
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    history: list[dict]
    start: int
    data: MADSet
    ev: dict
    ckpt: Checkpoint
    precision: Precision
    scaler: torch.amp.GradScaler
    device: torch.device
    tokenizer: MADTokenizer


def build_model(cfg: TrainConfig, device) -> torch.nn.Module:
    """The freshly initialised MAD model of ``cfg`` (its preset, seed, temperature and its parameterisation,
    embedding size, SigLIP's logit bias for the sigmoid loss, I0T's normalisation layers): the model a run
    starts from, and the shape a stored run's weights are loaded into."""
    return create_mad_model(
        cfg.preset,
        temperature=cfg.temperature,
        seed=cfg.seed,
        device=device,
        embed_dim=cfg.embed_dim,
        temperature_param=cfg.temperature_param,
        loss=cfg.loss,
        embed_norm=cfg.embed_norm,
    )


#: what a fine-tuning run may add to the weights it starts from, or leave out of them: the parameters and
#: buffers of a remedy the start run was trained without (or with)
_REMEDY_STATE = ("logit_bias", "image_norm.", "text_norm.")


def load_start_weights(model, state: dict, cfg: TrainConfig) -> None:
    """Load a stored run's ``state`` (a ``final.pt`` or checkpoint) into ``model``, the fresh model of the
    fine-tuning run ``cfg``.

    The start run may have been trained without a remedy this run has, or with one it lacks: SigLIP's logit
    bias and I0T's normalisation layers then keep their fresh values, or are dropped. Its logit scale is
    carried over as the scale it stood for, read with the parameterisation the start run's stored config names
    (CLIP's ``exp`` when it names none); any other difference between the two models is an error.
    """
    weights = dict(state["model"])
    fit = "(another preset or embedding size?)"
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        # torch refuses tensors of another shape even when it lets keys be missing
        raise ValueError(
            f"the start weights do not fit this run's model {fit}: {str(exc)[:300]}"
        ) from None
    odd = [k for k in [*missing, *unexpected] if not k.startswith(_REMEDY_STATE)]
    if odd:
        raise ValueError(
            f"the start weights do not fit this run's model {fit}: "
            f"{', '.join(sorted(odd)[:6])} differ"
        )
    before = (state.get("config") or {}).get("temperature_param", "exp")
    if before != cfg.temperature_param and "logit_scale" in weights:
        scale = float(logit_scale_value(weights["logit_scale"].float(), before))
        with torch.no_grad():
            model.logit_scale.fill_(logit_scale_param(scale, cfg.temperature_param))


def init_weights_path(cfg: TrainConfig, init_weights=None) -> Path | None:
    """The weights file a fine-tuning run of ``cfg`` starts from: ``init_weights`` when the caller resolved
    ``cfg.init_from`` (the run cache does, for ``"run:<key>"``), else ``cfg.init_from`` read as a path."""
    if not cfg.init_from:
        return None
    if init_weights is not None:
        return Path(init_weights)
    if cfg.init_from.startswith("run:"):
        raise ValueError(
            f"init_from={cfg.init_from!r} names a cached run, which only the run cache can find: train this "
            "config with gaplab.runs.get_or_train, or pass init_weights=<path of that run's final.pt>"
        )
    return Path(cfg.init_from)


def prepare_run(cfg: TrainConfig, run_dir, device, init_weights=None) -> RunState:
    """Build the model, optimiser and batch stream of ``cfg``, resume its checkpoint in ``run_dir`` if there
    is one, and otherwise measure it at step 0. ``init_weights``: the resolved path of ``cfg.init_from``
    (see :func:`init_weights_path`)."""
    tokenizer = MADTokenizer()
    data = mad_data(cfg.n_train, cfg.data_seed, cfg.glyphs, device)
    ev = eval_set(cfg, tokenizer, device)

    model = build_model(cfg, device)
    init = init_weights_path(cfg, init_weights)
    if init is not None:
        state = torch.load(init, map_location=device, weights_only=True)
        load_start_weights(model, state, cfg)
        # the new run's temperature mode wins over the old run's
        set_temperature(model, cfg.temperature, cfg.temperature_param)
    opt = make_optimizer(model, cfg)
    precision = choose_precision(device, cfg.cpu_precision)
    scaler = make_scaler(precision, device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    history: list[dict] = []
    start = 0
    ckpt = Checkpoint(run_dir)
    if ckpt.resumable():
        history, start = ckpt.restore(model, opt, gen, device, scaler)
    else:
        measured = _measured_at_start(model, data, cfg, tokenizer)
        history.append(
            history_row(0, 0, None, evaluate(measured, ev, tokenizer, device))
        )
    return RunState(
        cfg,
        model,
        opt,
        gen,
        history,
        start,
        data,
        ev,
        ckpt,
        precision,
        scaler,
        device,
        tokenizer,
    )


def _measured_at_start(model, data: MADSet, cfg: TrainConfig, tokenizer):
    """The model a fresh run's step 0 is measured on (aligning ``model`` first when ``cfg`` says so)."""
    if cfg.init_from:
        # a loaded model's BatchNorm statistics are its own: measure it as it is, on the new captions
        return model
    if cfg.align_init:
        align_text_to_images(model, data, cfg, tokenizer)
    # measured on a copy whose BatchNorm statistics come from training images: the defaults are meaningless
    initial = copy.deepcopy(model)
    images = data.images[: min(len(data.images), 2048)]
    tokens = None
    if cfg.embed_norm:
        # the text tower's normalisation layer needs captions; drawn from a generator of their own, so the
        # training stream is the one a run without the layer draws
        gen = torch.Generator(device=images.device).manual_seed(cfg.seed + 3)
        factors = {name: v[: len(images)] for name, v in data.factors.items()}
        tokens = caption_tokens(factors, cfg.k, tokenizer, gen, cfg.object_factor)
    calibrate_batchnorm(initial, images, tokens=tokens)
    return initial


def history_row(done: int, batch_size: int, mean_loss, measures: dict) -> dict:
    """A run's history row after ``done`` steps: steps, samples seen, the mean training loss since the row
    before (None at step 0) and what the evaluation measured."""
    return {"step": done, "samples": done * batch_size, "loss": mean_loss, **measures}


def draw_batch(run: RunState) -> tuple[torch.Tensor, torch.Tensor]:
    """The next training batch of ``run``: uint8 images and freshly drawn caption tokens."""
    cfg = run.cfg
    idx = torch.randint(
        0, cfg.n_train, (cfg.batch_size,), generator=run.gen, device=run.device
    )
    factors = {name: v[idx] for name, v in run.data.factors.items()}
    tokens = caption_tokens(factors, cfg.k, run.tokenizer, run.gen, cfg.object_factor)
    return run.data.images[idx], tokens


def is_evaluation(done: int, cfg: TrainConfig) -> bool:
    return done % cfg.eval_every == 0 or done == cfg.steps


def record_evaluation(run: RunState, done: int, mean_loss: float) -> None:
    """Measure ``run`` after ``done`` steps, add the row to its history and write its checkpoint."""
    measures = evaluate(run.model, run.ev, run.tokenizer, run.device)
    run.history.append(history_row(done, run.cfg.batch_size, mean_loss, measures))
    run.ckpt.save(run.model, run.opt, run.gen, run.history, done, run.scaler)


def finish_run(run: RunState, seconds: float) -> TrainResult:
    img, txt = encode(run.model, run.ev["images"], run.ev["tokens"])
    return TrainResult(
        run.cfg,
        run.model,
        run.history,
        img,
        txt,
        {k: v.cpu().numpy() for k, v in run.ev["factors"].items()},
        seconds,
        run.precision.name,
    )


def run_steps(
    cfg: TrainConfig,
    start: int,
    step,
    evaluate,
    *,
    size: int = 1,
    device,
    desc: str,
    progress: bool,
    stop_after: int | None,
) -> None:
    """The loop a single run and a grid share, from step ``start`` to ``cfg.steps``.

    ``step(i)`` takes optimiser step ``i`` and returns the loss of each of the ``size`` runs on the device; at
    every evaluation ``evaluate(done, mean_losses)`` gets the mean loss of each run since the one before. The
    losses are summed on the device and read only at evaluations: reading them every step would make the host
    wait for the GPU (float64, so the mean equals one summed in Python floats).
    """
    bar = None
    if progress:
        bar = tqdm(total=cfg.steps, initial=start, desc=desc, unit="step", leave=False)
    running, count = torch.zeros(size, dtype=torch.float64, device=device), 0
    for i in range(start, cfg.steps):
        if stop_after is not None and i >= stop_after:
            break
        running += step(i).detach().double()
        count += 1
        done = i + 1
        if bar is not None:
            bar.update(1)
        if is_evaluation(done, cfg):
            means = (running / count).tolist()
            evaluate(done, means)
            if bar is not None:
                bar.set_postfix(loss=f"{sum(means) / len(means):.3f}")
            running.zero_()
            count = 0
    if bar is not None:
        bar.close()


def _train(
    cfg: TrainConfig,
    run_dir,
    *,
    device,
    progress: bool,
    stop_after: int | None,
    init_weights,
) -> TrainResult:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    t0 = time.perf_counter()
    run = prepare_run(cfg, run_dir, device, init_weights)
    if device.type == "cuda":
        print(
            f"gaplab: training in {run.precision.reason}", file=sys.stderr, flush=True
        )

    def step(i):
        set_learning_rate(run.opt, i, cfg)
        images, tokens = draw_batch(run)
        return train_step(
            run.model, run.opt, images, tokens, cfg, run.precision, run.scaler, step=i
        )

    run_steps(
        cfg,
        run.start,
        step,
        lambda done, means: record_evaluation(run, done, means[0]),
        device=device,
        desc=f"train k={cfg.k}",
        progress=progress,
        stop_after=stop_after,
    )
    return finish_run(run, time.perf_counter() - t0)
