"""Training a CLIP on MAD: one run from one :class:`TrainConfig`.

The data live on the training device as uint8 tensors; each step draws a batch of images and fresh random
captions for them, so no DataLoader or per-sample Python work sits in the loop. AdamW with linear warmup and
cosine decay to 0 (a constant rate made the gap jump between checkpoints in a prototype). Every ``eval_every``
steps the run measures loss, L2M, RMG, logit scale, logits entropy and zero-shot digit accuracy on a fixed
held-out set, and writes a checkpoint atomically; a run killed mid-way resumes from it and, on the CPU, ends
with the same numbers as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gaplab import metrics as M
from gaplab.data.mad import FACTORS, MADSet, generate_mad
from gaplab.storage import (
    CacheWarning,
    atomic_save,
    atomic_write_json,
    explain_os_error,
    sha256_file,
)
from gaplab.training import losses
from gaplab.training.config import (
    MADRecipe,
    TrainConfig,
    TrainResult,
    check_positive_ints,
)
from gaplab.training.models import (
    calibrate_batchnorm,
    create_mad_model,
    mad_image_input,
    set_temperature,
)
from gaplab.training.precision import Precision, choose_precision, make_scaler
from gaplab.training.tokenizer import MADTokenizer, caption_tokens

__all__ = [
    "MADRecipe",
    "TrainConfig",
    "check_positive_ints",
    "TrainResult",
    "train",
    "train_step",
    "make_optimizer",
    "encode",
    "encode_images",
    "class_prompts",
    "class_prompt_embeddings",
    "mad_data",
    "align_text_to_images",
    "atomic_save",
]


class Checkpoint:
    """A run's resumable state in ``run_dir/ckpt.pt`` (nothing is kept when ``run_dir`` is None).

    Holds the model, optimiser, batch generator, history and step; written atomically at every evaluation, so a
    run killed at any moment resumes from the last one and, on the CPU, ends with the same numbers. A write that
    fails (a full disk) keeps the previous checkpoint, warns once and lets training go on.

    ``ckpt.json`` beside it names the SHA-256 of the checkpoint (and of the two before it: it is written
    just before the new file replaces the old, so a kill in between leaves the old file still named).
    A checkpoint that matches none of them (flipped or missing bytes) is never resumed: it is set aside
    as ``ckpt.damaged-<time>.pt`` with a warning, and training starts again from step 0.
    """

    def __init__(self, run_dir):
        self.path = None
        self.failed = False
        if run_dir is not None:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
            self.path = Path(run_dir) / "ckpt.pt"
            self.sums = Path(run_dir) / "ckpt.json"
        #: whether the file is the newest one ckpt.json names (set by :meth:`problem`)
        self._latest = False

    def exists(self) -> bool:
        return self.path is not None and self.path.exists()

    def _written(self) -> dict:
        try:
            got = json.loads(self.sums.read_text())
        except (OSError, ValueError):
            return {}
        return got if isinstance(got, dict) else {}

    def problem(self) -> str | None:
        """Why the checkpoint cannot be resumed, or None when it is whole."""
        sums = self._written().get("sha256")
        if isinstance(sums, list) and sums:
            digest = sha256_file(self.path)
            self._latest = digest == sums[0]
            if digest in sums:
                return None
            return f"its SHA-256 is not the one written with it in {self.sums.name} (damaged bytes?)"
        # written before checkpoints carried checksums: whole if torch can read it
        try:
            torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - whatever the reader says, the file is unusable
            return f"torch cannot read it ({type(exc).__name__}: {str(exc)[:120]})"
        return None

    def resumable(self) -> bool:
        """Whether a whole checkpoint is there; a damaged one is set aside, with a warning."""
        if not self.exists():
            return False
        problem = self.problem()
        if problem is None:
            return True
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        aside = self.path.with_name(f"ckpt.damaged-{stamp}.pt")
        try:
            os.replace(self.path, aside)
            where = f"set aside as {aside}"
        except OSError as exc:
            where = f"left in place ({explain_os_error(exc)}); the next checkpoint replaces it"
        warnings.warn(
            f"checkpoint {self.path} is damaged: {problem}. It is {where}, and training "
            f"starts again from step 0",
            CacheWarning,
            stacklevel=2,
        )
        return False

    def step(self) -> int:
        """The step a resumed run starts from: the checkpoint's, or 0 without a whole one."""
        if not self.resumable():
            return 0
        step = self._written().get("step")
        # the step in ckpt.json is the newest file's; a kill before that file landed
        # leaves an older one, whose step only the file itself knows
        if self._latest and isinstance(step, int) and not isinstance(step, bool):
            return step
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        return int(state["step"])

    def restore(self, model, opt, gen, device, scaler=None) -> tuple[list, int]:
        state = torch.load(self.path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        gen.set_state(
            state["generator"].cpu() if device.type == "cpu" else state["generator"]
        )
        return list(state["history"]), int(state["step"])

    def save(self, model, opt, gen, history, step: int, scaler=None) -> None:
        if self.path is None:
            return
        earlier = self._written().get("sha256")
        earlier = earlier[:2] if isinstance(earlier, list) else []

        def name_it(tmp):
            atomic_write_json(
                self.sums, {"sha256": [sha256_file(tmp), *earlier], "step": step}
            )

        try:
            atomic_save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "history": history,
                    "step": step,
                    "scaler": scaler.state_dict() if scaler is not None else {},
                },
                self.path,
                before_replace=name_it,
            )
            self.failed = False
        except OSError as exc:
            if not self.failed:
                warnings.warn(
                    f"checkpoint at step {step} not written ({exc}); training goes on, and an interruption "
                    f"now would resume from the last checkpoint that was written",
                    CacheWarning,
                    stacklevel=2,
                )
            self.failed = True

    def discard(self) -> None:
        """Remove the checkpoint and its checksums (once the finished run is stored)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.sums.unlink(missing_ok=True)


def lr_at(step: int, cfg: MADRecipe) -> float:
    """The learning rate at ``step``: linear warmup over ``cfg.warmup`` steps, then cosine decay to 0."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def encode_images(model, images_uint8: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """Normalised image embeddings of MAD images, as a float32 numpy array."""
    model.eval()
    img = [
        torch.nn.functional.normalize(
            model.encode_image(mad_image_input(images_uint8[s : s + batch])).float(),
            dim=-1,
        )
        for s in range(0, len(images_uint8), batch)
    ]
    return torch.cat(img).cpu().numpy()


@torch.no_grad()
def encode(model, images_uint8: torch.Tensor, tokens: torch.Tensor, batch: int = 1024):
    """Normalised image and text embeddings, as float32 numpy arrays."""
    img = encode_images(model, images_uint8, batch)
    txt = []
    for s in range(0, len(images_uint8), batch):
        txt.append(
            torch.nn.functional.normalize(
                model.encode_text(tokens[s : s + batch]).float(), dim=-1
            )
        )
    return img, torch.cat(txt).cpu().numpy()


@torch.no_grad()
def class_prompt_embeddings(
    model,
    factor: str,
    tokenizer: MADTokenizer,
    device,
    *,
    k: int = 0,
    object_factor: str = "digit",
    n_prompts: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """(values of ``factor``, ``n_prompts``, d): normalised embeddings of the captions behind each class's prompt.

    A model trained on captions of ``k`` attributes never read a one-word caption, so each class is described by
    ``n_prompts`` captions drawn as in training (``k`` attributes besides the object) that all contain the class
    word: CLIP's prompt ensembling with the training distribution as the templates. With ``k=0`` and the
    object factor as ``factor`` this is the single one-word caption.
    """
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    for value in range(len(FACTORS[factor])):
        draws = {
            name: torch.randint(
                0, len(vals), (n_prompts,), generator=gen, device=device
            )
            for name, vals in FACTORS.items()
        }
        draws[factor].fill_(value)
        # the class word must appear: it is the object, or it is forced in as one of the k attributes
        if factor == object_factor:
            toks = caption_tokens(draws, k, tokenizer, gen, object_factor)
        else:
            toks = caption_tokens(
                draws, max(k - 1, 0), tokenizer, gen, object_factor, extra=factor
            )
        out.append(
            torch.nn.functional.normalize(model.encode_text(toks).float(), dim=-1)
        )
    return torch.stack(out)


def class_prompts(
    model,
    factor: str,
    tokenizer: MADTokenizer,
    device,
    *,
    k: int = 0,
    object_factor: str = "digit",
    n_prompts: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """Zero-shot class embeddings: one normalised row per value of ``factor``, the normalised mean of
    :func:`class_prompt_embeddings`."""
    emb = class_prompt_embeddings(
        model,
        factor,
        tokenizer,
        device,
        k=k,
        object_factor=object_factor,
        n_prompts=n_prompts,
        seed=seed,
    )
    return torch.nn.functional.normalize(emb.mean(dim=1), dim=-1).cpu().numpy()


def _evaluate(model, ev, tokenizer, device) -> dict:
    img, txt = encode(model, ev["images"], ev["tokens"])
    scale = float(model.logit_scale.detach().exp().clamp(max=100))
    digits = class_prompts(
        model, "digit", tokenizer, device, k=ev["k"], object_factor=ev["object_factor"]
    )
    return {
        "l2m": M.l2m(img, txt),
        "rmg": M.rmg(img, txt),
        "logit_scale": scale,
        "entropy": M.logits_entropy(img, txt, scale),
        "zero_shot_digit_acc": M.zero_shot_accuracy(
            img, digits, ev["factors"]["digit"].cpu().numpy()
        ),
    }


@functools.lru_cache(maxsize=2)
def _mad(n: int, seed: int, glyphs: str, device: str):
    # A chapter trains many runs on the same data in one process; rendering 30,000 images takes ~7 s on two
    # cores, and the data are deterministic and never written to, so each set is generated once
    return generate_mad(n, seed=seed, glyphs=glyphs, device=device)


def mad_data(n: int, seed: int, glyphs: str, device) -> MADSet:
    """``generate_mad(n, seed, glyphs, device)``, remembered for the last two sets asked for (read-only)."""
    return _mad(int(n), int(seed), str(glyphs), str(torch.device(device)))


def _eval_set(cfg: TrainConfig, tokenizer, device) -> dict:
    # held out: drawn from another seed than the training images
    data = mad_data(cfg.eval_n, cfg.data_seed + 1_000_003, cfg.glyphs, device)
    gen = torch.Generator(device=device).manual_seed(cfg.data_seed + 7)
    tokens = caption_tokens(data.factors, cfg.k, tokenizer, gen, cfg.object_factor)
    return {
        "images": data.images,
        "factors": data.factors,
        "tokens": tokens,
        "k": cfg.k,
        "object_factor": cfg.object_factor,
    }


@torch.no_grad()
def align_text_to_images(
    model, data, cfg: TrainConfig, tokenizer, n: int = 2048
) -> None:
    """Close the gap of a fresh model: rotate its text embeddings onto their paired image embeddings.

    Liang et al. (2022, Sec. 4.4) amend a freshly initialised CLIP with an orthogonal map of the text
    embeddings. Here the map is the orthogonal Procrustes solution R = U V^T (from the SVD of T^T I over
    ``n`` training pairs, images measured with calibrated BatchNorm statistics) and is folded into the text
    projection, so the model's structure does not change and training goes on from there. A rotation keeps
    the text cone's shape; only where it points changes.
    """
    probe = copy.deepcopy(model)
    images = data.images[: min(n, len(data.images))]
    calibrate_batchnorm(probe, images)
    probe.eval()
    # a generator of its own, so the training stream is the same as an unaligned run's
    gen = torch.Generator(device=images.device).manual_seed(cfg.seed + 2)
    factors = {name: v[: len(images)] for name, v in data.factors.items()}
    tokens = caption_tokens(factors, cfg.k, tokenizer, gen, cfg.object_factor)
    img = torch.nn.functional.normalize(
        probe.encode_image(mad_image_input(images)).float(), dim=-1
    )
    txt = torch.nn.functional.normalize(probe.encode_text(tokens).float(), dim=-1)
    u, _, vh = torch.linalg.svd(txt.T.double() @ img.double())
    rotation = (u @ vh).to(model.text_projection.dtype)
    model.text_projection.copy_(model.text_projection @ rotation)


def precision_autocast(device, precision: Precision):
    """``precision``'s autocast on ``device``'s type, or no autocast at all (float32)."""
    if not precision.dtype:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=precision.dtype)


def batch_embeddings(model, images_uint8: torch.Tensor, tokens: torch.Tensor):
    """A training batch's normalised image and text embeddings, in float32 whatever the autocast."""
    img = model.encode_image(mad_image_input(images_uint8)).float()
    txt = model.encode_text(tokens).float()
    return (
        torch.nn.functional.normalize(img, dim=-1),
        torch.nn.functional.normalize(txt, dim=-1),
    )


def training_loss(img, txt, logit_scale: torch.Tensor, cfg: TrainConfig):
    """CLIP's loss at ``logit_scale`` (capped at 100, as in CLIP) plus the configured uniformity, alignment
    and cross-uniformity terms, from normalised embeddings."""
    loss = losses.clip_loss(img, txt, logit_scale.exp().clamp(max=100))
    if cfg.uniformity_weight:
        loss = (
            loss
            + cfg.uniformity_weight
            * (losses.uniformity(img) + losses.uniformity(txt))
            / 2
        )
    if cfg.alignment_weight:
        loss = loss + cfg.alignment_weight * losses.alignment(img, txt)
    if cfg.cross_uniformity_weight:
        loss = loss + cfg.cross_uniformity_weight * losses.cross_uniformity(img, txt)
    return loss


def apply_gradients(loss, optimizer, scaler, logit_scale: torch.Tensor) -> None:
    """Backpropagate ``loss`` and step ``optimizer`` (through ``scaler`` when it is enabled), then cap the
    logit scale at 100."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(
            optimizer
        )  # skipped when the scaled gradients overflowed; the scale then shrinks
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logit_scale.clamp_(max=math.log(100.0))


def train_step(
    model,
    optimizer,
    images_uint8: torch.Tensor,
    tokens: torch.Tensor,
    cfg: TrainConfig,
    precision: Precision | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> torch.Tensor:
    """One optimiser step on a batch: CLIP loss plus the configured uniformity/alignment terms. Returns the loss.

    The encoders run under ``precision``'s autocast (default: :func:`gaplab.training.precision.choose_precision` for the
    batch's device); the loss is computed in float32. With float16, pass the run's gradient ``scaler``. The logit
    scale is capped at 100 as in CLIP.
    """
    device = images_uint8.device
    precision = precision or choose_precision(device)
    if precision.scaler and scaler is None:
        raise ValueError(
            "float16 training needs a gradient scaler: pass scaler=gaplab.training.precision.make_scaler(...)"
        )
    model.train()
    with precision_autocast(device, precision):
        img, txt = batch_embeddings(model, images_uint8, tokens)
    loss = training_loss(img, txt, model.logit_scale, cfg)
    apply_gradients(loss, optimizer, scaler, model.logit_scale)
    return loss.detach()


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on gains, biases and the logit scale (parameters with fewer than 2 dimensions).
    The logit scale has its own group, whose rate is ``temperature_lr_mult`` times the others'."""
    return torch.optim.AdamW(param_groups(model.named_parameters(), cfg), lr=cfg.lr)


def param_groups(named, cfg: TrainConfig, *, stacked: bool = False) -> list[dict]:
    """:func:`make_optimizer`'s parameter groups from ``(name, parameter)`` pairs, in the model's order.

    ``stacked``: each parameter holds several runs' copies along a first dimension (see :mod:`gaplab.training.grid`),
    so a parameter's own number of dimensions is one less.
    """
    named = list(named)
    extra = 1 if stacked else 0
    scale = [p for n, p in named if n.endswith("logit_scale")]
    rest = [p for n, p in named if not n.endswith("logit_scale")]
    return [
        {
            "params": [p for p in rest if p.ndim - extra >= 2],
            "weight_decay": cfg.weight_decay,
            "lr_mult": 1.0,
        },
        {
            "params": [p for p in rest if p.ndim - extra < 2],
            "weight_decay": 0.0,
            "lr_mult": 1.0,
        },
        {
            "params": scale,
            "weight_decay": 0.0,
            "lr_mult": float(cfg.temperature_lr_mult),
        },
    ]


def set_learning_rate(opt, step: int, cfg: TrainConfig) -> None:
    """Warmup and cosine decay: every group's rate for ``step``, times its ``lr_mult``."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg) * group["lr_mult"]


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


@contextlib.contextmanager
def flush_denormal():
    """Flush denormal floats to zero inside the block: they slowed a prototype's CPU training 2-3x late in a run.

    The setting is processor-wide state, so it is switched back off afterwards (torch has no getter to restore
    an earlier value; off is the default); left on, it breaks code that needs subnormal floats, such as
    hypothesis's float strategies.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


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
    """The freshly initialised MAD model of ``cfg`` (its preset, seed, temperature and embedding size): the
    model a run starts from, and the shape a stored run's weights are loaded into."""
    return create_mad_model(
        cfg.preset,
        temperature=cfg.temperature,
        seed=cfg.seed,
        device=device,
        embed_dim=cfg.embed_dim,
    )


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
    ev = _eval_set(cfg, tokenizer, device)

    model = build_model(cfg, device)
    init = init_weights_path(cfg, init_weights)
    if init is not None:
        state = torch.load(init, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        # the new run's temperature mode wins over the old run's
        set_temperature(model, cfg.temperature)
    opt = make_optimizer(model, cfg)
    precision = choose_precision(device)
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
            history_row(0, 0, None, _evaluate(measured, ev, tokenizer, device))
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
    calibrate_batchnorm(initial, data.images[: min(len(data.images), 2048)])
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
    measures = _evaluate(run.model, run.ev, run.tokenizer, run.device)
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
        from tqdm.auto import tqdm

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
            run.model, run.opt, images, tokens, cfg, run.precision, run.scaler
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
