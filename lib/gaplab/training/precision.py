"""Mixed precision chosen from what the device has in hardware.

* CUDA with compute capability 8.0 or newer (A100, L4, H100): bfloat16 autocast; its exponent range is float32's,
  so no loss scaling is needed.
* Older CUDA GPUs (Colab's free T4 is 7.5; V100, P100): float16 autocast with a gradient scaler. bfloat16 would
  be emulated there in float32, slowly or not at all; ``torch.cuda.is_bf16_supported()`` answers True on a T4
  only because it counts that emulation, so the capability decides here.
* CPU and other devices: float32, no autocast (the book's numbers are computed this way).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Precision", "FLOAT32", "choose_precision", "make_scaler"]


@dataclass(frozen=True)
class Precision:
    #: "bfloat16", "float16" or "float32": what the run's record says
    name: str
    #: the autocast dtype; None means no autocast
    dtype: torch.dtype | None
    #: whether gradients need a scaler (float16's narrow range underflows small gradients)
    scaler: bool
    #: why this one, in words (logged when a GPU run starts)
    reason: str


FLOAT32 = Precision("float32", None, False, "float32: no autocast")


def choose_precision(device) -> Precision:
    """The precision to train in on ``device``."""
    device = torch.device(device)
    if device.type != "cuda":
        return Precision(
            "float32", None, False, f"float32 on the {device.type.upper()}"
        )
    major, minor = torch.cuda.get_device_capability(device)
    gpu = f"{torch.cuda.get_device_name(device)}, compute capability {major}.{minor}"
    if major >= 8:
        return Precision(
            "bfloat16",
            torch.bfloat16,
            False,
            f"bfloat16 autocast ({gpu}: native bfloat16)",
        )
    return Precision(
        "float16",
        torch.float16,
        True,
        f"float16 autocast with a gradient scaler ({gpu}: no native bfloat16)",
    )


def make_scaler(precision: Precision, device) -> torch.amp.GradScaler:
    """A gradient scaler for ``precision`` (a disabled one, which passes gradients through, when none is needed)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision.scaler)
