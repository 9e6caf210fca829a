"""The imbalance knob for real data: truncated captions in open_clip's own trainer.

Schrodi et al. (2025) raise the information imbalance on real image-text data by training on shortened
captions: the full caption, half of it, a quarter of it. Their transforms (``custom_transforms.py`` of their
open_clip fork) split the caption at single spaces into equal chunks (bounds ``int(j * n / m)`` for ``m`` chunks)
and keep one chunk drawn at random each time a caption is read, so over the epochs a model sees every part of
its captions, not only the object-heavy start. That is ``mode="span"`` here, the default; ``mode="first"`` keeps
the first words instead (this book's earlier recipe). This module supplies that one piece for
``open_clip_train`` (the distributed trainer shipped with ``open_clip_torch``) instead of a trainer of our own:

* :func:`truncate_caption` shortens one caption to a fraction of its words;
* :class:`TruncatingTokenizer` wraps any open_clip tokenizer so every caption is shortened first;
* :func:`patched_open_clip_train` makes ``open_clip_train`` use it for the *training* captions only
  (validation retrieval and ImageNet zero-shot prompts stay whole, so runs are compared on equal terms);
* ``python -m gaplab.data.captions --caption-keep half <open_clip_train arguments>`` runs the trainer that way,
  and :func:`torchrun_command` writes the command for a multi-GPU CC3M/CC12M run.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
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
#: how a shortened caption is chosen: one random chunk of equal length (the authors'), or the first words
CAPTION_MODES = ("span", "first")


def _fraction(keep) -> float:
    if isinstance(keep, str):
        if keep not in CAPTION_KEEP:
            raise ValueError(
                f"unknown caption length {keep!r}; choose one of {', '.join(CAPTION_KEEP)} "
                f"or a fraction in (0, 1]"
            )
        return CAPTION_KEEP[keep]
    if (
        isinstance(keep, bool)
        or not isinstance(keep, (int, float))
        or not (0 < keep <= 1)
    ):
        raise ValueError(
            f"caption keep fraction must be in (0, 1] or one of {', '.join(CAPTION_KEEP)}; got {keep!r}"
        )
    return float(keep)


def _chunks(frac: float) -> int:
    m = round(1 / frac)
    if abs(m * frac - 1) > 1e-9:
        raise ValueError(
            f"mode='span' cuts a caption into equal chunks, so keep must be 1/m for a whole m "
            f"(full, half, quarter, 1/3, ...); got {frac:g}. mode='first' takes any fraction"
        )
    return m


def span_index(text: str, chunks: int, *, seed: int = 0, epoch: int = 0) -> int:
    """Which of the ``chunks`` chunks of ``text`` is kept: uniform over them, a function of (seed, epoch, text),
    so the same caption gets the same chunk within an epoch on every worker and machine and a fresh one the next
    epoch."""
    return random.Random(f"{int(seed)}:{int(epoch)}:{text}").randrange(int(chunks))


def truncate_caption(
    text: str, keep="half", *, mode: str = "span", seed: int = 0, epoch: int = 0
) -> str:
    """Shorten a caption to a fraction ``keep`` of its words.

    ``mode="span"`` (the authors', the default): split at single spaces into ``m = 1/keep``
    chunks with bounds ``int(j * n / m)`` and keep chunk :func:`span_index`; as in the authors' transform, a
    caption of fewer than ``m`` words can come out empty. ``mode="first"``: the first ``ceil(keep * n)`` of its
    ``n`` whitespace-separated words (at least one), whitespace runs becoming single spaces. Words, not tokens: a
    cut never splits a word. An empty caption stays empty.
    """
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str; got {type(text).__name__}")
    if mode not in CAPTION_MODES:
        raise ValueError(
            f"unknown caption mode {mode!r}; choose one of {', '.join(CAPTION_MODES)}"
        )
    frac = _fraction(keep)
    if mode == "span":
        m = _chunks(frac)
        if m == 1:
            return text
        words = text.split(" ")
        n = len(words)
        j = span_index(text, m, seed=seed, epoch=epoch)
        return " ".join(words[int(j * n / m) : int((j + 1) * n / m)])
    words = text.split()
    if not words:
        return ""
    return " ".join(words[: max(1, math.ceil(frac * len(words)))])


class TruncatingTokenizer:
    """An open_clip tokenizer that shortens every caption before tokenising it; all else is forwarded.

    With ``mode="span"`` the chunk kept depends on ``seed``, the caption and the epoch, read from ``epoch`` (a
    callable; :func:`patched_open_clip_train` points it at the trainer's shared epoch counter).
    """

    def __init__(
        self, tokenizer, keep="half", *, mode: str = "span", seed: int = 0, epoch=None
    ):
        if mode not in CAPTION_MODES:
            raise ValueError(
                f"unknown caption mode {mode!r}; choose one of {', '.join(CAPTION_MODES)}"
            )
        self.tokenizer = tokenizer
        self.keep = keep
        self.mode = mode
        self.seed = int(seed)
        self.fraction = _fraction(keep)
        if mode == "span":
            _chunks(self.fraction)
        self.epoch = epoch if epoch is not None else (lambda: 0)

    def _cut(self, text):
        return truncate_caption(
            text, self.fraction, mode=self.mode, seed=self.seed, epoch=int(self.epoch())
        )

    def __call__(self, texts, *args, **kwargs):
        texts = (
            self._cut(texts)
            if isinstance(texts, str)
            else [self._cut(t) for t in texts]
        )
        return self.tokenizer(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __repr__(self):
        return f"TruncatingTokenizer({self.tokenizer!r}, keep={self.keep!r}, mode={self.mode!r})"


@contextlib.contextmanager
def patched_open_clip_train(keep="half", *, mode: str = "span", seed: int = 0):
    """Within the block, ``open_clip_train.main`` builds its training data set with truncated captions.

    The trainer creates one tokenizer and hands it to ``get_data`` for every split; the patch builds the
    training split with a :class:`TruncatingTokenizer` and the validation split with the original one. With
    ``mode="span"`` the tokenizer reads the epoch from the training data's shared epoch counter, so each
    caption's kept chunk changes from epoch to epoch.
    """
    TruncatingTokenizer(
        None, keep, mode=mode, seed=seed
    )  # checks keep and mode before anything is built

    def truncating(tokenizer):
        return TruncatingTokenizer(tokenizer, keep, mode=mode, seed=seed)

    def follow_epoch(trunc, data):
        info = data.get("train")
        shared = getattr(info, "shared_epoch", None)
        if shared is not None:  # webdataset: a counter the workers share
            trunc.epoch = shared.get_value
        elif (
            info is not None
        ):  # csv: the trainer calls set_epoch before each epoch's workers start
            current = [0]
            trunc.epoch = lambda: current[0]
            original_set_epoch = info.set_epoch

            def set_epoch(epoch):
                current[0] = int(epoch)
                original_set_epoch(epoch)

            info.set_epoch = set_epoch

    try:
        # optional extra: open_clip_train, the trainer these patches apply to
        import open_clip_train.main as oc_main
    except (
        ImportError
    ) as exc:  # pragma: no cover - open_clip_torch ships it; a trimmed install may not
        raise ImportError(
            "open_clip_train is not installed; `pip install open_clip_torch` provides it"
        ) from exc

    original = oc_main.get_data

    def get_data(args, preprocess_fns, epoch=0, tokenizer=None):
        if tokenizer is None or args.dataset_type == "synthetic":
            return original(
                args,
                preprocess_fns,
                epoch=epoch,
                tokenizer=truncating(tokenizer) if tokenizer is not None else None,
            )
        # two shallow copies of the arguments: one names only the training data, the other only the evaluations
        train_args, eval_args = copy.copy(args), copy.copy(args)
        train_args.val_data = train_args.imagenet_val = train_args.imagenet_v2 = None
        eval_args.train_data = None
        data = {}
        if args.train_data:
            trunc = truncating(tokenizer)
            data.update(
                original(train_args, preprocess_fns, epoch=epoch, tokenizer=trunc)
            )
            follow_epoch(trunc, data)
        data.update(
            original(eval_args, preprocess_fns, epoch=epoch, tokenizer=tokenizer)
        )
        return data

    oc_main.get_data = get_data
    try:
        yield
    finally:
        oc_main.get_data = original


def torchrun_command(
    keep="half",
    *,
    mode: str = "span",
    train_data: str = "/data/cc3m/cc3m-train-{0000..0575}.tar",
    train_num_samples: int = 2_905_954,
    val_data: str | None = None,
    model: str = "RN50",
    gpus: int = 8,
    batch_size: int = 128,
    epochs: int = 32,
    extra: Sequence[str] = (),
) -> str:
    """The shell command that trains ``model`` on CC3M-style webdataset shards with captions cut to ``keep``.

    Defaults follow open_clip's documented CC3M setting (RN50, 8 GPUs, batch 128 per GPU, 32 epochs,
    learning rate 1e-3, warm-up 10k, weight decay 0.1). CC12M: point ``train_data`` at its shards and set
    ``train_num_samples``. ``mode``: "span" (the authors' random chunk) or "first" (the first words).
    """
    frac = _fraction(keep)
    name = keep if isinstance(keep, str) else f"{frac:g}"
    TruncatingTokenizer(None, keep, mode=mode)
    args = [
        "torchrun",
        f"--nproc_per_node={int(gpus)}",
        "-m",
        "gaplab.data.captions",
        "--caption-keep",
        str(name),
        "--caption-mode",
        mode,
        "--train-data",
        train_data,
        "--train-num-samples",
        str(int(train_num_samples)),
        "--dataset-type",
        "webdataset",
        "--model",
        model,
        "--batch-size",
        str(int(batch_size)),
        "--epochs",
        str(int(epochs)),
        "--lr",
        "1e-3",
        "--wd",
        "0.1",
        "--warmup",
        "10000",
        "--workers",
        "8",
        "--precision",
        "amp",
        "--report-to",
        "tensorboard",
        "--name",
        f"{model}-captions-{name}",
    ]
    if val_data:
        args += ["--val-data", val_data]
    args += list(extra)
    return " ".join(shlex.quote(a) for a in args)


def _pop_options(
    argv: list[str], names: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Take ``--name value`` / ``--name=value`` for each of ``names`` (name -> default) out of ``argv``."""
    found, rest, i = dict(names), [], 0
    while i < len(argv):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name in names:
            if "=" in arg:
                found[name] = arg.split("=", 1)[1]
            elif i + 1 < len(argv):
                found[name] = argv[i + 1]
                i += 1
            else:
                raise SystemExit(f"{name} needs a value")
        else:
            rest.append(arg)
        i += 1
    return found, rest


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m gaplab.data.captions --caption-keep {full,half,quarter} [--caption-mode span|first]
    [--caption-seed N] <open_clip_train arguments>``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, rest = _pop_options(
        argv,
        {"--caption-keep": "full", "--caption-mode": "span", "--caption-seed": "0"},
    )
    keep = opts["--caption-keep"]
    if keep not in CAPTION_KEEP:
        try:
            keep = float(keep)
        except ValueError:
            raise SystemExit(
                f"--caption-keep {keep!r}: choose full, half, quarter or a fraction in (0, 1]"
            ) from None
    mode = opts["--caption-mode"]
    try:
        seed = int(opts["--caption-seed"])
    except ValueError:
        raise SystemExit(
            f"--caption-seed {opts['--caption-seed']!r}: give an integer"
        ) from None
    try:
        TruncatingTokenizer(None, keep, mode=mode, seed=seed)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    import open_clip_train.main as oc_main  # optional extra: open_clip_train

    with patched_open_clip_train(keep, mode=mode, seed=seed):
        oc_main.main(rest)


if __name__ == "__main__":  # pragma: no cover
    main()
