"""The stacked state of a grid and its training step.

:class:`StackedRuns` holds K runs' weights, buffers and AdamW state along a first dimension of size K, and
moves them back into the runs' own modules and optimisers (for evaluation and checkpoints);
:func:`stacked_losses` and :func:`grid_step` run the K forward passes as one under ``torch.func.vmap`` and take
one optimiser step for all of them.
"""

from __future__ import annotations

import contextlib
import copy
import math
import warnings

import torch
from torch.func import functional_call, stack_module_state, vmap

from gaplab import losses
from gaplab.cnn import MADConvNet
from gaplab.models import mad_image_input
from gaplab.train import RunState, TrainConfig, param_groups

__all__ = ["GridError", "StackedRuns", "stacked_losses", "grid_step"]


class GridError(ValueError):
    """The runs asked for cannot be trained as one grid."""


class _Encoders(torch.nn.Module):
    """The two towers as one module, so that ``functional_call`` can run them with a run's weights."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images_uint8, tokens):
        model = self.model
        return model.encode_image(mad_image_input(images_uint8)), model.encode_text(
            tokens
        )


class StackedRuns:
    """K runs' weights, buffers and optimiser state stacked along a first dimension of size K.

    ``models`` and ``opts`` are the runs' own (built by :func:`gaplab.train.make_optimizer`); ``cfg`` gives
    the settings they share.
    """

    def __init__(self, models, opts, cfg: TrainConfig):
        self.params, self.buffers = stack_module_state(models)
        # the towers' structure without storage: the weights come from the stack at every call
        base = copy.deepcopy(models[0]).to("meta")
        for m in base.modules():
            if isinstance(m, MADConvNet):
                m.channels_last = False
            # an in-place activation on a batched tensor is recorded as a copy into a slice of the whole
            # stack, and its backward copies the stack again; out of place it is one elementwise op
            if isinstance(m, torch.nn.ReLU):
                m.inplace = False
        self.encoders = _Encoders(base)
        self.opt = torch.optim.AdamW(
            param_groups(self.params.items(), cfg, stacked=True), lr=cfg.lr
        )
        self._load_optimiser(list(opts))

    def _load_optimiser(self, opts) -> None:
        states = [o.state_dict() for o in opts]
        first = states[0]
        stacked = {}
        for idx in first["state"]:
            entry = {}
            for key, value in first["state"][idx].items():
                values = [s["state"][idx][key] for s in states]
                if key == "step":
                    if any(float(v) != float(value) for v in values):
                        raise GridError("the runs' optimisers are at different steps")
                    entry[key] = value
                else:
                    entry[key] = torch.stack(values)
            stacked[idx] = entry
        if any(set(s["state"]) != set(first["state"]) for s in states):
            raise GridError("some runs have optimiser state and others not")
        self.opt.load_state_dict(
            {"state": stacked, "param_groups": first["param_groups"]}
        )

    @torch.no_grad()
    def unstack_into(self, runs: list[RunState]) -> None:
        """Copy each run's slice of the stack back into its own model and optimiser."""
        state = self.opt.state_dict()
        for i, run in enumerate(runs):
            for name, p in run.model.named_parameters():
                p.copy_(self.params[name][i])
            for name, b in run.model.named_buffers():
                b.copy_(self.buffers[name][i])
            run.opt.load_state_dict(
                {
                    "state": {
                        idx: {
                            k: (v if k == "step" else v[i].clone())
                            for k, v in entry.items()
                        }
                        for idx, entry in state["state"].items()
                    },
                    "param_groups": state["param_groups"],
                }
            )


def stacked_losses(stack: StackedRuns, cfg: TrainConfig):
    """A function of (params, buffers, images, tokens) for one run, giving that run's training loss."""

    def one(params, buffers, images, tokens):
        state = {f"model.{k}": v for k, v in {**params, **buffers}.items()}
        img, txt = functional_call(stack.encoders, state, (images, tokens))
        img = torch.nn.functional.normalize(img.float(), dim=-1)
        txt = torch.nn.functional.normalize(txt.float(), dim=-1)
        loss = losses.clip_loss(img, txt, params["logit_scale"].exp().clamp(max=100))
        if cfg.uniformity_weight:
            uni = (losses.uniformity(img) + losses.uniformity(txt)) / 2
            loss = loss + cfg.uniformity_weight * uni
        if cfg.alignment_weight:
            loss = loss + cfg.alignment_weight * losses.alignment(img, txt)
        if cfg.cross_uniformity_weight:
            cross = losses.cross_uniformity(img, txt)
            loss = loss + cfg.cross_uniformity_weight * cross
        return loss

    return vmap(one)


def grid_step(
    stack: StackedRuns, losses_of, images, tokens, precision, scaler
) -> torch.Tensor:
    """One optimiser step of every run in the stack; returns the K losses (on the device)."""
    device = images.device
    stack.encoders.train()
    autocast = (
        torch.autocast(device.type, dtype=precision.dtype)
        if precision.dtype
        else contextlib.nullcontext()
    )
    with autocast, warnings.catch_warnings():
        # the CPU's fused attention has no vmap rule yet: torch runs it once per run instead, and says so
        warnings.filterwarnings("ignore", message="There is a performance drop")
        per_run = losses_of(stack.params, stack.buffers, images, tokens)
    stack.opt.zero_grad(set_to_none=True)
    # each run's weights reach only its own loss, so the gradient of the sum is each run's own gradient
    total = per_run.sum()
    if scaler is not None and scaler.is_enabled():
        scaler.scale(total).backward()
        scaler.step(stack.opt)
        scaler.update()
    else:
        total.backward()
        stack.opt.step()
    with torch.no_grad():
        stack.params["logit_scale"].clamp_(max=math.log(100.0))
    return per_run.detach()
