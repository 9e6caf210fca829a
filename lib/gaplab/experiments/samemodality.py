"""Fahim et al.'s (2024) control: a CLIP whose two towers both read images.

Both towers are MAD image towers (the preset's ``visual``) trained with CLIP's loss. Three settings describe a
set-up:

- ``init``: ``"separate"`` draws the towers from two seeds (``seed``, ``seed + 1``); ``"same"`` starts the second
  tower as an exact copy of the first. Fahim et al.'s code (``clips/clip_assembler.py``) loads both image towers
  from the same pretrained CLIP weights.
- ``views``: what each tower reads. ``"identical"``: the same image on both sides. ``"crop"``: the first tower reads
  the image, the second a fixed crop of it resized back to 28x28, the box of Fahim et al.'s default
  (``same_inputs=False``; ``dataset_processors/mscoco_processor.py`` crops their 224x224 inputs at top 50, left 50,
  100x100 and resizes to 224x224) scaled in proportion to MAD's 28 pixels (see :data:`CROP_BOX`).
  ``"augmented"``: each tower reads its own random view (a shift by up to two pixels, brightness and contrast
  jitter), this book's first variant.
- ``shared=True``: one tower reads both views, the control's control.

With ``init="same"`` and identical views the two towers get the same gradient at every step and can never part:
the symmetry control, whose gap stays 0.

The temperature is learnable by default; their code fixes it at 0.01 (``temperature=100``, a logit scale). Each
run's history starts with step 0, the untrained towers measured with BatchNorm statistics of training images, so a
gap that training creates can be told from one it keeps.

Runs are cached like :func:`gaplab.runs.get_or_train`'s, under ``same-modality-<key>`` in the same folder.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from gaplab import metrics as M
from gaplab.progress import progress_bars
from gaplab.runs import cached_run, code_version, last_numbers
from gaplab.storage import source_fingerprint
from gaplab.training.config import FinalEvaluation, MADRecipe
from gaplab.training.losses import swap_symmetric_clip_loss
from gaplab.training.models import (
    calibrate_batchnorm,
    create_mad_model,
    mad_image_input,
    set_temperature,
)
from gaplab.training.train import (
    Checkpoint,
    apply_gradients,
    flush_denormal,
    history_row,
    mad_data,
    make_optimizer,
    run_steps,
    set_learning_rate,
)

#: how the two towers' inputs relate
VIEWS = ("augmented", "identical", "crop")
#: how the two towers start
INITS = ("separate", "same")
#: the second tower's crop as fractions of the image side (top, left, height, width): Fahim et al.'s box of
#: 100x100 pixels at (50, 50) on a 224x224 input. On 28 pixels it spans 6.25 to 18.75, fractional, so it is
#: sampled bilinearly as a resize of that exact box would be, not rounded to whole pixels.
CROP_BOX = (50 / 224, 50 / 224, 100 / 224, 100 / 224)

__all__ = [
    "VIEWS",
    "INITS",
    "CROP_BOX",
    "crop_view",
    "initial_model",
    "SameModalityConfig",
    "SameModalityResult",
    "TwoViewCLIP",
    "augment",
    "augment_input",
    "train_same_modality",
    "get_or_train_same_modality",
    "entry_version",
    "run_key",
]


@dataclass(frozen=True)
class SameModalityConfig(MADRecipe):
    """A two-tower image-image CLIP: the MAD recipe (data, preset, schedule, evaluation, temperature) and how
    the two towers start and what they read. ``from_profile`` builds it from a profile like a MAD run's."""

    shared: bool = False
    #: "augmented": each tower reads its own random view; "identical": both read the same image; "crop": the
    #: second tower reads :data:`CROP_BOX` of the image (Fahim et al.'s default)
    views: str = "augmented"
    #: "separate": towers from seeds ``seed`` and ``seed + 1``; "same": the second starts as a copy of the first
    init: str = "separate"

    def __post_init__(self):
        super().__post_init__()
        if self.views not in VIEWS:
            raise ValueError(
                f"views={self.views!r} is not allowed; choose one of {', '.join(VIEWS)}"
            )
        if self.init not in INITS:
            raise ValueError(
                f"init={self.init!r} is not allowed; choose one of {', '.join(INITS)}"
            )
        if self.shared and self.init != "separate":
            raise ValueError(
                "shared=True uses one tower, so init has nothing to set; leave it at "
                '"separate"'
            )


class TwoViewCLIP(torch.nn.Module):
    """Two image towers and CLIP's logit scale; ``encode_image``/``encode_text`` name the two sides as in CLIP."""

    def __init__(
        self,
        preset: str = "mad-cnn",
        seed: int = 0,
        shared: bool = False,
        device="cpu",
        temperature="learnable",
        init: str = "separate",
    ):
        super().__init__()
        if init not in INITS:
            raise ValueError(
                f"init={init!r} is not allowed; choose one of {', '.join(INITS)}"
            )
        self.tower_a = create_mad_model(preset, seed=seed, device=device).visual
        if shared:
            self.tower_b = self.tower_a
        elif init == "same":
            self.tower_b = copy.deepcopy(self.tower_a)
        else:
            self.tower_b = create_mad_model(preset, seed=seed + 1, device=device).visual
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
    return augment_input(mad_image_input(images_uint8), gen)


def augment_input(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """:func:`augment` of images already made model inputs (:func:`gaplab.training.models.mad_image_input`)."""
    n = x.shape[0]
    device = x.device
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


def crop_view(x: torch.Tensor, box=CROP_BOX) -> torch.Tensor:
    """The ``box`` (top, left, height, width, as fractions of the side) of each image in ``x`` (N, C, H, W),
    resized back to H x W with bilinear sampling, as a crop followed by a resize does.

    With the box at ``t`` and ``s`` pixels along a side of ``H``, output pixel ``j`` samples the image at
    ``t + s * (j + 0.5) / H - 0.5`` (pixel-centre coordinates), kept within ``[t, t + s - 1]`` because a
    cropped image has nothing beyond its edge pixels. A box that falls between pixels is sampled where it
    lies instead of being rounded; on whole pixels this is torchvision's ``resized_crop`` when enlarging.
    """
    if x.ndim != 4:
        raise ValueError(
            f"crop_view expects images (N, C, H, W); got shape {tuple(x.shape)}"
        )
    top, left, height, width = (float(v) for v in box)
    if not (0 <= top and 0 <= left and 0 < height and 0 < width):
        raise ValueError(
            f"crop box {box} must have a non-negative corner and a positive size"
        )
    if top + height > 1 or left + width > 1:
        raise ValueError(f"crop box {box} reaches past the image")
    n, _, rows, cols = x.shape

    def normalised(start: float, size: float, side: int) -> torch.Tensor:
        t, s = start * side, size * side
        j = torch.arange(side, dtype=x.dtype, device=x.device)
        u = (t + s * (j + 0.5) / side - 0.5).clamp(t, max(t, t + s - 1))
        # grid_sample's coordinates run from -1 to 1 across the image (align_corners=False)
        return (2 * u + 1) / side - 1

    ys, xs = normalised(top, height, rows), normalised(left, width, cols)
    grid = torch.stack(
        [xs[None, :].expand(rows, cols), ys[:, None].expand(rows, cols)], dim=-1
    )
    return torch.nn.functional.grid_sample(
        x,
        grid.expand(n, rows, cols, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )


def _view_pair(views: str, x: torch.Tensor, gen: torch.Generator | None):
    """What the two towers read for model inputs ``x``; ``gen`` draws the augmented views."""
    if views == "identical":
        return x, x
    if views == "crop":
        return x, crop_view(x)
    return augment_input(x, gen), augment_input(x, gen)


class _BothTowers(torch.nn.Module):
    """Runs each tower on its own view, so :func:`calibrate_batchnorm` fits each tower to what it reads."""

    def __init__(self, model: TwoViewCLIP, views: str, gen: torch.Generator):
        super().__init__()
        self.model = model
        self.views = views
        self.gen = gen

    def encode_image(self, x):
        a, b = _view_pair(self.views, x, self.gen)
        self.model.tower_a(a)
        self.model.tower_b(b)


def initial_model(
    cfg: SameModalityConfig, images_uint8: torch.Tensor, device="cpu"
) -> TwoViewCLIP:
    """The untrained model of ``cfg``, its BatchNorm statistics measured on ``images_uint8`` as each tower reads
    them: the defaults (mean 0, variance 1) would map every image to nearly one vector in eval mode."""
    model = TwoViewCLIP(
        cfg.preset, cfg.seed, cfg.shared, device, cfg.temperature, cfg.init
    )
    gen = torch.Generator(device=device).manual_seed(cfg.data_seed + 11)
    calibrate_batchnorm(_BothTowers(model, cfg.views, gen), images_uint8)
    model.eval()
    return model


@dataclass
class SameModalityResult(FinalEvaluation):
    config: SameModalityConfig
    model: TwoViewCLIP
    history: list
    eval_a: np.ndarray
    eval_b: np.ndarray
    eval_digits: np.ndarray
    seconds: float
    #: the evaluation views' embeddings at step 0 (see :func:`initial_model`)
    initial_a: np.ndarray
    initial_b: np.ndarray


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
    view_a, view_b = _view_pair(cfg.views, mad_image_input(ev_data.images), ev_gen)
    ev = {"view_a": view_a, "view_b": view_b}

    # built first, from the seed alone, so a resumed run measures the same step 0
    initial = initial_model(cfg, data.images[: min(cfg.n_train, 2048)], device)
    initial_a, initial_b = _encode(initial, ev)
    model = TwoViewCLIP(
        cfg.preset, cfg.seed, cfg.shared, device, cfg.temperature, cfg.init
    )
    opt = make_optimizer(model, cfg)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    history, start = [], 0
    ckpt = Checkpoint(run_dir)
    if ckpt.resumable():
        history, start = ckpt.restore(model, opt, gen, device)
    else:
        history.append(history_row(0, 0, None, _evaluate(initial, ev)))
    del initial

    def step(i):
        set_learning_rate(opt, i, cfg)
        idx = torch.randint(
            0, cfg.n_train, (cfg.batch_size,), generator=gen, device=device
        )
        view_a, view_b = _view_pair(cfg.views, mad_image_input(data.images[idx]), gen)
        model.train()
        a = torch.nn.functional.normalize(model.encode_image(view_a).float(), dim=-1)
        b = torch.nn.functional.normalize(model.encode_text(view_b).float(), dim=-1)
        loss = swap_symmetric_clip_loss(a, b, model.logit_scale.exp().clamp(max=100))
        # float32 throughout, as this control has always trained: no autocast, so no gradient scaler
        apply_gradients(loss, opt, None, model.logit_scale)
        return loss.detach()

    def evaluate(done, means):
        history.append(
            history_row(done, cfg.batch_size, means[0], _evaluate(model, ev))
        )
        ckpt.save(model, opt, gen, history, done)

    run_steps(
        cfg,
        start,
        step,
        evaluate,
        device=device,
        desc="same-modality" + (" (shared)" if cfg.shared else ""),
        progress=progress_bars(progress),
        stop_after=stop_after,
    )
    a, b = _encode(model, ev)
    return SameModalityResult(
        cfg,
        model,
        history,
        a,
        b,
        ev_data.factors["digit"].cpu().numpy(),
        time.perf_counter() - t0,
        initial_a,
        initial_b,
    )


def entry_version() -> str:
    """The code version of same-modality runs: the MAD training code's and this module's."""
    h = hashlib.sha256(code_version().encode())
    h.update(source_fingerprint(__file__))
    return h.hexdigest()[:16]


def run_key(cfg: SameModalityConfig) -> str:
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
        model = TwoViewCLIP(
            cfg.preset, cfg.seed, cfg.shared, device, cfg.temperature, cfg.init
        )
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
            state["initial_a"].numpy(),
            state["initial_b"].numpy(),
        )

    return cached_run(
        run_key(cfg),
        kind="same-modality",
        config=dataclasses.asdict(cfg),
        version=entry_version(),
        label=(
            f"same modality ({cfg.views} views, "
            f"{'one shared tower' if cfg.shared else cfg.init + ' towers'}), "
            f"seed {cfg.seed}, {cfg.steps} steps"
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
            "initial_a": torch.from_numpy(r.initial_a),
            "initial_b": torch.from_numpy(r.initial_b),
        },
    )
