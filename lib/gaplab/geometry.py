"""Projections of paired embeddings for looking at the gap."""

from __future__ import annotations

import numpy as np

from gaplab.metrics._inputs import as_pair

__all__ = ["joint_pca"]


def joint_pca(img, txt, n_components: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project normalised image and text embeddings onto the principal components of both sets together.

    Returns ``(img_proj, txt_proj, explained)``: the (N, n_components) projections and the share of the joint
    variance each component explains. Components are signed so that the image mean has a non-negative first
    coordinate, which makes the picture the same on every platform.
    """
    x, y = as_pair(img, txt)
    joint = np.concatenate([x, y])
    centre = joint.mean(axis=0)
    if not 1 <= n_components <= min(joint.shape):
        raise ValueError(f"n_components must lie in 1..{min(joint.shape)}; got {n_components}")
    _, s, vt = np.linalg.svd(joint - centre, full_matrices=False)
    comps = vt[:n_components]
    img_proj = (x - centre) @ comps.T
    sign = np.where(img_proj.mean(axis=0) < 0, -1.0, 1.0)
    comps = comps * sign[:, None]
    explained = s**2 / (s**2).sum()
    return (x - centre) @ comps.T, (y - centre) @ comps.T, explained[:n_components]
