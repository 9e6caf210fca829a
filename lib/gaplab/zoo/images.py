"""What a reader of a real data set returns, and how it fails: images that load lazily (:class:`ImageList`),
the three shapes of labelled data (:class:`CaptionData`, :class:`ClassData`, :class:`AttributeData`) and
:class:`DataError`, which names the expected layout of each kind (:data:`KINDS`).

The readers of each layout family live in :mod:`~gaplab.zoo.caption_sets`, :mod:`~gaplab.zoo.class_sets`
and :mod:`~gaplab.zoo.attribute_sets`; :func:`gaplab.zoo.datasets.load_data` picks one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "DataError",
    "KINDS",
    "SOURCES",
    "IMAGE_EXTENSIONS",
    "ArrayImages",
    "ImageList",
    "CaptionData",
    "ClassData",
    "AttributeData",
    "caption_data",
    "check_files_exist",
    "image_files",
    "layout_error",
    "relative_id",
]


class DataError(ValueError):
    """A data set cannot be read: names the problem, the path and the expected layout."""


KINDS: dict[str, str] = {
    "coco": "COCO captions: PATH/annotations/captions_<split>.json and PATH/<split>/ images "
    "(split val2017 by default; --download fetches val2017), "
    "or PATH = the captions json",
    "csv": "a CSV/TSV file with columns filepath,title (open_clip_train's defaults); "
    "relative image paths start at the file's folder",
    "folder": "class folders, ImageNet style: PATH/<class>/<image files>",
    "cifar10": "torchvision's CIFAR-10: PATH holds cifar-10-batches-py/ "
    "(--download fetches it); split test|train",
    "cifar100": "torchvision's CIFAR-100: PATH holds cifar-100-python/ "
    "(--download fetches it); split test|train",
    "mitstates": "MIT-States: PATH/images/<adj noun>/<files>, optionally PATH/metadata_compositional-split-natural.t7 "
    "and PATH/compositional-split-natural/*_pairs.txt",
    "utzappos": "UT-Zappos50K reorganised: PATH/images/<attr>_<obj>/<files>, optionally "
    "PATH/metadata_compositional-split-natural.t7 and PATH/compositional-split-natural/*_pairs.txt",
}


# where to get what cannot be downloaded here, for the error messages
SOURCES = {
    "coco": "get it from https://cocodataset.org/#download (2017 val images and annotations)",
    "mitstates": "get it from http://web.mit.edu/phillipi/Public/states_and_transformations/index.html and put "
    "release_dataset/images/ at PATH/images/; the natural split (metadata_compositional-split-natural.t7, "
    "compositional-split-natural/) is in http://www.cs.cmu.edu/~spurushw/publication/compositional/"
    "compositional_split_natural.tar.gz",
    "utzappos": "get the images from https://vision.cs.utexas.edu/projects/finegrained/utzap50k/ and the natural split "
    "from http://www.cs.cmu.edu/~spurushw/publication/compositional/compositional_split_natural.tar.gz, "
    "then sort the images into PATH/images/<attr>_<obj>/ with reorganize_utzap.py from "
    "https://github.com/Tushar-N/attributes-as-operators",
}


# torchvision's ImageFolder list, so a folder it reads is a folder we read
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)


def layout_error(kind: str, problem: str, path, hint: str | None = None) -> DataError:
    lines = [f"{problem}: {path}", f"expected layout for {kind!r}: {KINDS[kind]}"]
    if hint:
        lines.append(hint)
    elif kind in SOURCES:
        lines.append(SOURCES[kind])
    return DataError("\n".join(lines))


def _open_rgb(path: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except OSError as err:  # PIL's UnidentifiedImageError is an OSError too
        raise DataError(f"cannot read image {path}: {err}") from err
    except Image.DecompressionBombError as err:
        raise DataError(
            f"image {path} is far larger than any photograph ({err}); remove it from the "
            "data folder"
        ) from None


class ArrayImages:
    """Opens rows of an (N, H, W, 3) uint8 array; a class, not a lambda, so DataLoader workers can pickle it."""

    def __init__(self, data: np.ndarray):
        self.data = data

    def __call__(self, row: int) -> Image.Image:
        return Image.fromarray(self.data[row]).convert("RGB")


class ImageList:
    """A lazily loaded, indexable list of RGB images, each with a stable id for cache keys."""

    def __init__(
        self,
        ids: Sequence[str],
        sources: Sequence,
        opener: Callable[..., Image.Image] = _open_rgb,
    ):
        if len(ids) != len(sources):
            raise ValueError(f"{len(ids)} ids for {len(sources)} images")
        self._ids = list(ids)
        self._sources = list(sources)
        self._opener = opener

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i) -> Image.Image:
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise TypeError(
                f"ImageList indices must be integers; got {type(i).__name__}"
            )
        n = len(self._ids)
        if not -n <= i < n:
            raise IndexError(f"image {i} out of range for {n} images")
        return self._opener(self._sources[int(i)])

    def ids(self) -> list[str]:
        return list(self._ids)

    def fingerprints(self) -> list[str]:
        """What each image is, for cache keys: a file's resolved path, size and modification
        time; an array row's bytes (hashed). Two folders whose files share names never share
        a fingerprint, and a file replaced in place gets a new one."""
        if isinstance(self._opener, ArrayImages):
            data = self._opener.data
            return [
                "array:" + hashlib.sha256(np.ascontiguousarray(data[r])).hexdigest()
                for r in self._sources
            ]
        out = []
        for item, source in zip(self._ids, self._sources):
            if isinstance(source, (str, os.PathLike)):
                try:
                    st = os.stat(source)
                except OSError as err:
                    raise DataError(f"cannot read image {source}: {err}") from err
                out.append(
                    f"file:{Path(source).resolve()}:{st.st_size}:{st.st_mtime_ns}"
                )
            else:
                # an opener of the caller's own: its id and source are all that is known
                out.append(f"other:{item}:{source!r}")
        return out

    def take(self, rows: Sequence[int]) -> ImageList:
        """The images at ``rows``, in that order."""
        return ImageList(
            [self._ids[r] for r in rows], [self._sources[r] for r in rows], self._opener
        )

    def __repr__(self) -> str:
        head = ", ".join(self._ids[:2]) + (", ..." if len(self) > 2 else "")
        return f"ImageList({len(self)} images: {head})"


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (sub-folders too, as ImageFolder reads them), in a stable order."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(here) / f for f in sorted(files) if _is_image(f))
    return found


def relative_id(path: Path, start: Path) -> str:
    return path.relative_to(start).as_posix()


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields make == ambiguous
class CaptionData:
    """Images with captions; ``pairs[k] = (image row, caption row)`` lists every matching pair."""

    kind: str
    root: str
    split: str
    images: ImageList
    captions: list[str]
    pairs: np.ndarray


@dataclass(frozen=True, eq=False)
class ClassData:
    """Images with one class label each; ``classnames[labels[i]]`` names image ``i``'s class."""

    kind: str
    root: str
    split: str
    images: ImageList
    labels: np.ndarray
    classnames: list[str]


@dataclass(frozen=True, eq=False)
class AttributeData:
    """Images labelled with an (attribute, object) pair; ``attrs``/``objs`` are display names for prompts."""

    kind: str
    root: str
    split: str
    images: ImageList
    attr_labels: np.ndarray
    obj_labels: np.ndarray
    attrs: list[str]
    objs: list[str]

    def matching_prompts(
        self, template: str = "an image of a {attr} {obj}"
    ) -> list[str]:
        """Each image's own attribute-object prompt: the text side of Schrodi et al.'s MOAD."""
        return [
            template.format(attr=self.attrs[a], obj=self.objs[o])
            for a, o in zip(self.attr_labels.tolist(), self.obj_labels.tolist())
        ]


def caption_data(
    kind, root, split, image_paths, image_ids, captions, pairs
) -> CaptionData:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return CaptionData(
        kind=kind,
        root=str(root),
        split=split,
        images=ImageList(image_ids, image_paths),
        captions=captions,
        pairs=pairs,
    )


def check_files_exist(
    kind: str, paths: Sequence[Path], where, listed_in, hint: str | None = None
) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise layout_error(
            kind,
            f"{len(missing)} of {len(paths)} images listed in {listed_in} are missing "
            f"(e.g. {missing[0]})",
            where,
            hint,
        )
