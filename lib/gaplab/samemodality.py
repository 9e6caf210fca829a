"""Fahim et al.'s (2024) control: a CLIP whose two towers both read images.

Both towers are MAD image towers (the preset's ``visual``), initialised from different seeds, and each step
feeds them two independently augmented views of the same batch of images (shifted by up to two pixels, with
brightness and contrast jitter). Nothing differs between the modalities except that the towers are two separate
networks; if a gap appears, it is not caused by images and text being different kinds of data.
``shared=True`` is the control's control: one tower reads both views, which leaves no room for a gap between two
cones.

Fahim et al.'s own protocol differs in two ways, both settings here: their towers read *identical* inputs
(``views="identical"``: no augmentation, the same image on both sides) and the temperature is fixed at 0.01
(``temperature=100``, a logit scale). The defaults keep this book's first variant (augmented views, learnable
temperature), which asks a different question: whether two towers drift apart even when their inputs differ only
by noise, with the temperature free to settle.

Runs are cached like :func:`gaplab.runs.get_or_train`'s, under ``same-modality-<key>`` in the same folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from gaplab import losses
from gaplab import metrics as M
from gaplab.models import (
    MAD_PRESETS,
    check_temperature,
    create_mad_model,
    mad_image_input,
    set_temperature,
)
from gaplab.progress import progress_bars
from gaplab.runs import cached_run, code_version, last_numbers
from gaplab.storage import source_fingerprint
from gaplab.train import (
    Checkpoint,
    _lr_at,
    check_positive_ints,
    flush_denormal,
    mad_data,
    make_optimizer,
)

#: how the two towers' inputs relate
VIEWS = ("augmented", "identical")

__all__ = [
    "VIEWS",
    "SameModalityConfig",
    "SameModalityResult",
    "TwoViewCLIP",
    "augment",
    "train_same_modality",
    "get_or_train_same_modality",
    "entry_version",
]


@dataclass(frozen=True)
class SameModalityConfig:
    n_train: int = 30_000
    data_seed: int = 0
    glyphs: str = "procedural"
    preset: str = "mad-cnn"
    shared: bool = False
    steps: int = 400
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 50
    temperature_lr_mult: float = 1.0
    seed: int = 0
    eval_n: int = 2000
    eval_every: int = 50
    #: "augmented": each tower reads its own random view; "identical": both read the same image (Fahim et al.)
    views: str = "augmented"
    #: "learnable", or a logit scale to freeze at (Fahim et al. fix 100, a temperature of 0.01)
    temperature: float | str = "learnable"

    def __post_init__(self):
        check_positive_ints(
            self, ("n_train", "steps", "batch_size", "eval_n", "eval_every")
        )
        if self.views not in VIEWS:
            raise ValueError(
                f"views={self.views!r} is not allowed; choose one of {', '.join(VIEWS)}"
            )
        check_temperature(self.temperature)
        if self.preset not in MAD_PRESETS:
            raise ValueError(
                f"preset={self.preset!r} is not allowed; choose one of {', '.join(MAD_PRESETS)}"
            )
        if self.batch_size > self.n_train:
            raise ValueError(
                f"batch_size={self.batch_size} cannot exceed n_train={self.n_train}"
            )

    @classmethod
    def from_profile(cls, profile="auto", **overrides) -> SameModalityConfig:
        """The MAD recipe of a profile (same data size, steps, batch, evaluation), with overrides."""
        from gaplab.runs import mad_config

        base = mad_config(profile)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(
                f"unknown settings {sorted(unknown)}; SameModalityConfig has {', '.join(sorted(fields))}"
            )
        shared_fields = {f: getattr(base, f) for f in fields if hasattr(base, f)}
        return cls(**{**shared_fields, **overrides})


class TwoViewCLIP(torch.nn.Module):
    """Two image towers and CLIP's logit scale; ``encode_image``/``encode_text`` name the two sides as in CLIP."""

    def __init__(
        self,
        preset: str = "mad-cnn",
        seed: int = 0,
        shared: bool = False,
        device="cpu",
        temperature="learnable",
    ):
        super().__init__()
        self.tower_a = create_mad_model(preset, seed=seed, device=device).visual
        self.tower_b = (
            self.tower_a
            if shared
            else create_mad_model(preset, seed=seed + 1, device=device).visual
        )
        self.logit_scale = torch.nn.Parameter(
            torch.tensor(math.log(1 / 0.07), device=device)
        )
        set_temperature(self, temperature)

    def encode_image(self, x):
        return self.tower_a(x)

    def encode_text(self, x):
        return self.tower_b(x)


def augment(images_uint8: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random view of each image: a shift by up to two pixels each way, brightness and contrast jitter."""
    n = images_uint8.shape[0]
    device = images_uint8.device
    x = mad_image_input(images_uint8)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    dy = torch.randint(0, 5, (n,), generator=gen, device=device)
    dx = torch.randint(0, 5, (n,), generator=gen, device=device)
    size = x.shape[-1]
    rows = dy[:, None] + torch.arange(size, device=device)[None, :]  # (n, H)
    cols = dx[:, None] + torch.arange(size, device=device)[None, :]  # (n, W)
    idx = torch.arange(n, device=device)[:, None, None]
    view = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(
        0, 3, 1, 2
    )
    gain = 1 + 0.2 * (torch.rand(n, 1, 1, 1, generator=gen, device=device) - 0.5)
    bias = 0.2 * (torch.rand(n, 1, 1, 1, generator=gen, device=device) - 0.5)
    return view * gain + bias


@dataclass
class SameModalityResult:
    config: SameModalityConfig
    model: TwoViewCLIP
    history: list
    eval_a: np.ndarray
    eval_b: np.ndarray
    eval_digits: np.ndarray
    seconds: float


@torch.no_grad()
def _encode(model, ev) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    a = torch.nn.functional.normalize(model.encode_image(ev["view_a"]).float(), dim=-1)
    b = torch.nn.functional.normalize(model.encode_text(ev["view_b"]).float(), dim=-1)
    return a.cpu().numpy(), b.cpu().numpy()


def _evaluate(model, ev) -> dict:
    a, b = _encode(model, ev)
    return {
        "l2m": M.l2m(a, b),
        "rmg": M.rmg(a, b),
        "logit_scale": float(model.logit_scale.detach().exp().clamp(max=100)),
    }


def train_same_modality(
    cfg: SameModalityConfig,
    run_dir=None,
    *,
    device=None,
    progress: bool = True,
    stop_after: int | None = None,
) -> SameModalityResult:
    """Train (or resume from ``run_dir/ckpt.pt``) the two-view model of ``cfg`` with CLIP's loss.

    ``stop_after`` ends the loop after that many steps, as if the process were killed (for the resume test).
    """
    with flush_denormal():
        return _train(
            cfg, run_dir, device=device, progress=progress, stop_after=stop_after
        )


def _train(
    cfg: SameModalityConfig, run_dir, *, device, progress: bool, stop_after: int | None
) -> SameModalityResult:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    t0 = time.perf_counter()
    data = mad_data(cfg.n_train, cfg.data_seed, cfg.glyphs, device)
    ev_data = mad_data(cfg.eval_n, cfg.data_seed + 1_000_003, cfg.glyphs, device)
    ev_gen = torch.Generator(device=device).manual_seed(cfg.data_seed + 7)
    ev = {
        "view_a": augment(ev_data.images, ev_gen),
        "view_b": augment(ev_data.images, ev_gen),
    }
    if cfg.views == "identical":
        ev = {
            "view_a": mad_image_input(ev_data.images),
            "view_b": mad_image_input(ev_data.images),
        }

    model = TwoViewCLIP(cfg.preset, cfg.seed, cfg.shared, device, cfg.temperature)
    opt = make_optimizer(model, cfg)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    history, start = [], 0
    ckpt = Checkpoint(run_dir)
    if ckpt.resumable():
        history, start = ckpt.restore(model, opt, gen, device)
    bar = None
    if progress_bars(progress):
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.steps,
            initial=start,
            desc="same-modality" + (" (shared)" if cfg.shared else ""),
            unit="step",
            leave=False,
        )
    running, count = 0.0, 0
    for step in range(start, cfg.steps):
        if stop_after is not None and step >= stop_after:
            break
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg) * group["lr_mult"]
        idx = torch.randint(
            0, cfg.n_train, (cfg.batch_size,), generator=gen, device=device
        )
        images = data.images[idx]
        if cfg.views == "identical":
            view_a = view_b = mad_image_input(images)
        else:
            view_a, view_b = augment(images, gen), augment(images, gen)
        model.train()
        a = torch.nn.functional.normalize(model.encode_image(view_a).float(), dim=-1)
        b = torch.nn.functional.normalize(model.encode_text(view_b).float(), dim=-1)
        loss = losses.clip_loss(a, b, model.logit_scale.exp().clamp(max=100))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(max=math.log(100.0))
        running += float(loss.detach())
        count += 1
        done = step + 1
        if bar is not None:
            bar.update(1)
        if done % cfg.eval_every == 0 or done == cfg.steps:
            history.append(
                {
                    "step": done,
                    "samples": done * cfg.batch_size,
                    "loss": running / count,
                    **_evaluate(model, ev),
                }
            )
            running, count = 0.0, 0
            ckpt.save(model, opt, gen, history, done)
    if bar is not None:
        bar.close()
    a, b = _encode(model, ev)
    return SameModalityResult(
        cfg,
        model,
        history,
        a,
        b,
        ev_data.factors["digit"].cpu().numpy(),
        time.perf_counter() - t0,
    )


def entry_version() -> str:
    """The code version of same-modality runs: the MAD training code's and this module's."""
    h = hashlib.sha256(code_version().encode())
    h.update(source_fingerprint(__file__))
    return h.hexdigest()[:16]


def _key(cfg: SameModalityConfig) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    h.update(code_version().encode())
    h.update(source_fingerprint(__file__))
    return "same-modality-" + h.hexdigest()[:20]


def get_or_train_same_modality(
    cfg: SameModalityConfig, *, device=None, progress: bool = True
) -> SameModalityResult:
    """The finished run of ``cfg`` from the cache when readable, else trained (resuming a checkpoint) and stored."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def load(final):
        state = torch.load(final, map_location=device, weights_only=True)
        if state["config"] != dataclasses.asdict(cfg):
            raise ValueError("stored config differs from the requested one")
        model = TwoViewCLIP(cfg.preset, cfg.seed, cfg.shared, device, cfg.temperature)
        model.load_state_dict(state["model"])
        model.eval()
        return SameModalityResult(
            cfg,
            model,
            list(state["history"]),
            state["eval_a"].numpy(),
            state["eval_b"].numpy(),
            state["eval_digits"].numpy(),
            float(state["seconds"]),
        )

    return cached_run(
        _key(cfg),
        kind="same-modality",
        config=dataclasses.asdict(cfg),
        version=entry_version(),
        label=(
            f"same modality ({cfg.views} views, {'shared' if cfg.shared else 'two'} "
            f"towers), seed {cfg.seed}, {cfg.steps} steps"
        ),
        summarise=lambda r: last_numbers(r.history),
        load=load,
        train=lambda d: train_same_modality(cfg, d, device=device, progress=progress),
        to_state=lambda r: {
            "config": dataclasses.asdict(cfg),
            "model": r.model.state_dict(),
            "history": r.history,
            "eval_a": torch.from_numpy(r.eval_a),
            "eval_b": torch.from_numpy(r.eval_b),
            "eval_digits": torch.from_numpy(r.eval_digits),
            "seconds": r.seconds,
        },
    )
