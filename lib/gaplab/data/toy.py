"""Synthetic embeddings with a known structure, for showing what a metric responds to."""

from __future__ import annotations

import numpy as np

__all__ = ["factor_embeddings"]


def factor_embeddings(
    n: int = 600,
    *,
    object_weight: float = 1.0,
    attribute_weight: float = 1.0,
    n_objects: int = 10,
    n_attribute_values: int = 4,
    dim: int = 64,
    noise: float = 0.5,
    seed: int = 0,
):
    """Embeddings built as ``object_weight * u[object] + attribute_weight * v[attribute] + noise``.

    ``u`` and ``v`` are random unit directions per object and per attribute value. Returns
    ``(embeddings, objects, attributes)``; the weights set how strongly each factor organises the space.
    """
    if n < 2 or dim < 1 or n_objects < 2 or n_attribute_values < 2:
        raise ValueError(
            "need n >= 2, dim >= 1 and at least two objects and two attribute values"
        )
    if min(object_weight, attribute_weight, noise) < 0:
        raise ValueError("weights and noise must be non-negative")
    rng = np.random.default_rng(seed)

    def directions(m):
        d = rng.normal(size=(m, dim))
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    u, v = directions(n_objects), directions(n_attribute_values)
    objects = rng.integers(0, n_objects, n)
    attributes = rng.integers(0, n_attribute_values, n)
    emb = (
        object_weight * u[objects]
        + attribute_weight * v[attributes]
        + noise * rng.normal(size=(n, dim)) / np.sqrt(dim)
    )
    return emb, objects, attributes
