"""The stacked state of a grid and its training step.

:class:`StackedRuns` holds K runs' weights, buffers and AdamW state along a first dimension of size K, and
moves them back into the runs' own modules and optimisers (for evaluation and checkpoints);
:func:`stacked_losses` and :func:`grid_step` run the K forward passes as one under ``torch.func.vmap`` and take
one optimiser step for all of them.
"""

from __future__ import annotations

import copy
import math
import warnings

import torch
from torch.func import functional_call, stack_module_state, vmap

from gaplab.training.cnn import MADConvNet
from gaplab.training.precision import Precision
from gaplab.training.train import (
    RunState,
    TrainConfig,
    apply_gradients,
    batch_embeddings,
    param_groups,
    precision_autocast,
    training_loss,
)

__all__ = ["GridError", "StackedRuns", "stacked_losses", "grid_step"]


class GridError(ValueError):
    """The runs asked for cannot be trained as one grid."""


class _Encoders(torch.nn.Module):
    """The two towers as one module, so that ``functional_call`` can run them with a run's weights."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images_uint8, tokens):
        return batch_embeddings(self.model, images_uint8, tokens)


class StackedRuns:
    """K runs' weights, buffers and optimiser state stacked along a first dimension of size K.

    ``models`` and ``opts`` are the runs' own (built by :func:`gaplab.training.train.make_optimizer`); ``cfg`` gives
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


def stacked_losses(stack: StackedRuns, cfg: TrainConfig, precision: Precision):
    """The K runs' training losses from the stacked (params, buffers) and (K, B, ...) images and tokens: the
    single run's encoding and loss (:func:`gaplab.training.train.batch_embeddings`,
    :func:`gaplab.training.train.training_loss`) mapped over the stack, with only the towers under
    ``precision``'s autocast, as in a single run. SigLIP's logit bias, when the runs have one, is stacked
    like the logit scale."""

    def one(params, buffers, images, tokens):
        state = {f"model.{k}": v for k, v in {**params, **buffers}.items()}
        with precision_autocast(images.device, precision):
            img, txt = functional_call(stack.encoders, state, (images, tokens))
        return training_loss(
            img, txt, params["logit_scale"], cfg, params.get("logit_bias")
        )

    return vmap(one)


def grid_step(
    stack: StackedRuns, losses_of, images, tokens, scaler, cap: float = math.log(100.0)
) -> torch.Tensor:
    """One optimiser step of every run in the stack; returns the K losses (on the device). ``cap``: the
    logit-scale parameter's largest value (:func:`gaplab.training.step.logit_scale_cap` of the grid's config)."""
    stack.encoders.train()
    with warnings.catch_warnings():
        # the CPU's fused attention has no vmap rule yet: torch runs it once per run instead, and says so
        warnings.filterwarnings("ignore", message="There is a performance drop")
        per_run = losses_of(stack.params, stack.buffers, images, tokens)
    # each run's weights reach only its own loss, so the gradient of the sum is each run's own gradient
    apply_gradients(per_run.sum(), stack.opt, scaler, stack.params["logit_scale"], cap)
    return per_run.detach()
