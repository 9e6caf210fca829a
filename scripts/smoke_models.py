"""The models extra's smoke test: run by scripts/test_wheel.sh in an environment holding the
gaplab wheel installed with ``[models]``, in an empty folder outside the clone.

    python scripts/smoke_models.py

Writes a local open_clip checkpoint (a small architecture, random weights, saved as a state
dict) and a class folder of PNGs (the ``folder`` data kind: PATH/<class>/<image>), runs
``gaplab report`` on them and checks its table and report.json against the files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from pathlib import Path

import numpy as np

#: an open_clip architecture small enough for a CPU smoke test (a ViT-S/32)
ARCH = "ViT-S-32-alt"
CLASSES = {"golden_retriever": 3, "tabby_cat": 2, "zebra": 2}


def write_checkpoint(path: Path) -> str:
    import open_clip
    import torch

    # open_clip warns that it built random weights: they are what this checkpoint is
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(7)
    model = open_clip.create_model(ARCH, pretrained=None)
    torch.save(model.state_dict(), path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_folder(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in CLASSES.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")


def main() -> None:
    here = Path.cwd()
    digest = write_checkpoint(here / "tiny.pt")
    write_folder(here / "imgs")
    argv = ["gaplab", "report", "--model", ARCH, "--pretrained", "tiny.pt"]
    argv += ["--data", "folder:imgs", "--templates", "single", "--device", "cpu"]
    done = subprocess.run(
        [*argv, "--quiet", "--out", "rep"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    weights = f"weights      local file {here / 'tiny.pt'} (sha256 {digest[:12]})"
    assert weights in out.splitlines(), out
    rep = json.loads((here / "rep" / "report.json").read_text())
    measured = rep["data"]["folder"]
    n = sum(CLASSES.values())
    assert rep["weights_source"]["sha256"] == digest and rep["model"] == ARCH
    assert measured["n"] == n and measured["classes"] == len(CLASSES), measured
    assert 0 <= measured["zero_shot_acc"] <= 1 and 0 <= measured["l2m"] <= 2, measured
    assert re.search(rf"^images\s+{n}$", out, re.M), out
    print(
        f"gaplab report --model {ARCH} --pretrained tiny.pt (sha256 {digest[:12]}): "
        f"{n} images, L2M {measured['l2m']:.3f}, zero-shot {measured['zero_shot_acc']:.3f}"
    )


if __name__ == "__main__":
    main()
