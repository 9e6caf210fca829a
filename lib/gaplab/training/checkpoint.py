"""A run's resumable state on disk: :class:`Checkpoint` writes it atomically at every evaluation, checks its
SHA-256 before resuming, and sets a damaged one aside."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import torch

from gaplab.storage import (
    CacheWarning,
    atomic_save,
    atomic_write_json,
    explain_os_error,
    sha256_file,
)

__all__ = ["Checkpoint"]


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
