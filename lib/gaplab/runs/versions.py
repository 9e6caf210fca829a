"""The version of the training code that a run's cache key hashes: the files whose code determines a MAD run's
numbers, and the model configs. Changing any of them changes every key, so the runs are trained anew."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from gaplab.storage import source_fingerprint

__all__ = ["TRAINING_CODE", "code_version"]

_PKG = Path(__file__).resolve().parents[1]

#: the modules (relative to the package) whose code determines a MAD run's numbers. Kept by hand and explicit:
#: a module left out lets a changed result pass under an old key; one put in needlessly retrains every run.
#: Left out on purpose: training/checkpoint.py (it stores a run, a resumed run ends with the same numbers),
#: training/grid*.py (a grid stores each run under its single run's key: equal to a tolerance, by design)
#: and runs/ (where a run is kept, not what it is).
TRAINING_CODE = (
    "training/config.py",  # the settings and their defaults
    "training/train.py",  # the loop: set-up, batch draws, step-0 measurement, evaluation cadence
    "training/step.py",  # one step: loss terms, optimiser groups, schedule, logit-scale cap
    "training/evaluate.py",  # what a history row measures, the evaluation set, alignment at initialisation
    "training/precision.py",  # the autocast precision a device trains in
    "training/losses.py",  # CLIP's loss and the terms added to it
    "training/models.py",  # models from the presets, the temperature, BatchNorm calibration
    "training/cnn.py",  # the MAD image tower
    "training/tokenizer.py",  # the captions' tokens, drawn at every step
    "data/mad.py",  # the images, factors and captions
    "data/glyphs.py",  # the digit glyphs MAD images are drawn from
    "metrics/gap.py",  # L2M and RMG in every history row
    "metrics/entropy.py",  # the logits' entropy in every history row
    "metrics/retrieval.py",  # zero-shot accuracy in every history row
    "metrics/inputs.py",  # how those metrics read their inputs
    "metrics/_rows.py",  # the row arithmetic the gap metrics share
)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of :data:`TRAINING_CODE` and the MAD model configs: 16 hex digits, part of every MAD run's key
    (:func:`gaplab.runs.run_key`).

    >>> from gaplab import runs
    >>> version = runs.code_version()
    >>> len(version), all(c in "0123456789abcdef" for c in version)
    (16, True)
    """
    h = hashlib.sha256()
    configs = sorted((_PKG / "training" / "model_configs").glob("*.json"))
    if not configs:
        # without them every run key would silently differ from the book's, and no preset exists
        raise FileNotFoundError(
            f"gaplab's model configs are missing from {_PKG / 'training' / 'model_configs'}: this install "
            "is incomplete; reinstall gaplab from the book's repository (pip install ./gaplab)"
        )
    files = [_PKG / f for f in TRAINING_CODE] + configs
    for path in files:
        h.update(path.name.encode())
        h.update(source_fingerprint(path))
    return h.hexdigest()[:16]
