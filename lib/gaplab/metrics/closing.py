"""Closing the gap for zero-shot classification: the mean gap vector and Schrodi et al.'s (2025) ideal words.

Ideal words (the authors' analysis/gap_ideal_words.py, which their README maps to Table 5; after Trager et
al., 2023) replace a class word's embedding by what the class contributes across compositions: with the
normalised text embeddings ``T[a, o]`` of every prompt "an image of a {attribute} {object}.", the ideal word of
attribute a is the mean of ``T[a, :]``, that of object o the mean of ``T[:, o]``, and ``u0`` the mean of all of
``T``. Subtracting ``u0`` removes the component every prompt shares, which is where the text side's offset
from the images lives. The mean gap vector (mean image minus mean text embedding) added to the class vectors
moves them over to the image side.

Classification follows the authors: the class with the largest dot product with the normalised image
embedding, class vectors as constructed (not renormalised, so the construction's magnitudes count).
"""

from __future__ import annotations

import numpy as np

from gaplab.metrics.inputs import as_embeddings, as_labels

__all__ = ["ideal_words", "ideal_images", "dot_accuracy", "closing_table"]


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any() or not np.all(np.isfinite(x)):
        raise ValueError("embeddings must be finite and non-zero")
    return x / norms


def ideal_words(compositions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From (A, O, d) text embeddings of every attribute-object prompt: (attribute words (A, d), object words
    (O, d), u0 (d,)), each a mean of normalised embeddings.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.closing import ideal_words
    >>> compositions = np.array([[[1.0, 0, 0], [0, 1.0, 0]], [[0, 0, 1.0], [0.6, 0.8, 0]]])
    >>> attributes, objects, u0 = ideal_words(compositions)
    >>> attributes.round(4)
    array([[0.5, 0.5, 0. ],
           [0.3, 0.4, 0.5]])
    >>> objects.round(4)
    array([[0.5, 0. , 0.5],
           [0.3, 0.9, 0. ]])
    >>> u0.round(4)
    array([0.4 , 0.45, 0.25])
    """
    t = np.asarray(compositions, dtype=np.float64)
    if t.ndim != 3 or t.shape[0] < 2 or t.shape[1] < 2:
        raise ValueError(
            f"compositions must have shape (attributes >= 2, objects >= 2, d); got {t.shape}"
        )
    t = _unit(t)
    return t.mean(axis=1), t.mean(axis=0), t.mean(axis=(0, 1))


def ideal_images(
    img, attr_labels, obj_labels
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image-side counterpart: per attribute and per object the mean normalised image embedding, and u0 the
    mean of all. Every attribute and object must occur at least once.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.closing import ideal_images
    >>> img = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    >>> attributes, objects, u0 = ideal_images(img, [0, 0, 1, 1], [0, 1, 0, 1])
    >>> attributes.round(4)
    array([[0.9, 0.3],
           [0.3, 0.9]])
    >>> objects.round(4)
    array([[0.5, 0.5],
           [0.7, 0.7]])
    >>> u0.round(4)
    array([0.6, 0.6])
    """
    x = as_embeddings(img, "image embeddings", min_rows=2)
    a, o = np.asarray(attr_labels), np.asarray(obj_labels)
    if a.shape != (len(x),) or o.shape != (len(x),):
        raise ValueError("attr_labels and obj_labels need one integer label per image")

    def means(labels, name):
        count = int(labels.max()) + 1
        missing = sorted(set(range(count)) - set(labels.tolist()))
        if missing:
            raise ValueError(
                f"no image has {name} {missing[:5]}: its ideal image is undefined"
            )
        return np.stack([x[labels == c].mean(axis=0) for c in range(count)])

    return means(a, "attribute"), means(o, "object"), x.mean(axis=0)


def dot_accuracy(img, class_vectors, labels) -> float:
    """Share of images whose largest dot product (normalised image, class vector as given) is their own class.
    Ties count against the image.

    Examples
    --------
    >>> import numpy as np
    >>> from gaplab.metrics.closing import dot_accuracy
    >>> img = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]])
    >>> classes = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> dot_accuracy(img, classes, [0, 0, 1, 1])
    1.0
    >>> dot_accuracy(img, classes, [0, 1, 1, 1])  # the second image is nearer class 0
    0.75
    """
    x = as_embeddings(img, "image embeddings", min_rows=1)
    v = np.asarray(class_vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != x.shape[1] or v.shape[0] < 2:
        raise ValueError(
            f"class_vectors must have shape (classes >= 2, {x.shape[1]}); got {v.shape}"
        )
    lab = as_labels(labels, len(x), len(v))
    score = x @ v.T
    own = score[np.arange(len(x)), lab]
    return float(((score >= own[:, None]).sum(axis=1) == 1).mean())


def closing_table(
    img,
    attr_labels,
    obj_labels,
    attr_words,
    obj_words,
    compositions,
    *,
    gap_images=None,
) -> dict:
    """Object and attribute zero-shot accuracy as the class vectors are moved towards the images.

    ``attr_words``/``obj_words``: text embeddings of the plain class prompts; ``compositions``: (A, O, d) text
    embeddings of every attribute-object prompt; ``gap_images``: the images the mean gap vector is taken from
    (the authors use the training split; default ``img``). Variants: "class prompts", "class prompts + gap",
    "ideal words", "ideal words - u0", "ideal words + gap", "ideal words - u0 + gap".

    Per variant: ``attribute`` and ``object``, accuracy by cosine (class vectors renormalised, the usual
    zero-shot rule); ``attribute_dot`` and ``object_dot``, by the authors' raw dot product. Adding one vector
    to every class vector adds the same amount to each class's dot product with an image, so under the dot
    rule "+ gap" cannot change a prediction; under the cosine rule it can.

    Examples
    --------
    Two attributes (axes 0, 1) and two objects (axes 2, 3); the images lie off along axis 0, the text along
    axis 3:

    >>> import numpy as np
    >>> from gaplab.metrics.closing import closing_table
    >>> rng = np.random.default_rng(3)
    >>> attr, obj = np.repeat([0, 1], 4), np.tile([0, 1], 4)
    >>> e = np.eye(4)
    >>> img = e[attr] + e[2 + obj] + 0.8 * rng.normal(size=(8, 4)) + [2, 0, 0, 0]
    >>> shift = [0, 0, 0, 1.5]
    >>> compositions = e[:2, None] + e[None, 2:] + shift
    >>> table = closing_table(img, attr, obj, e[:2] + shift, e[2:] + shift, compositions)
    >>> for name in ("class prompts", "class prompts + gap"):
    ...     row = table[name]
    ...     print(name, row["attribute"], row["object"], row["attribute_dot"], row["object_dot"])
    class prompts 0.5 0.875 0.5 0.875
    class prompts + gap 0.75 1.0 0.5 0.875
    """
    x = as_embeddings(img, "image embeddings", min_rows=2)
    words_a, words_o = _unit(attr_words), _unit(obj_words)
    ia, io, u0 = ideal_words(compositions)
    if ia.shape[0] != len(words_a) or io.shape[0] != len(words_o):
        raise ValueError(
            "compositions must be (attributes, objects, d) in the order of attr_words and obj_words"
        )
    gx = (
        x if gap_images is None else as_embeddings(gap_images, "gap images", min_rows=1)
    )
    gap = gx.mean(axis=0) - np.concatenate([words_a, words_o]).mean(axis=0)
    variants = {
        "class prompts": (words_a, words_o),
        "class prompts + gap": (words_a + gap, words_o + gap),
        "ideal words": (ia, io),
        "ideal words - u0": (ia - u0, io - u0),
        "ideal words + gap": (ia + gap, io + gap),
        "ideal words - u0 + gap": (ia - u0 + gap, io - u0 + gap),
    }
    return {
        name: {
            "attribute": dot_accuracy(x, _unit(va), attr_labels),
            "object": dot_accuracy(x, _unit(vo), obj_labels),
            "attribute_dot": dot_accuracy(x, va, attr_labels),
            "object_dot": dot_accuracy(x, vo, obj_labels),
        }
        for name, (va, vo) in variants.items()
    }
