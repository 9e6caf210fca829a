"""Image and text embeddings of a data set under an open_clip model, cached on disk by chunk.

An entry is a folder named by a hash of what determines the embeddings: the model, its weights (tag or the
checkpoint's SHA-256), what is encoded (for images, each file's resolved path, size and modification time, or
an array row's bytes; for texts, the texts themselves) and a format version. Its
``meta.json`` says in words what it holds; each chunk of :data:`CHUNK` rows is its own file, written
atomically once computed. An interrupted encoding therefore resumes at the first missing chunk, and a chunk
that cannot be read (or has the wrong shape) is computed again. Files are loaded with ``weights_only=True``.

The cache lives in ``$GAPLAB_EMBED_CACHE``, by default the user cache folder (``.../gaplab/embeddings``),
apart from the run cache: embeddings of a real model are large and belong to one machine's data paths.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import platformdirs
import torch
from tqdm.auto import tqdm

from gaplab.progress import progress_bars
from gaplab.storage import CacheWarning, atomic_save, atomic_write_json
from gaplab.training.precision import choose_precision

__all__ = [
    "ENV",
    "CHUNK",
    "embed_cache_dir",
    "entry_key",
    "encode_images",
    "encode_texts",
    "class_embeddings",
    "template_strings",
]

ENV = "GAPLAB_EMBED_CACHE"
#: rows per cached chunk: small enough that an interruption loses little, large enough to keep files few
CHUNK = 1024
#: 2: images are keyed by their files (path, size, modification time), not by their names
_VERSION = 2


def embed_cache_dir() -> Path:
    env = os.environ.get(ENV, "").strip()
    if env:
        return Path(env).expanduser().absolute()

    return Path(platformdirs.user_cache_dir("gaplab")) / "embeddings"


def _digest(items) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(str(item).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def entry_key(loaded, what: str, items) -> str:
    """The cache key of encoding ``items`` (image ids or texts) as ``what`` under ``loaded``."""
    return _digest([_VERSION, loaded.name, loaded.weights, what, _digest(items)])[:24]


def _load_chunk(path: Path, rows: int, digest: str):
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        emb = blob["emb"]
        if blob.get("items") != digest or emb.ndim != 2 or emb.shape[0] != rows:
            raise ValueError("contents do not match the entry")
        return emb.float().numpy()
    except Exception as exc:  # noqa: BLE001 - any unreadable chunk is recomputed
        warnings.warn(
            f"embedding cache chunk {path} is unreadable ({type(exc).__name__}: {exc}); computing it again",
            CacheWarning,
            stacklevel=3,
        )
        return None


def _open_cache(folder: Path, loaded, what: str, n: int, describe: dict) -> bool:
    """Make the cache folder of one encoding and say what it holds (meta.json); False, with a warning, when
    it cannot be written, so that the encoding goes on without it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": loaded.name,
            "pretrained": loaded.pretrained,
            "weights": loaded.weights,
            "what": what,
            "rows": n,
            "chunk": CHUNK,
            "version": _VERSION,
            **describe,
        }
        if not (folder / "meta.json").is_file():
            atomic_write_json(folder / "meta.json", meta)
    except OSError as exc:
        warnings.warn(
            f"embedding cache {folder} cannot be written ({exc}); encoding without it",
            CacheWarning,
            stacklevel=4,
        )
        return False
    return True


def _encode_cached(
    loaded,
    what: str,
    items: list,
    describe: dict,
    encode_batch,
    *,
    batch_size: int,
    cache: bool,
    progress: bool,
    identity: list | None = None,
) -> np.ndarray:
    n = len(items)
    if n == 0:
        raise ValueError(f"nothing to encode: the list of {what} is empty")
    # what the key is made of: by default the items themselves (texts); for images, what
    # each file is (see ImageList.fingerprints), never only its name
    identity = items if identity is None else identity
    if len(identity) != n:
        raise ValueError(f"{len(identity)} fingerprints for {n} {what}")
    key = entry_key(loaded, what, identity)
    folder = embed_cache_dir() / key
    usable = cache and _open_cache(folder, loaded, what, n, describe)
    bounds = [(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
    parts: list[np.ndarray] = []
    bar = None
    if progress_bars(progress):
        bar = tqdm(
            total=n,
            desc=f"encoding {what} ({loaded.name})",
            unit=what.rstrip("s") or "row",
            file=sys.stderr,
            leave=False,
        )
    try:
        for c, (lo, hi) in enumerate(bounds):
            path = folder / f"chunk-{c:06d}.pt"
            digest = _digest(identity[lo:hi])
            got = (
                _load_chunk(path, hi - lo, digest)
                if usable and path.is_file()
                else None
            )
            if got is None:
                got = np.concatenate(
                    [
                        encode_batch(items[s : min(s + batch_size, hi)])
                        for s in range(lo, hi, batch_size)
                    ]
                )
                if usable:
                    try:
                        atomic_save(
                            {"emb": torch.from_numpy(got), "items": digest}, path
                        )
                    except OSError as exc:
                        warnings.warn(
                            f"could not store {path}: {exc}", CacheWarning, stacklevel=3
                        )
            parts.append(got)
            if bar is not None:
                bar.update(hi - lo)
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(parts).astype(np.float32, copy=False)


def _autocast(device: torch.device):
    prec = choose_precision(device)
    return torch.autocast(device.type, dtype=prec.dtype, enabled=prec.dtype is not None)


def encode_images(
    loaded,
    images,
    *,
    describe: dict | None = None,
    batch_size: int = 64,
    workers: int = 4,
    cache: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """(N, d) float32 image embeddings (not normalised) of an :class:`~gaplab.zoo.datasets.ImageList`."""
    ids = list(images.ids())
    index = {item: i for i, item in enumerate(ids)}
    pool = ThreadPoolExecutor(max(1, workers))

    @torch.no_grad()
    def batch(chunk_ids):
        # decoding and resizing in threads keeps the accelerator fed; PIL releases the GIL while it works
        pixels = list(
            pool.map(lambda item: loaded.preprocess(images[index[item]]), chunk_ids)
        )
        with _autocast(loaded.device):
            out = loaded.model.encode_image(torch.stack(pixels).to(loaded.device))
        return out.float().cpu().numpy()

    try:
        return _encode_cached(
            loaded,
            "images",
            ids,
            describe or {},
            batch,
            batch_size=batch_size,
            cache=cache,
            progress=progress,
            identity=images.fingerprints(),
        )
    finally:
        pool.shutdown()


def encode_texts(
    loaded,
    texts,
    *,
    describe: dict | None = None,
    batch_size: int = 256,
    cache: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """(N, d) float32 text embeddings (not normalised) of a list of strings."""
    texts = [str(t) for t in texts]

    @torch.no_grad()
    def batch(chunk):
        with _autocast(loaded.device):
            out = loaded.model.encode_text(loaded.tokenizer(chunk).to(loaded.device))
        return out.float().cpu().numpy()

    return _encode_cached(
        loaded,
        "texts",
        texts,
        describe or {},
        batch,
        batch_size=batch_size,
        cache=cache,
        progress=progress,
    )


def template_strings(templates) -> list[str]:
    """Prompt templates as strings with ``{}`` for the class name (open_clip's templates are functions)."""
    out = []
    for t in templates:
        s = t("{}") if callable(t) else str(t)
        if "{}" not in s:
            raise ValueError(f"prompt template {s!r} has no '{{}}' for the class name")
        out.append(s)
    if not out:
        raise ValueError("no prompt templates given")
    return out


def class_embeddings(
    loaded, classnames, templates, *, cache: bool = True, progress: bool = True
) -> np.ndarray:
    """(C, d) zero-shot class embeddings: per class, the mean of its normalised prompt embeddings over the
    template ensemble, normalised (as ``open_clip.build_zero_shot_classifier`` builds them). The prompts go
    through the embedding cache, so a large ensemble is encoded once."""
    temps = template_strings(templates)
    names = [str(c) for c in classnames]
    if len(names) < 2:
        raise ValueError(
            f"zero-shot classification needs at least two classes; got {names}"
        )
    prompts = [t.format(c) for c in names for t in temps]
    emb = encode_texts(
        loaded,
        prompts,
        describe={"templates": temps[:3], "classes": len(names)},
        cache=cache,
        progress=progress,
    )
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    mean = emb.reshape(len(names), len(temps), -1).mean(axis=1)
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)
