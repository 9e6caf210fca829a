"""Real image-text embeddings shipped with the book.

The arrays come from Liang et al. (2022), "Mind the Gap", whose public code published the embeddings of
pretrained contrastive models and of their randomly initialised twins on paired data (see
``data/liang2022-embeddings/SOURCE.md``). Each file holds a float32 array of shape (2, N, D): index 0 is the
image side (video, protein sequence, ...), index 1 the paired text; row i of both is a matched pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaplab.paths import data_dir

__all__ = ["EMBEDDING_MODELS", "EmbeddingInfo", "load_embeddings", "embedding_info"]

_FOLDER = "liang2022-embeddings"


@dataclass(frozen=True)
class EmbeddingInfo:
    name: str
    model: str
    pairs: str
    random_init: bool


_BASE = {
    "clip": ("CLIP ViT-B/16 (OpenAI weights)", "MS-COCO val2017 image / caption"),
    "convirt": ("ConVIRT", "medical image / report"),
    "videoclip": ("VideoCLIP", "video / text"),
    "clasp": ("CLASP", "amino-acid sequence / text"),
}

EMBEDDING_MODELS: dict[str, EmbeddingInfo] = {}
for _name, (_model, _pairs) in _BASE.items():
    EMBEDDING_MODELS[_name] = EmbeddingInfo(_name, _model, _pairs, random_init=False)
    EMBEDDING_MODELS[f"{_name}_random"] = EmbeddingInfo(
        f"{_name}_random", f"{_model}, random initialisation", _pairs, random_init=True
    )


def embedding_info(name: str) -> EmbeddingInfo:
    """Describe the shipped embeddings called ``name``."""
    if name not in EMBEDDING_MODELS:
        raise ValueError(
            f"unknown embedding model {name!r}; choose one of {', '.join(EMBEDDING_MODELS)}"
        )
    return EMBEDDING_MODELS[name]


def load_embeddings(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(image_emb, text_emb)``, two float32 arrays of shape (N, D) whose rows i are a matched pair.

    ``name`` is one of :data:`EMBEDDING_MODELS` (``clip``, ``clip_random``, ``convirt``, ...).
    The rows are returned as stored; the metrics normalise them.
    """
    embedding_info(name)  # raises on an unknown name
    path = data_dir() / _FOLDER / f"features_{name}.npy"
    if not path.is_file():
        raise FileNotFoundError(
            f"the shipped embeddings {path} are missing; restore data/{_FOLDER} from the repository"
        )
    arr = np.load(path, allow_pickle=False)
    if arr.ndim != 3 or arr.shape[0] != 2:
        raise ValueError(
            f"{path} holds an array of shape {arr.shape}; expected (2, N, D)"
        )
    return np.ascontiguousarray(arr[0]), np.ascontiguousarray(arr[1])
