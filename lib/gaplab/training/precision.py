"""Mixed precision chosen from what the device has in hardware.

* CUDA with compute capability 8.0 or newer (A100, L4, H100): bfloat16 autocast; its exponent range is float32's,
  so no loss scaling is needed.
* Older CUDA GPUs (Colab's free T4 is 7.5; V100, P100): float16 autocast with a gradient scaler. bfloat16 would
  be emulated there in float32, slowly or not at all; ``torch.cuda.is_bf16_supported()`` answers True on a T4
  only because it counts that emulation, so the capability decides here.
* CPU: float32, no autocast (the book's numbers are computed this way), unless a run asks for bfloat16 autocast
  with ``cpu_precision="bfloat16"`` (or ``GAPLAB_CPU_PRECISION=bfloat16`` for every run built from a profile).
  That is allowed only where the processor computes bfloat16 natively (the avx512_bf16 or amx_bf16 instructions):
  elsewhere it would be emulated, slower than float32. ``benchmarks/compare_precision.py`` measures what it saves
  and whether the imbalance chapter's verdicts survive it.
* Other devices (Apple's MPS, ...): float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "CPU_PRECISIONS",
    "CPU_PRECISION_ENV",
    "FLOAT32",
    "Precision",
    "check_cpu_precision",
    "choose_precision",
    "cpu_has_native_bfloat16",
    "cpu_precision_default",
    "make_scaler",
]

#: what a run may train in on the CPU
CPU_PRECISIONS = ("float32", "bfloat16")
#: environment variable: the CPU precision of every run built from a profile (default float32)
CPU_PRECISION_ENV = "GAPLAB_CPU_PRECISION"
#: the processor features that make bfloat16 arithmetic native rather than emulated
_BF16_FEATURES = ("avx512_bf16", "amx_bf16")


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


def check_cpu_precision(value, source: str = "cpu_precision") -> str:
    """``value`` if it is one of :data:`CPU_PRECISIONS`, else a ValueError naming ``source``."""
    if value not in CPU_PRECISIONS:
        raise ValueError(
            f"{source}={value!r} is not allowed; choose one of {', '.join(CPU_PRECISIONS)}"
        )
    return value


def cpu_precision_default() -> str:
    """The CPU precision runs built from a profile get: ``$GAPLAB_CPU_PRECISION``, or float32."""
    value = os.environ.get(CPU_PRECISION_ENV, "").strip() or "float32"
    return check_cpu_precision(value, CPU_PRECISION_ENV)


def cpu_has_native_bfloat16() -> bool:
    """Whether this processor has bfloat16 instructions (avx512_bf16 or amx_bf16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return any(found.get(name, False) for name in _BF16_FEATURES)
    # torch releases without get_capabilities: the kernel's list of flags, where there is one
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(text.split())
    return any(name in flags for name in _BF16_FEATURES)


def choose_precision(device, cpu_precision: str = "float32") -> Precision:
    """The precision to train in on ``device``; ``cpu_precision`` ("float32" or "bfloat16") is the run's
    choice for the CPU and is ignored elsewhere (a GPU's precision follows its hardware)."""
    device = torch.device(device)
    check_cpu_precision(cpu_precision)
    if device.type == "cpu" and cpu_precision == "bfloat16":
        if not cpu_has_native_bfloat16():
            raise ValueError(
                "cpu_precision='bfloat16' asks for bfloat16 autocast, but this processor has no bfloat16 "
                f"instructions ({' or '.join(_BF16_FEATURES)}): torch would emulate them, slower than float32. "
                f"Train in float32: unset {CPU_PRECISION_ENV} or pass cpu_precision='float32'"
            )
        return Precision(
            "bfloat16",
            torch.bfloat16,
            False,
            "bfloat16 autocast on the CPU (native bfloat16; asked for by cpu_precision)",
        )
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
