"""Readers of attribute-object image sets (MIT-States, UT-Zappos50K) as the compositional zero-shot
literature arranges them, with the natural split of Purushwalkam et al. (2019) when present.

See :mod:`gaplab.zoo.datasets` for the layouts; :func:`gaplab.zoo.datasets.load_data` is the entry point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaplab.zoo.images import (
    AttributeData,
    ImageList,
    check_files_exist,
    image_files,
    layout_error,
    relative_id,
)

__all__ = [
    "METADATA_FILE",
    "PAIRS_FOLDER",
    "attr_display",
    "load_attributes",
    "obj_display",
]


METADATA_FILE = "metadata_compositional-split-natural.t7"


PAIRS_FOLDER = "compositional-split-natural"


_SPLIT_NAMES = ("train", "val", "test")


def attr_display(name: str) -> str:
    """``"Faux.Fur"`` -> ``"faux fur"``."""
    return name.lower().replace(".", " ")


def obj_display(kind: str, name: str) -> str:
    """Object names as Schrodi et al. prompt them: UT-Zappos' ``"Boots.Ankle"`` -> ``"ankle boots"``."""
    if kind != "utzappos":
        return name.lower().replace(".", " ")
    parts = name.lower().split(".")
    if len(parts) > 1:
        # "Shoes.Sneakers.and.Athletic.Shoes" already ends in its category; "Boots.Ankle" needs it moved last
        parts = parts[1:] if parts[0] == parts[-1] else parts[1:] + parts[:1]
    return " ".join(parts)


def _split_pair_folder(name: str) -> tuple[str, str] | None:
    # MIT-States joins with a space, reorganize_utzap.py with "_"; attributes never hold either
    for sep in (" ", "_"):
        if sep in name:
            attr, obj = name.split(sep, 1)
            if attr and obj:
                return attr, obj
    return None


def _read_pairs(kind: str, folder: Path) -> set[tuple[str, str]]:
    pairs = set()
    for name in _SPLIT_NAMES:
        file = folder / f"{name}_pairs.txt"
        if not file.is_file():
            raise layout_error(
                kind,
                "the natural split's metadata is here but its pair list is not",
                file,
            )
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            words = line.split()
            if not words:
                continue
            if len(words) != 2:
                raise layout_error(
                    kind, f"line {n} is not '<attr> <obj>': {line!r} in", file
                )
            pairs.add((words[0], words[1]))
    return pairs


def load_attributes(kind: str, path: Path, split) -> AttributeData:
    if not path.is_dir():
        raise layout_error(kind, "no such folder", path)
    image_dir = path / "images"
    if not image_dir.is_dir():
        raise layout_error(kind, "no images/ folder in", path)
    meta = path / METADATA_FILE
    if meta.is_file():
        split = split or "test"
        if split not in _SPLIT_NAMES:
            raise layout_error(
                kind,
                f"the natural split has sets {', '.join(_SPLIT_NAMES)}, not {split!r}",
                path,
            )
        items, vocab = _items_from_metadata(kind, path, meta, split)
    else:
        if split not in (None, "all"):
            raise layout_error(
                kind,
                f"split {split!r} needs {METADATA_FILE} (without it every labelled image is "
                "read, as split 'all')",
                path,
            )
        split = "all"
        items, vocab = _items_from_folders(kind, image_dir)
    if not items:
        raise layout_error(
            kind, f"no labelled images for split {split!r} in", image_dir
        )
    attrs = sorted({a for a, _ in vocab})
    objs = sorted({o for _, o in vocab})
    attr_row = {a: i for i, a in enumerate(attrs)}
    obj_row = {o: i for i, o in enumerate(objs)}
    rels = [rel for rel, _, _ in items]
    return AttributeData(
        kind=kind,
        root=str(path.resolve()),
        split=split,
        images=ImageList(rels, [str(image_dir / r) for r in rels]),
        attr_labels=np.asarray([attr_row[a] for _, a, _ in items], dtype=np.int64),
        obj_labels=np.asarray([obj_row[o] for _, _, o in items], dtype=np.int64),
        attrs=[attr_display(a) for a in attrs],
        objs=[obj_display(kind, o) for o in objs],
    )


def _items_from_folders(kind: str, image_dir: Path):
    items = []
    for folder in sorted(
        d for d in image_dir.iterdir() if d.is_dir() and not d.name.startswith(".")
    ):
        pair = _split_pair_folder(folder.name)
        if pair is None:
            raise layout_error(
                kind,
                f"folder {folder.name!r} is not named '<attr> <obj>' or '<attr>_<obj>'",
                folder,
            )
        if pair[0] == "adj":  # MIT-States' placeholder for images nobody labelled
            continue
        items += [(relative_id(f, image_dir), *pair) for f in image_files(folder)]
    return items, {(a, o) for _, a, o in items}


def _items_from_metadata(kind: str, path: Path, meta: Path, split: str):
    import torch  # heavy: only the natural split's .t7 metadata needs torch

    pairs = _read_pairs(kind, path / PAIRS_FOLDER)
    try:
        # weights_only: the file is plain lists and strings, so refuse anything that would run code
        records = torch.load(meta, weights_only=True)
        items = [
            (r["image"], r["attr"], r["obj"])
            for r in records
            if r["set"] == split
            and r["attr"] != "NA"
            and (r["attr"], r["obj"]) in pairs
        ]
    except Exception as err:  # torch raises several types for a bad file; all mean the same to the user
        raise layout_error(
            kind, f"cannot read the split metadata ({type(err).__name__}: {err})", meta
        ) from err
    image_dir = path / "images"
    check_files_exist(
        kind, [image_dir / rel for rel, _, _ in items], image_dir, meta.name
    )
    return items, pairs
