"""A word-level tokenizer for MAD captions, laid out like CLIP's (start token, words, end token, padding).

open_clip's text transformer pools at the position of the largest token id (CLIP's end-of-text token), so the
end token has the largest id here too.
"""

from __future__ import annotations

import torch

from gaplab.data.mad import CAPTION_WORDS, FACTORS, caption_vocabulary

__all__ = ["MADTokenizer", "PAD", "START"]

PAD, START = 0, 1


class MADTokenizer:
    """Maps "-"-joined MAD captions to (N, context_length) LongTensors: [START, w1, ..., wk, END, PAD, ...]."""

    def __init__(self, context_length: int = 8):
        self.words = caption_vocabulary()
        self.ids = {w: i + 2 for i, w in enumerate(self.words)}
        self.end = len(self.words) + 2
        self.vocab_size = self.end + 1
        if context_length < 3:
            raise ValueError(f"context_length must be at least 3; got {context_length}")
        self.context_length = context_length
        self._factor_ids: dict[str, list[torch.Tensor]] = {}

    def word_id(self, word: str) -> int:
        if word not in self.ids:
            raise ValueError(
                f"{word!r} is not a MAD caption word; the words are {', '.join(self.words)}"
            )
        return self.ids[word]

    def __call__(self, captions: list[str] | str) -> torch.Tensor:
        if isinstance(captions, str):
            captions = [captions]
        out = torch.full((len(captions), self.context_length), PAD, dtype=torch.long)
        for row, caption in enumerate(captions):
            words = [w for w in caption.split("-") if w]
            if len(words) + 2 > self.context_length:
                raise ValueError(
                    f"caption {caption!r} has {len(words)} words; at most {self.context_length - 2} fit the context"
                )
            ids = [START, *(self.word_id(w) for w in words), self.end]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def factor_word_ids(self, device) -> list[torch.Tensor]:
        """Per MAD factor (in FACTORS order), the word id of each of its values, as a tensor on ``device``.

        Cached per device: the training loop asks for it at every step.
        """
        key = str(torch.device(device))
        if key not in self._factor_ids:
            self._factor_ids[key] = [
                torch.tensor(
                    [self.word_id(CAPTION_WORDS[(f, v)]) for v in values], device=device
                )
                for f, values in FACTORS.items()
            ]
        return self._factor_ids[key]

    def decode(self, tokens: torch.Tensor) -> list[str]:
        inv = {i: w for w, i in self.ids.items()}
        return ["-".join(inv[int(t)] for t in row if int(t) in inv) for row in tokens]


def caption_tokens(
    factors: dict[str, torch.Tensor],
    k: int,
    tokenizer: MADTokenizer,
    generator: torch.Generator,
    object_factor: str = "digit",
    extra: str | None = None,
) -> torch.Tensor:
    """Tokens of random MAD captions for a batch, drawn on the factors' device without a Python loop per sample.

    Each caption holds the ``object_factor``'s word and ``k`` of the other five factors' words, in random order
    (the same distribution as :meth:`gaplab.data.mad.MADSet.captions`). ``extra`` names one more factor that
    every caption must contain besides those (used to build zero-shot prompts for an attribute).
    """
    if object_factor not in FACTORS:
        raise ValueError(
            f"unknown object factor {object_factor!r}; choose one of {', '.join(FACTORS)}"
        )
    names = list(FACTORS)
    if not isinstance(k, int) or not 0 <= k <= len(names) - 1:
        raise ValueError(f"k must be an integer in 0..{len(names) - 1}; got {k!r}")
    device = factors[object_factor].device
    n = factors[object_factor].shape[0]
    word_ids = torch.stack(
        [ids[factors[f]] for f, ids in zip(names, tokenizer.factor_word_ids(device))],
        dim=1,
    )  # (n, 6): the word id of each factor's value
    fixed = [object_factor] + (
        [extra] if extra is not None and extra != object_factor else []
    )
    if extra is not None and extra not in FACTORS:
        raise ValueError(
            f"unknown extra factor {extra!r}; choose one of {', '.join(FACTORS)}"
        )
    if k > len(names) - len(fixed):
        raise ValueError(
            f"k={k} leaves no room: only {len(names) - len(fixed)} factors remain to draw from"
        )
    others = torch.tensor(
        [i for i, f in enumerate(names) if f not in fixed], device=device
    )
    pick = others[
        torch.rand(n, len(others), generator=generator, device=device).argsort(dim=1)[
            :, :k
        ]
    ]
    base = torch.tensor([names.index(f) for f in fixed], device=device).expand(n, -1)
    cols = torch.cat([base, pick], dim=1)
    m = cols.shape[1]
    order = torch.rand(n, m, generator=generator, device=device).argsort(dim=1)
    words = word_ids.gather(1, cols.gather(1, order))
    out = torch.full(
        (n, tokenizer.context_length), PAD, dtype=torch.long, device=device
    )
    out[:, 0] = START
    out[:, 1 : m + 1] = words
    out[:, m + 1] = tokenizer.end
    return out
