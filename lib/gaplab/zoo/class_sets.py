"""Readers of class-labelled image sets: ImageNet-style class folders and torchvision's CIFAR copies.

See :mod:`gaplab.zoo.datasets` for the layouts; :func:`gaplab.zoo.datasets.load_data` is the entry point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaplab.zoo.images import (
    IMAGE_EXTENSIONS,
    ArrayImages,
    ClassData,
    ImageList,
    image_files,
    layout_error,
    relative_id,
)

__all__ = ["load_cifar", "load_folder"]


def load_folder(path: Path, split, classnames) -> ClassData:
    root = path / split if split else path
    if not root.is_dir():
        raise layout_error("folder", "no such folder", root)
    classes = sorted(
        d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not classes:
        raise layout_error("folder", "no class folders in", root)
    if classnames is not None and len(classnames) != len(classes):
        raise layout_error(
            "folder",
            f"{len(classnames)} class names given for {len(classes)} class folders",
            root,
        )
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = image_files(root / name)
        if not files:
            raise layout_error(
                "folder",
                f"class folder {name!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})",
                root / name,
            )
        paths += files
        labels += [label] * len(files)
    names = (
        list(classnames)
        if classnames is not None
        else [c.replace("_", " ") for c in classes]
    )
    return ClassData(
        kind="folder",
        root=str(root.resolve()),
        split=split or "all",
        images=ImageList(
            [relative_id(p, root) for p in paths], [str(p) for p in paths]
        ),
        labels=np.asarray(labels, dtype=np.int64),
        classnames=names,
    )


def load_cifar(kind, path: Path, split, download, classnames) -> ClassData:
    import torchvision  # heavy: only the CIFAR readers need torchvision

    split = split or "test"
    if split not in ("train", "test"):
        raise layout_error(
            kind, f"CIFAR has splits 'train' and 'test', not {split!r}", path
        )
    cls = (
        torchvision.datasets.CIFAR10
        if kind == "cifar10"
        else torchvision.datasets.CIFAR100
    )
    hint = (
        f"pass download=True (online) to fetch it into PATH, or put torchvision's {cls.base_folder}/ "
        f"folder in PATH"
    )
    try:
        ds = cls(str(path), train=split == "train", download=download)
    except RuntimeError as err:
        if "not found or corrupted" not in str(err):
            raise
        raise layout_error(
            kind, f"no readable {cls.base_folder}/ in", path, hint
        ) from err
    except OSError as err:  # urllib's URLError included: offline with download=True
        if not download:
            raise
        raise layout_error(kind, f"download failed ({err})", path, hint) from err
    data = np.asarray(ds.data)
    if classnames is not None and len(classnames) != len(ds.classes):
        raise layout_error(
            kind,
            f"{len(classnames)} class names given for {len(ds.classes)} classes",
            path,
        )
    names = (
        list(classnames)
        if classnames is not None
        else [c.replace("_", " ") for c in ds.classes]
    )
    ids = [f"{kind}/{split}/{i}" for i in range(len(data))]
    return ClassData(
        kind=kind,
        root=str(path.resolve()),
        split=split,
        images=ImageList(ids, range(len(data)), ArrayImages(data)),
        labels=np.asarray(ds.targets, dtype=np.int64),
        classnames=names,
    )
