"""The imbalance knob for real data: truncated captions in open_clip's own trainer.

Schrodi et al. (2025) raise the information imbalance on real image-text data by training on shortened
captions (the full caption, its first half, its first quarter). This module supplies that one piece for
``open_clip_train`` (the distributed trainer shipped with ``open_clip_torch``) instead of a trainer of our own:

* :func:`truncate_caption` shortens one caption to a fraction of its words;
* :class:`TruncatingTokenizer` wraps any open_clip tokenizer so every caption is shortened first;
* :func:`patched_open_clip_train` makes ``open_clip_train`` use it for the *training* captions only
  (validation retrieval and ImageNet zero-shot prompts stay whole, so runs are compared on equal terms);
* ``python -m gaplab.realdata --caption-keep half <open_clip_train arguments>`` runs the trainer that way,
  and :func:`torchrun_command` writes the command for a multi-GPU CC3M/CC12M run.
"""

from __future__ import annotations

import contextlib
import copy
import math
import shlex
import sys
from collections.abc import Sequence

__all__ = [
    "CAPTION_KEEP",
    "truncate_caption",
    "TruncatingTokenizer",
    "patched_open_clip_train",
    "torchrun_command",
    "main",
]

#: the paper's three caption lengths, as the fraction of words kept
CAPTION_KEEP: dict[str, float] = {"full": 1.0, "half": 0.5, "quarter": 0.25}


def _fraction(keep) -> float:
    if isinstance(keep, str):
        if keep not in CAPTION_KEEP:
            raise ValueError(f"unknown caption length {keep!r}; choose one of {', '.join(CAPTION_KEEP)} "
                             f"or a fraction in (0, 1]")
        return CAPTION_KEEP[keep]
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not (0 < keep <= 1):
        raise ValueError(f"caption keep fraction must be in (0, 1] or one of {', '.join(CAPTION_KEEP)}; got {keep!r}")
    return float(keep)


def truncate_caption(text: str, keep="half") -> str:
    """The first ``ceil(keep * n)`` of the caption's ``n`` whitespace-separated words (at least one).

    Words, not tokens: a cut never splits a word into sub-word pieces, and the kept part reads as text.
    Whitespace runs become single spaces; an empty caption stays empty.
    """
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str; got {type(text).__name__}")
    frac = _fraction(keep)
    words = text.split()
    if not words:
        return ""
    return " ".join(words[: max(1, math.ceil(frac * len(words)))])


class TruncatingTokenizer:
    """An open_clip tokenizer that shortens every caption before tokenising it; all else is forwarded."""

    def __init__(self, tokenizer, keep="half"):
        self.tokenizer = tokenizer
        self.keep = keep
        self.fraction = _fraction(keep)

    def __call__(self, texts, *args, **kwargs):
        if isinstance(texts, str):
            texts = truncate_caption(texts, self.fraction)
        else:
            texts = [truncate_caption(t, self.fraction) for t in texts]
        return self.tokenizer(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __repr__(self):
        return f"TruncatingTokenizer({self.tokenizer!r}, keep={self.keep!r})"


@contextlib.contextmanager
def patched_open_clip_train(keep="half"):
    """Within the block, ``open_clip_train.main`` builds its training data set with truncated captions.

    The trainer creates one tokenizer and hands it to ``get_data`` for every split; the patch builds the
    training split with a :class:`TruncatingTokenizer` and the validation split with the original one.
    """
    _fraction(keep)
    try:
        import open_clip_train.main as oc_main
    except ImportError as exc:  # pragma: no cover - open_clip_torch ships it; a trimmed install may not
        raise ImportError("open_clip_train is not installed; `pip install open_clip_torch` provides it") from exc

    original = oc_main.get_data

    def get_data(args, preprocess_fns, epoch=0, tokenizer=None):
        if tokenizer is None or args.dataset_type == "synthetic":
            return original(args, preprocess_fns, epoch=epoch,
                            tokenizer=TruncatingTokenizer(tokenizer, keep) if tokenizer is not None else None)
        # two shallow copies of the arguments: one names only the training data, the other only the evaluations
        train_args, eval_args = copy.copy(args), copy.copy(args)
        train_args.val_data = train_args.imagenet_val = train_args.imagenet_v2 = None
        eval_args.train_data = None
        data = {}
        if args.train_data:
            data.update(original(train_args, preprocess_fns, epoch=epoch, tokenizer=TruncatingTokenizer(tokenizer, keep)))
        data.update(original(eval_args, preprocess_fns, epoch=epoch, tokenizer=tokenizer))
        return data

    oc_main.get_data = get_data
    try:
        yield
    finally:
        oc_main.get_data = original


def torchrun_command(keep="half", *, train_data: str = "/data/cc3m/cc3m-train-{0000..0575}.tar",
                     train_num_samples: int = 2_905_954, val_data: str | None = None, model: str = "RN50",
                     gpus: int = 8, batch_size: int = 128, epochs: int = 32, extra: Sequence[str] = ()) -> str:
    """The shell command that trains ``model`` on CC3M-style webdataset shards with captions cut to ``keep``.

    Defaults follow open_clip's documented CC3M setting (RN50, 8 GPUs, batch 128 per GPU, 32 epochs,
    learning rate 1e-3, warm-up 10k, weight decay 0.1). CC12M: point ``train_data`` at its shards and set
    ``train_num_samples``.
    """
    frac = _fraction(keep)
    name = keep if isinstance(keep, str) else f"{frac:g}"
    args = ["torchrun", f"--nproc_per_node={int(gpus)}", "-m", "gaplab.realdata", "--caption-keep", str(name),
            "--train-data", train_data, "--train-num-samples", str(int(train_num_samples)),
            "--dataset-type", "webdataset", "--model", model, "--batch-size", str(int(batch_size)),
            "--epochs", str(int(epochs)), "--lr", "1e-3", "--wd", "0.1", "--warmup", "10000", "--workers", "8",
            "--precision", "amp", "--report-to", "tensorboard", "--name", f"{model}-captions-{name}"]
    if val_data:
        args += ["--val-data", val_data]
    args += list(extra)
    return " ".join(shlex.quote(a) for a in args)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gaplab.realdata --caption-keep {full,half,quarter} <open_clip_train arguments>``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    keep = "full"
    rest = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--caption-keep":
            if i + 1 >= len(argv):
                raise SystemExit("--caption-keep needs a value: full, half, quarter or a fraction in (0, 1]")
            keep = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--caption-keep="):
            keep = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    if keep not in CAPTION_KEEP:
        try:
            keep = float(keep)
        except ValueError:
            raise SystemExit(f"--caption-keep {keep!r}: choose full, half, quarter or a fraction in (0, 1]") from None
    try:
        _fraction(keep)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    import open_clip_train.main as oc_main

    with patched_open_clip_train(keep):
        oc_main.main(rest)


if __name__ == "__main__":  # pragma: no cover
    main()
