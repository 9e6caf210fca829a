"""Readers for real image data sets, in the layouts their publishers (or open_clip's trainer) use.

Every reader returns images that load lazily, so a large set costs only its file list until it is encoded,
plus the labels or captions that the gap, bias and retrieval metrics need. Kinds and layouts:

``coco`` (:class:`CaptionData`, about five captions per image)
    The COCO root as downloaded from https://cocodataset.org/#download::

        PATH/annotations/captions_val2017.json
        PATH/val2017/000000000139.jpg ...

    ``split`` names the json and the image folder (default ``val2017``). PATH may also be the captions
    json itself; its split then comes from the file name and the images from ``<split>/`` beside
    ``annotations/``.

``csv`` (:class:`CaptionData`)
    One CSV/TSV of (image path, caption) rows, as ``open_clip_train --dataset-type csv`` reads it:
    columns ``filepath`` and ``title``; a tab separator for ``.tsv``, and for other files a tab if the
    header holds one, else a comma. Relative image paths are taken from the CSV's folder. Rows that
    repeat an image path become more captions of one image.

``folder`` (:class:`ClassData`)
    ImageNet-style class folders, ``PATH/<class>/<image files>``; a class name is its folder name with
    underscores read as spaces, unless ``classnames`` are given (in sorted folder order). With
    ``split``, the classes are read from ``PATH/<split>/``.

``cifar10``, ``cifar100`` (:class:`ClassData`)
    torchvision's copies: PATH holds ``cifar-10-batches-py/`` or ``cifar-100-python/``;
    ``download=True`` fetches them. Split ``test`` (default) or ``train``.

``mitstates``, ``utzappos`` (:class:`AttributeData`)
    Attribute-object images as the compositional zero-shot literature arranges them:
    ``PATH/images/<attr> <obj>/<files>`` (MIT-States' release; UT-Zappos50K after
    attributes-as-operators' ``reorganize_utzap.py``, which joins with ``_``). MIT-States' attribute
    ``adj`` marks unlabelled images, which are skipped. When the natural compositional split of
    Purushwalkam et al. (2019) is present, as Schrodi et al. use it::

        PATH/metadata_compositional-split-natural.t7
        PATH/compositional-split-natural/{train,val,test}_pairs.txt

    only its ``split`` (default ``test``) is read, restricted to the listed pairs; otherwise all labelled
    images are (split ``all``). Neither set downloads itself: their licences keep them off mirrors.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gaplab.zoo.attribute_sets import load_attributes
from gaplab.zoo.caption_sets import COCO_URLS, download_coco, load_coco, load_csv
from gaplab.zoo.class_sets import load_cifar, load_folder
from gaplab.zoo.images import (
    KINDS,
    AttributeData,
    CaptionData,
    ClassData,
    DataError,
    ImageList,
)

__all__ = [
    "DataError",
    "KINDS",
    "COCO_URLS",
    "ImageList",
    "CaptionData",
    "ClassData",
    "AttributeData",
    "download_coco",
    "parse_spec",
    "load_data",
]


def parse_spec(spec: str) -> tuple[str, str]:
    """``"coco:/data/coco"`` -> ``("coco", "/data/coco")``; only the first ``:`` splits, so paths may hold more."""
    if not isinstance(spec, str) or ":" not in spec:
        raise DataError(
            f"a data spec is KIND:PATH, e.g. coco:/data/coco or cifar10:~/data; got {spec!r}"
        )
    kind, path = spec.split(":", 1)
    kind = _check_kind(kind.strip().lower())
    if not path.strip():
        raise DataError(
            f"no PATH in data spec {spec!r}; expected {kind}:PATH where {KINDS[kind]}"
        )
    return kind, path


def _check_kind(kind) -> str:
    if kind not in KINDS:
        known = "\n".join(f"  {k}: {v}" for k, v in KINDS.items())
        raise DataError(f"unknown data kind {kind!r}; known kinds:\n{known}")
    return kind


_DOWNLOADABLE = ("coco", "cifar10", "cifar100")


def load_data(
    spec_or_kind: str,
    path: str | os.PathLike | None = None,
    *,
    split: str | None = None,
    download: bool = False,
    limit: int | None = None,
    seed: int = 0,
    classnames: list[str] | None = None,
    csv_img_key: str = "filepath",
    csv_caption_key: str = "title",
    csv_separator: str | None = None,
) -> CaptionData | ClassData | AttributeData:
    """Read a data set named as ``"kind:path"`` or as ``(kind, path)``; see the module docstring for layouts.

    ``limit`` keeps a random ``limit`` images drawn with ``seed`` (in their original order; all captions of
    a kept image stay). Nothing touches the network unless ``download=True``, which COCO (val2017 and
    train2017, with their captions) and CIFAR act on; other kinds ignore it.
    The ``csv_*`` options mirror open_clip_train's ``--csv-img-key``, ``--csv-caption-key`` and
    ``--csv-separator``.
    """
    if path is None:
        kind, path = parse_spec(spec_or_kind)
    else:
        kind = _check_kind(spec_or_kind)
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1
    ):
        raise DataError(
            f"limit must be a whole number of images, at least 1; got {limit!r}"
        )
    if classnames is not None and kind not in ("folder", "cifar10", "cifar100"):
        raise DataError(
            f"classnames only apply to class data (folder, cifar10, cifar100), not {kind!r}"
        )
    root = Path(path).expanduser()
    try:
        if kind == "coco":
            if download and root.suffix != ".json":
                download_coco(root, split or "val2017")
            data = load_coco(root, split)
        elif kind == "csv":
            data = load_csv(root, split, csv_img_key, csv_caption_key, csv_separator)
        elif kind == "folder":
            data = load_folder(root, split, classnames)
        elif kind in ("cifar10", "cifar100"):
            data = load_cifar(kind, root, split, download, classnames)
        else:
            data = load_attributes(kind, root, split)
    except DataError as err:
        # download=True is ignored where nothing can be fetched (one CLI flag serves several sets),
        # but if such a set is missing, say that the flag did not help
        if download and kind not in _DOWNLOADABLE:
            raise DataError(
                f"{err}\n(download=True only fetches {', '.join(_DOWNLOADABLE)}; put {kind} in place "
                "by hand)"
            ) from err
        raise
    return data if limit is None else _subset(data, int(limit), seed)


def _subset(data, limit: int, seed: int):
    n = len(data.images)
    if limit >= n:
        return data
    # sorted, so a subset keeps the set's order and a smaller seed-sharing limit is not reshuffled
    rows = np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
    images = data.images.take(rows.tolist())
    common = dict(kind=data.kind, root=data.root, split=data.split, images=images)
    if isinstance(data, ClassData):
        return ClassData(**common, labels=data.labels[rows], classnames=data.classnames)
    if isinstance(data, AttributeData):
        return AttributeData(
            **common,
            attr_labels=data.attr_labels[rows],
            obj_labels=data.obj_labels[rows],
            attrs=data.attrs,
            objs=data.objs,
        )
    new_image = np.full(n, -1, dtype=np.int64)
    new_image[rows] = np.arange(limit)
    kept = data.pairs[new_image[data.pairs[:, 0]] >= 0]
    caption_rows = np.unique(kept[:, 1])
    new_caption = np.full(len(data.captions), -1, dtype=np.int64)
    new_caption[caption_rows] = np.arange(len(caption_rows))
    pairs = np.stack([new_image[kept[:, 0]], new_caption[kept[:, 1]]], axis=1).astype(
        np.int64
    )
    return CaptionData(
        **common,
        captions=[data.captions[c] for c in caption_rows.tolist()],
        pairs=pairs,
    )
