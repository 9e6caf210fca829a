"""Are the two modalities organised alike? Schrodi et al.'s (2025) organisation test (their Table 2).

For every class c, the classes are ranked twice: by how similar their images are to c's images (the mean
cosine over all image pairs, one image from each class) and by how similar their class prompts are to c's
prompt. The two rankings are compared with a normalised Kendall-tau *distance*: the fraction of class pairs the
two rankings order differently (0: the same order, 1: reversed, 0.5 on average for unrelated orders).
Kendall's tau is ``1 - 2 * distance`` when nothing is tied.

Following the authors' ``analysis/gap_neighborhood_test.py``: the mean cosine between the images of two classes
includes every pair (for a class with itself, each image with itself too), and each row ranks all classes,
the class itself included. Since the embeddings are unit vectors, the mean of the pairwise cosines between two
classes is the dot product of their mean embeddings, which is how it is computed here.

One difference, on purpose: the script hands *rank vectors* (rank of each class) to a distance function that
reads its arguments as *orders* (class at each rank). What it computes is the Kendall distance between the two
inverse permutations, a number that changes when the classes are renumbered. :func:`kendall_distance` is the
standard distance between the two rankings; :func:`script_kendall_distance` reproduces the script's number, so
the two can be shown side by side.
"""

from __future__ import annotations

import numpy as np

from gaplab.metrics.inputs import as_embeddings, as_labels

__all__ = [
    "class_similarities",
    "kendall_distance",
    "script_kendall_distance",
    "row_distances",
    "organisation_test",
    "DEFINITIONS",
]

#: which Kendall distance: the standard one, or the one the authors' script computes
DEFINITIONS = ("standard", "script")


def _vector(x, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(
            f"{name} must be a 1-D array of at least 2 scores; got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} holds NaN or infinite scores")
    return v


def _pair_check(u, v) -> tuple[np.ndarray, np.ndarray]:
    a, b = _vector(u, "u"), _vector(v, "v")
    if a.shape != b.shape:
        raise ValueError(
            f"the two score vectors must have the same length; got {len(a)} and {len(b)}"
        )
    return a, b


def _discordant_share(a: np.ndarray, b: np.ndarray) -> float:
    i, j = np.triu_indices(len(a), k=1)
    discordant = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) < 0
    return float(discordant.mean())


def kendall_distance(u, v) -> float:
    """Share of item pairs that scores ``u`` and ``v`` order differently; a pair tied in either is not counted
    as discordant (but stays in the denominator, n(n-1)/2).

    Examples
    --------
    >>> from gaplab.metrics.organisation import kendall_distance
    >>> round(kendall_distance([0.1, 0.2, 0.4, 0.3], [0.1, 0.3, 0.4, 0.2]), 4)  # 1 of 6 pairs
    0.1667
    >>> kendall_distance([1, 2, 3], [3, 2, 1])
    1.0
    >>> kendall_distance([1, 1, 2], [1, 2, 3])  # the tied pair is not discordant
    0.0
    """
    a, b = _pair_check(u, v)
    return _discordant_share(a, b)


def _ranks(x: np.ndarray) -> np.ndarray:
    # ascending ranks, ties broken by position: what a stable sort of (index, value) pairs gives
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.int64)
    ranks[order] = np.arange(len(x))
    return ranks


def script_kendall_distance(u, v) -> float:
    """The number ``gap_neighborhood_test.py`` prints for scores ``u`` and ``v``: both are turned into rank
    vectors, and the distance is taken between their inverses (the class at each rank), compared by class
    index. Equal to :func:`kendall_distance` when one ranking is the identity order; not in general.

    Examples
    --------
    >>> from gaplab.metrics.organisation import kendall_distance, script_kendall_distance
    >>> u, v = [0.1, 0.2, 0.4, 0.3], [0.1, 0.3, 0.4, 0.2]
    >>> round(kendall_distance(u, v), 4), round(script_kendall_distance(u, v), 4)
    (0.1667, 0.5)
    >>> script_kendall_distance([1, 2, 3, 4], v) == kendall_distance([1, 2, 3, 4], v)
    True
    """
    a, b = _pair_check(u, v)
    return _discordant_share(
        np.argsort(_ranks(a)).astype(float), np.argsort(_ranks(b)).astype(float)
    )


def class_similarities(img, labels, class_text) -> tuple[np.ndarray, np.ndarray]:
    """(image side, text side): two (C, C) matrices of class-to-class similarity.

    ``img``: (N, d) image embeddings; ``labels``: their classes 0..C-1, every class present; ``class_text``:
    (C, d) one text embedding per class (a prompt, or a prompt ensemble). Image side: the mean cosine over all
    pairs of images of the two classes; text side: the cosine of the two class embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.organisation import class_similarities
    >>> img = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    >>> text = np.array([[1.0, 0.2], [0.2, 1.0]])
    >>> image_side, text_side = class_similarities(img, [0, 0, 1, 1], text)
    >>> image_side.round(4)
    array([[0.9 , 0.54],
           [0.54, 0.9 ]])
    >>> text_side.round(4)
    array([[1.    , 0.3846],
           [0.3846, 1.    ]])
    """
    x = as_embeddings(img, "image embeddings", min_rows=2)
    t = as_embeddings(class_text, "class text embeddings", min_rows=2)
    if t.shape[1] != x.shape[1]:
        raise ValueError(
            f"class text embeddings have dimension {t.shape[1]}, the images {x.shape[1]}"
        )
    lab = as_labels(labels, len(x), len(t))
    counts = np.bincount(lab, minlength=len(t))
    if (counts == 0).any():
        missing = np.nonzero(counts == 0)[0]
        raise ValueError(
            f"no image of class {missing[:5].tolist()}: its row of the image side is undefined"
        )
    means = np.zeros((len(t), x.shape[1]))
    np.add.at(means, lab, x)
    means /= counts[:, None]
    return means @ means.T, t @ t.T


def row_distances(
    a, b, *, include_self: bool = True, definition: str = "standard"
) -> np.ndarray:
    """Per class (row), the Kendall distance between the rankings that rows of ``a`` and ``b`` give.

    ``include_self`` keeps the class itself in its row, as the authors' script does (it is then usually first
    in both rankings, which pulls the distance down a little); False ranks only the other classes.
    ``definition`` is one of :data:`DEFINITIONS`.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.organisation import DEFINITIONS, row_distances
    >>> a = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.1], [0.2, 0.1, 1.0]])
    >>> b = np.array([[1.0, 0.1, 0.4], [0.1, 1.0, 0.3], [0.4, 0.3, 1.0]])
    >>> for definition in DEFINITIONS:
    ...     print(definition, row_distances(a, b, definition=definition).round(4))
    standard [0.3333 0.3333 0.    ]
    script [0.3333 1.     0.    ]
    >>> row_distances(a, b, include_self=False)
    array([1., 1., 0.])
    """
    if definition not in DEFINITIONS:
        raise ValueError(
            f"definition must be one of {', '.join(DEFINITIONS)}; got {definition!r}"
        )
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ValueError(
            f"need two square matrices of the same shape; got {a.shape} and {b.shape}"
        )
    n = len(a)
    if n < (2 if include_self else 3):
        raise ValueError(
            f"ranking needs at least {2 if include_self else 3} classes; got {n}"
        )
    dist = kendall_distance if definition == "standard" else script_kendall_distance
    out = np.empty(n)
    for c in range(n):
        keep = np.ones(n, dtype=bool)
        if not include_self:
            keep[c] = False
        out[c] = dist(a[c, keep], b[c, keep])
    return out


def organisation_test(
    img, labels, class_text, *, include_self: bool = True, definition: str = "standard"
) -> dict:
    """Schrodi et al.'s organisation test on one model: per class the Kendall distance between the image-side
    and the text-side ranking of the classes.

    Returns ``distance`` (mean over classes), ``tau`` (mean of ``1 - 2 * distance``), ``per_class`` (the
    distances) and ``classes``.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.organisation import organisation_test
    >>> rng = np.random.default_rng(0)
    >>> img, text = rng.normal(size=(6, 3)), rng.normal(size=(3, 3))
    >>> result = organisation_test(img, [0, 0, 1, 1, 2, 2], text)
    >>> round(result["distance"], 4), round(result["tau"], 4), result["classes"]
    (0.2222, 0.5556, 3)
    >>> result["per_class"].round(4)
    array([0.3333, 0.3333, 0.    ])
    """
    img_side, txt_side = class_similarities(img, labels, class_text)
    per_class = row_distances(
        img_side, txt_side, include_self=include_self, definition=definition
    )
    return {
        "distance": float(per_class.mean()),
        "tau": float((1 - 2 * per_class).mean()),
        "per_class": per_class,
        "classes": len(per_class),
    }
