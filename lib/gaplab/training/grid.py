"""Training several MAD runs at once: a grid's models stacked and stepped together under ``torch.func.vmap``.

A MAD model has about 330k parameters; one of them at batch 512 leaves a GPU mostly waiting for kernel
launches. Stacking the K models of a grid (for example the imbalance chapter's caption levels and seeds) turns
K small launches into one of K times the work. Each run keeps everything that makes it that run: its own
initial weights, its own data and batch stream (its own generator, drawn exactly as a single run draws it),
its own evaluations and its own checkpoint, written in the single-run format, so an interrupted grid can be
resumed by a grid or by single runs, and the other way round.

What changes is only the arithmetic's order: a stacked convolution or matrix product may round differently
from K separate ones, so a grid's numbers equal single runs' to a tolerance, not to the bit (the tests state
it). On the CPU the book trains runs one at a time (:func:`gaplab.runs.get_or_train_all`), so its numbers do
not depend on this module; on a GPU grids are the default. Under float16 a grid shares one gradient scaler, so
a step whose gradients overflow in any run is skipped for all of them.
"""

from __future__ import annotations

import sys
import time

import torch

from gaplab.training.grid_stack import GridError, StackedRuns, grid_step, stacked_losses
from gaplab.training.step import logit_scale_cap
from gaplab.training.train import (
    TrainConfig,
    TrainResult,
    draw_batch,
    finish_run,
    flush_denormal,
    prepare_run,
    record_evaluation,
    run_steps,
    set_learning_rate,
)

__all__ = [
    "GridError",
    "StackedRuns",
    "grid_refusal",
    "grid_signature",
    "grid_step",
    "group_grids",
    "stacked_losses",
    "train_grid",
]

#: settings that may differ between the runs of one grid: they change a run's data or its starting point,
#: not the shapes, the schedule or the loss every run of the grid is stepped with
PER_RUN = frozenset(
    {
        "k",
        "object_factor",
        "data_seed",
        "glyphs",
        "seed",
        "n_train",
        "eval_n",
        "init_from",
        "align_init",
        "temperature",
    }
)


def grid_refusal(cfg: TrainConfig) -> str | None:
    """Why ``cfg`` cannot be trained in a grid, naming the option, or None when it can.

    Two remedies depend on the step inside the loss and are left to single runs: a temperature schedule (each
    step sets the scale) and modality swapping (each step draws its own swap). The sigmoid loss, the softplus
    temperature and the normalisation layers run in grids like the plain loss.
    """
    if cfg.temperature_end is not None:
        return "temperature_end (a temperature schedule sets the logit scale at every step)"
    if cfg.swap_prob:
        return "swap_prob (modality swapping draws a swap at every step)"
    return None


def grid_signature(cfg: TrainConfig) -> tuple:
    """What runs must share to be trained in one grid: every setting but :data:`PER_RUN`, and whether the
    temperature is learned (frozen runs may be frozen at different values)."""
    shared = {k: v for k, v in cfg.to_dict().items() if k not in PER_RUN}
    return (tuple(sorted(shared.items())), cfg.temperature == "learnable")


def group_grids(configs: dict, max_size: int = 16) -> list[list]:
    """The names of ``configs`` split into grids of at most ``max_size`` runs with the same
    :func:`grid_signature`, in the order the names come. A group larger than ``max_size`` is split into
    grids of nearly equal size (18 runs at most 16: two of 9, not 16 and 2)."""
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1; got {max_size}")
    groups: dict[tuple, list] = {}
    for name, cfg in configs.items():
        groups.setdefault(grid_signature(cfg), []).append(name)
    out = []
    for names in groups.values():
        parts = -(-len(names) // max_size)
        size, extra = divmod(len(names), parts)
        start = 0
        for i in range(parts):
            end = start + size + (1 if i < extra else 0)
            out.append(names[start:end])
            start = end
    return out


def _check(configs: list[TrainConfig]) -> None:
    if not configs:
        raise GridError("a grid needs at least one run")
    for cfg in configs:
        why = grid_refusal(cfg)
        if why:
            raise GridError(
                f"this run cannot be trained in a grid: {why}. Train it alone "
                "(gaplab.training.train.train); gaplab.runs.get_or_train_all does so by itself"
            )
    first = grid_signature(configs[0])
    for cfg in configs[1:]:
        if grid_signature(cfg) != first:
            a, b = configs[0].to_dict(), cfg.to_dict()
            diff = sorted(k for k in a if k not in PER_RUN and a[k] != b[k])
            what = ", ".join(f"{k} ({a[k]!r} vs {b[k]!r})" for k in diff) or (
                "one learns its temperature and the other freezes it"
            )
            raise GridError(
                f"these runs cannot share a grid: they differ in {what}. Runs of one grid may differ "
                f"only in {', '.join(sorted(PER_RUN))}; train the others in a grid of their own"
            )


def train_grid(
    configs: list[TrainConfig],
    run_dirs: list | None = None,
    *,
    device=None,
    progress: bool = True,
    stop_after: int | None = None,
    init_weights: list | None = None,
) -> list[TrainResult]:
    """Train the runs of ``configs`` together; one :class:`~gaplab.training.train.TrainResult` per config, in order.

    ``run_dirs`` (one per config, or None) hold each run's checkpoint in the single-run format: a run
    interrupted in a grid resumes there, alone or in a grid. Runs whose checkpoints stand at different steps
    cannot share a grid (:class:`GridError`); :func:`gaplab.runs.get_or_train_all` groups them apart.
    ``stop_after`` ends the loop after that many steps, as a killed process would. ``init_weights`` (one
    per config, or None): the weights file each fine-tuning run starts from, as the run cache resolved it
    (see :func:`gaplab.training.train.init_weights_path`).
    """
    configs = list(configs)
    _check(configs)
    run_dirs = list(run_dirs) if run_dirs is not None else [None] * len(configs)
    if len(run_dirs) != len(configs):
        raise GridError(f"{len(configs)} configs but {len(run_dirs)} run directories")
    inits = list(init_weights) if init_weights is not None else [None] * len(configs)
    if len(inits) != len(configs):
        raise GridError(f"{len(configs)} configs but {len(inits)} init_weights")
    with flush_denormal():
        return _train_grid(configs, run_dirs, inits, device, progress, stop_after)


def _train_grid(configs, run_dirs, inits, device, progress, stop_after):
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    t0 = time.perf_counter()
    runs = [prepare_run(c, d, device, i) for c, d, i in zip(configs, run_dirs, inits)]
    starts = sorted({r.start for r in runs})
    if len(starts) > 1:
        raise GridError(
            f"the runs' checkpoints stand at different steps ({starts}); resume them in separate grids"
        )
    cfg, start, precision = configs[0], runs[0].start, runs[0].precision
    scaler = runs[0].scaler
    if device.type == "cuda":
        print(
            f"gaplab: training a grid of {len(runs)} runs in {precision.reason}",
            file=sys.stderr,
            flush=True,
        )
    stack = StackedRuns([r.model for r in runs], [r.opt for r in runs], cfg)
    losses_of = stacked_losses(stack, cfg, precision)
    cap = logit_scale_cap(cfg)

    def step(i):
        set_learning_rate(stack.opt, i, cfg)
        batches = [draw_batch(r) for r in runs]
        images = torch.stack([b[0] for b in batches])
        tokens = torch.stack([b[1] for b in batches])
        return grid_step(stack, losses_of, images, tokens, scaler, cap)

    def evaluate(done, means):
        stack.unstack_into(runs)
        for run, mean_loss in zip(runs, means):
            run.scaler.load_state_dict(scaler.state_dict())
            record_evaluation(run, done, mean_loss)

    run_steps(
        cfg,
        start,
        step,
        evaluate,
        size=len(runs),
        device=device,
        desc=f"grid of {len(runs)}",
        progress=progress,
        stop_after=stop_after,
    )
    stack.unstack_into(runs)
    seconds = time.perf_counter() - t0
    # the grid's wall time is shared: each run's record carries its share
    return [finish_run(r, seconds / len(runs)) for r in runs]


def describe_grid(configs: list[TrainConfig]) -> str:
    """A short description of what varies across a grid's runs, for progress lines."""
    dicts = [c.to_dict() for c in configs]
    varying = [k for k in sorted(PER_RUN) if len({repr(d[k]) for d in dicts}) > 1]
    return f"grid of {len(configs)} runs" + (
        f" over {', '.join(varying)}" if varying else ""
    )
