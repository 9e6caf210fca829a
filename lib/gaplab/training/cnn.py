"""A small convolutional image tower for 28x28 MAD images, registered as a timm model so that open_clip's
factory builds it from a model config (``"timm_model_name": "gaplab_mad_cnn"``) like any other tower.

A tiny open_clip ViT (patch 7, width 64) reached 0.76 zero-shot digit accuracy after 100k samples, so the MAD
presets use this. BatchNorm, not GroupNorm: with GroupNorm the same tower reached only 0.76 supervised digit
accuracy after 100k samples, with BatchNorm 0.97. In eval mode BatchNorm uses running statistics, which are
meaningless at initialisation: see :func:`gaplab.training.models.calibrate_batchnorm` before measuring an untrained model.
"""

from __future__ import annotations

import torch
from timm.models import register_model
from timm.models._registry import _model_entrypoints  # noqa: PLC2701 - checking avoids a double registration
from torch import nn

__all__ = ["MADConvNet"]


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class MADConvNet(nn.Module):
    """conv16-conv16-pool-conv32-conv32-pool-conv64, global average pool: 64 features per image."""

    def __init__(
        self,
        widths=(16, 32, 64),
        num_classes: int = 0,
        global_pool: str = "avg",
        in_chans: int = 3,
        **_,
    ):
        super().__init__()
        a, b, c = widths
        self.features = nn.Sequential(
            *_block(in_chans, a),
            *_block(a, a),
            nn.MaxPool2d(2),
            *_block(a, b),
            *_block(b, b),
            nn.MaxPool2d(2),
            *_block(b, c),
        )
        self.num_features = c
        self.default_cfg = {"pool_size": None}
        self.pretrained_cfg = self.default_cfg
        self.global_pool = global_pool
        self.head = nn.Linear(c, num_classes) if num_classes else nn.Identity()
        #: ask for channels-last input; off when many runs train at once under torch.func.vmap, which cannot
        #: ask a batched tensor for its memory layout (see gaplab.training.grid)
        self.channels_last = True
        # oneDNN's convolutions and BatchNorm run about a third faster on the CPU in channels-last layout
        # (measured on two cores, batch 256); cuDNN prefers it under autocast too
        self.features.to(memory_format=torch.channels_last)

    def reset_classifier(
        self, num_classes: int = 0, global_pool: str | None = None
    ) -> None:
        if global_pool is not None:
            self.global_pool = global_pool
        self.head = (
            nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.features(x)
        if self.global_pool == "avg":
            x = x.mean(dim=(2, 3))
        elif self.global_pool:
            raise ValueError(
                f"MADConvNet supports global_pool 'avg' or ''; got {self.global_pool!r}"
            )
        return self.head(x)


def _register() -> None:
    if "gaplab_mad_cnn" in _model_entrypoints:
        return

    @register_model
    def gaplab_mad_cnn(pretrained: bool = False, **kwargs):  # noqa: ANN202 - timm's entry-point signature
        if pretrained:
            raise ValueError(
                "gaplab_mad_cnn has no pretrained weights; load a checkpoint path instead"
            )
        kwargs.pop("pretrained_cfg", None)
        kwargs.pop("pretrained_cfg_overlay", None)
        kwargs.pop("cache_dir", None)
        return MADConvNet(**kwargs)


_register()
