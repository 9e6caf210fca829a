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

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gaplab.progress import progress_bars

__all__ = [
    "DataError",
    "KINDS",
    "ImageList",
    "CaptionData",
    "ClassData",
    "AttributeData",
    "parse_spec",
    "load_data",
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
_SOURCES = {
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

METADATA_FILE = "metadata_compositional-split-natural.t7"
_DOWNLOADABLE = ("coco", "cifar10", "cifar100")
#: COCO's own archives (https://cocodataset.org/#download)
COCO_URLS = {
    "annotations": "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
    "val2017": "http://images.cocodataset.org/zips/val2017.zip",
    "train2017": "http://images.cocodataset.org/zips/train2017.zip",
}
PAIRS_FOLDER = "compositional-split-natural"
_SPLIT_NAMES = ("train", "val", "test")


def _fail(kind: str, problem: str, path, hint: str | None = None) -> DataError:
    lines = [f"{problem}: {path}", f"expected layout for {kind!r}: {KINDS[kind]}"]
    if hint:
        lines.append(hint)
    elif kind in _SOURCES:
        lines.append(_SOURCES[kind])
    return DataError("\n".join(lines))


# ---------------------------------------------------------------------------------------------------------
# images


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


class _ArrayImages:
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
        if isinstance(self._opener, _ArrayImages):
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


def _image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (sub-folders too, as ImageFolder reads them), in a stable order."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(here) / f for f in sorted(files) if _is_image(f))
    return found


def _rel(path: Path, start: Path) -> str:
    return path.relative_to(start).as_posix()


# ---------------------------------------------------------------------------------------------------------
# results


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


# ---------------------------------------------------------------------------------------------------------
# the entry points


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
            data = _load_coco(root, split)
        elif kind == "csv":
            data = _load_csv(root, split, csv_img_key, csv_caption_key, csv_separator)
        elif kind == "folder":
            data = _load_folder(root, split, classnames)
        elif kind in ("cifar10", "cifar100"):
            data = _load_cifar(kind, root, split, download, classnames)
        else:
            data = _load_attributes(kind, root, split)
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


def _caption_data(
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


def _check_files_exist(
    kind: str, paths: Sequence[Path], where, listed_in, hint: str | None = None
) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise _fail(
            kind,
            f"{len(missing)} of {len(paths)} images listed in {listed_in} are missing "
            f"(e.g. {missing[0]})",
            where,
            hint,
        )


# ---------------------------------------------------------------------------------------------------------
# captions


def _load_coco(path: Path, split: str | None) -> CaptionData:
    import json

    if path.is_file():
        path = (
            path.resolve()
        )  # so parent.parent is the COCO root even for a bare file name
        ann_file = path
        if split is None:
            m = re.fullmatch(r"captions_(.+)\.json", path.name)
            if not m:
                raise _fail(
                    "coco",
                    "cannot tell the split from the captions file name "
                    "(expected captions_<split>.json, or pass split=)",
                    path,
                )
            split = m.group(1)
        root = path.parent.parent
    else:
        split = split or "val2017"
        root = path
        ann_file = path / "annotations" / f"captions_{split}.json"
    if not root.is_dir():
        raise _fail("coco", "no such folder", root)
    if not ann_file.is_file():
        raise _fail("coco", "no captions file", ann_file)
    image_dir = root / split
    if not image_dir.is_dir():
        raise _fail("coco", "no image folder for the split", image_dir)
    try:
        with open(ann_file, encoding="utf-8") as f:
            coco = json.load(f)
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        notes = sorted(
            (a["image_id"], a["id"], a["caption"]) for a in coco["annotations"]
        )
    except (ValueError, KeyError, TypeError) as err:
        raise _fail(
            "coco", f"not a COCO captions file ({type(err).__name__}: {err})", ann_file
        ) from err
    unknown = sorted({i for i, _, _ in notes} - files.keys())
    if unknown:
        raise _fail(
            "coco",
            f"{len(unknown)} captioned image ids are not in the file's image list "
            f"(e.g. {unknown[0]})",
            ann_file,
        )
    # an image without a caption has nothing to be retrieved by, so only captioned images count
    image_ids = sorted({i for i, _, _ in notes})
    if not image_ids:
        raise _fail("coco", "no captioned images in", ann_file)
    row_of = {i: r for r, i in enumerate(image_ids)}
    paths = [image_dir / files[i] for i in image_ids]
    _check_files_exist("coco", paths, image_dir, ann_file.name)
    captions = [str(c).strip() for _, _, c in notes]
    pairs = [(row_of[i], k) for k, (i, _, _) in enumerate(notes)]
    ids = [_rel(p, root) for p in paths]
    return _caption_data(
        "coco", root.resolve(), split, [str(p) for p in paths], ids, captions, pairs
    )


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` through a temporary name, with a progress bar."""
    import sys
    import urllib.request

    from tqdm.auto import tqdm

    part = dest.with_name(dest.name + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=30) as response,
            open(part, "wb") as out,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                file=sys.stderr,
                disable=not progress_bars(),
            ) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        part.replace(dest)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise _fail(
            "coco", f"could not download {url} ({err})", dest.parent, _SOURCES["coco"]
        ) from err


def download_coco(root: Path, split: str = "val2017") -> None:
    """Fetch what ``root`` lacks of COCO's captions and the ``split`` images (val2017: 0.8 GB, train2017: 18 GB;
    the annotations archive is 0.25 GB). An archive that was downloaded whole is kept until it is unpacked, so an
    interrupted download starts again only for the archive it was in."""
    import zipfile

    if split not in ("val2017", "train2017"):
        raise _fail(
            "coco", f"only val2017 and train2017 can be downloaded, not {split!r}", root
        )
    root.mkdir(parents=True, exist_ok=True)
    wanted = {
        "annotations": root / "annotations" / f"captions_{split}.json",
        split: root / split,
    }
    for name, target in wanted.items():
        if target.exists():
            continue
        archive = root / Path(COCO_URLS[name]).name
        if not archive.is_file():
            _fetch(COCO_URLS[name], archive)
        try:
            with zipfile.ZipFile(archive) as z:
                members = [
                    m for m in z.namelist() if name != "annotations" or "captions_" in m
                ]
                z.extractall(root, members)
        except zipfile.BadZipFile as err:
            archive.unlink(missing_ok=True)
            raise _fail(
                "coco",
                f"{archive.name} was not a whole zip archive (removed; run again)",
                root,
            ) from err
        archive.unlink()


def _csv_separator(path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline()
    # open_clip_train defaults to tabs; a header without one is a comma file
    return "\t" if "\t" in header else ","


def _load_csv(path: Path, split, img_key, caption_key, sep) -> CaptionData:
    import pandas as pd

    if not path.exists():
        raise _fail("csv", "no such file", path)
    if not path.is_file():
        raise _fail("csv", "PATH must be the CSV/TSV file itself, not a folder", path)
    sep = sep or _csv_separator(path)
    try:
        # strings throughout: an empty caption must stay "" rather than turn into NaN
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as err:
        raise _fail(
            "csv",
            f"cannot parse as {'tab' if sep == chr(9) else repr(sep)}-separated ({err})",
            path,
        ) from err
    absent = [k for k in (img_key, caption_key) if k not in df.columns]
    if absent:
        raise _fail(
            "csv",
            f"no column {' or '.join(map(repr, absent))}; the file has columns "
            f"{list(df.columns)} (choose them with csv_img_key / csv_caption_key)",
            path,
        )
    if df.empty:
        raise _fail("csv", "no rows in", path)
    for key, what in ((caption_key, "caption"), (img_key, "image path")):
        empty = np.flatnonzero(df[key].str.strip() == "")
        if len(empty):
            lines = ", ".join(
                str(i + 2) for i in empty[:5]
            )  # +2: 1-based, after the header line
            raise _fail(
                "csv",
                f"{len(empty)} rows have an empty {what} (lines {lines}"
                f"{', ...' if len(empty) > 5 else ''})",
                path,
            )
    base = path.parent
    row_of: dict[str, int] = {}
    pairs = []
    for k, name in enumerate(df[img_key].tolist()):
        pairs.append((row_of.setdefault(name, len(row_of)), k))
    names = list(row_of)
    paths = [
        base / Path(n).expanduser() for n in names
    ]  # an absolute path ignores base
    _check_files_exist("csv", paths, path, path.name)
    captions = [c.strip() for c in df[caption_key].tolist()]
    return _caption_data(
        "csv",
        path.resolve(),
        split or "all",
        [str(p) for p in paths],
        names,
        captions,
        pairs,
    )


# ---------------------------------------------------------------------------------------------------------
# classes


def _load_folder(path: Path, split, classnames) -> ClassData:
    root = path / split if split else path
    if not root.is_dir():
        raise _fail("folder", "no such folder", root)
    classes = sorted(
        d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not classes:
        raise _fail("folder", "no class folders in", root)
    if classnames is not None and len(classnames) != len(classes):
        raise _fail(
            "folder",
            f"{len(classnames)} class names given for {len(classes)} class folders",
            root,
        )
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = _image_files(root / name)
        if not files:
            raise _fail(
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
        images=ImageList([_rel(p, root) for p in paths], [str(p) for p in paths]),
        labels=np.asarray(labels, dtype=np.int64),
        classnames=names,
    )


def _load_cifar(kind, path: Path, split, download, classnames) -> ClassData:
    import torchvision

    split = split or "test"
    if split not in ("train", "test"):
        raise _fail(kind, f"CIFAR has splits 'train' and 'test', not {split!r}", path)
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
        raise _fail(kind, f"no readable {cls.base_folder}/ in", path, hint) from err
    except OSError as err:  # urllib's URLError included: offline with download=True
        if not download:
            raise
        raise _fail(kind, f"download failed ({err})", path, hint) from err
    data = np.asarray(ds.data)
    if classnames is not None and len(classnames) != len(ds.classes):
        raise _fail(
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
        images=ImageList(ids, range(len(data)), _ArrayImages(data)),
        labels=np.asarray(ds.targets, dtype=np.int64),
        classnames=names,
    )


# ---------------------------------------------------------------------------------------------------------
# attributes and objects


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
            raise _fail(
                kind,
                "the natural split's metadata is here but its pair list is not",
                file,
            )
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            words = line.split()
            if not words:
                continue
            if len(words) != 2:
                raise _fail(kind, f"line {n} is not '<attr> <obj>': {line!r} in", file)
            pairs.add((words[0], words[1]))
    return pairs


def _load_attributes(kind: str, path: Path, split) -> AttributeData:
    if not path.is_dir():
        raise _fail(kind, "no such folder", path)
    image_dir = path / "images"
    if not image_dir.is_dir():
        raise _fail(kind, "no images/ folder in", path)
    meta = path / METADATA_FILE
    if meta.is_file():
        split = split or "test"
        if split not in _SPLIT_NAMES:
            raise _fail(
                kind,
                f"the natural split has sets {', '.join(_SPLIT_NAMES)}, not {split!r}",
                path,
            )
        items, vocab = _items_from_metadata(kind, path, meta, split)
    else:
        if split not in (None, "all"):
            raise _fail(
                kind,
                f"split {split!r} needs {METADATA_FILE} (without it every labelled image is "
                "read, as split 'all')",
                path,
            )
        split = "all"
        items, vocab = _items_from_folders(kind, image_dir)
    if not items:
        raise _fail(kind, f"no labelled images for split {split!r} in", image_dir)
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
            raise _fail(
                kind,
                f"folder {folder.name!r} is not named '<attr> <obj>' or '<attr>_<obj>'",
                folder,
            )
        if pair[0] == "adj":  # MIT-States' placeholder for images nobody labelled
            continue
        items += [(_rel(f, image_dir), *pair) for f in _image_files(folder)]
    return items, {(a, o) for _, a, o in items}


def _items_from_metadata(kind: str, path: Path, meta: Path, split: str):
    import torch

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
        raise _fail(
            kind, f"cannot read the split metadata ({type(err).__name__}: {err})", meta
        ) from err
    image_dir = path / "images"
    _check_files_exist(
        kind, [image_dir / rel for rel, _, _ in items], image_dir, meta.name
    )
    return items, pairs
