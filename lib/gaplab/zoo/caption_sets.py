"""Readers of captioned image sets: COCO (and its download) and open_clip_train's CSV/TSV files.

See :mod:`gaplab.zoo.datasets` for the layouts; :func:`gaplab.zoo.datasets.load_data` is the entry point.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gaplab.progress import progress_bars
from gaplab.zoo.images import (
    SOURCES,
    CaptionData,
    caption_data,
    check_files_exist,
    layout_error,
    relative_id,
)

__all__ = ["COCO_URLS", "download_coco", "load_coco", "load_csv"]


#: COCO's own archives (https://cocodataset.org/#download)
COCO_URLS = {
    "annotations": "http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
    "val2017": "http://images.cocodataset.org/zips/val2017.zip",
    "train2017": "http://images.cocodataset.org/zips/train2017.zip",
}


def load_coco(path: Path, split: str | None) -> CaptionData:

    if path.is_file():
        path = (
            path.resolve()
        )  # so parent.parent is the COCO root even for a bare file name
        ann_file = path
        if split is None:
            m = re.fullmatch(r"captions_(.+)\.json", path.name)
            if not m:
                raise layout_error(
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
        raise layout_error("coco", "no such folder", root)
    if not ann_file.is_file():
        raise layout_error("coco", "no captions file", ann_file)
    image_dir = root / split
    if not image_dir.is_dir():
        raise layout_error("coco", "no image folder for the split", image_dir)
    try:
        with open(ann_file, encoding="utf-8") as f:
            coco = json.load(f)
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        notes = sorted(
            (a["image_id"], a["id"], a["caption"]) for a in coco["annotations"]
        )
    except (ValueError, KeyError, TypeError) as err:
        raise layout_error(
            "coco", f"not a COCO captions file ({type(err).__name__}: {err})", ann_file
        ) from err
    unknown = sorted({i for i, _, _ in notes} - files.keys())
    if unknown:
        raise layout_error(
            "coco",
            f"{len(unknown)} captioned image ids are not in the file's image list "
            f"(e.g. {unknown[0]})",
            ann_file,
        )
    # an image without a caption has nothing to be retrieved by, so only captioned images count
    image_ids = sorted({i for i, _, _ in notes})
    if not image_ids:
        raise layout_error("coco", "no captioned images in", ann_file)
    row_of = {i: r for r, i in enumerate(image_ids)}
    paths = [image_dir / files[i] for i in image_ids]
    check_files_exist("coco", paths, image_dir, ann_file.name)
    captions = [str(c).strip() for _, _, c in notes]
    pairs = [(row_of[i], k) for k, (i, _, _) in enumerate(notes)]
    ids = [relative_id(p, root) for p in paths]
    return caption_data(
        "coco", root.resolve(), split, [str(p) for p in paths], ids, captions, pairs
    )


def _fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` through a temporary name, with a progress bar."""

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
        raise layout_error(
            "coco", f"could not download {url} ({err})", dest.parent, SOURCES["coco"]
        ) from err


def download_coco(root: Path, split: str = "val2017") -> None:
    """Fetch what ``root`` lacks of COCO's captions and the ``split`` images (val2017: 0.8 GB, train2017: 18 GB;
    the annotations archive is 0.25 GB). An archive that was downloaded whole is kept until it is unpacked, so an
    interrupted download starts again only for the archive it was in."""

    if split not in ("val2017", "train2017"):
        raise layout_error(
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
            raise layout_error(
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


def load_csv(path: Path, split, img_key, caption_key, sep) -> CaptionData:
    import pandas as pd  # heavy: only CSV captions need pandas

    if not path.exists():
        raise layout_error("csv", "no such file", path)
    if not path.is_file():
        raise layout_error(
            "csv", "PATH must be the CSV/TSV file itself, not a folder", path
        )
    sep = sep or _csv_separator(path)
    try:
        # strings throughout: an empty caption must stay "" rather than turn into NaN
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as err:
        raise layout_error(
            "csv",
            f"cannot parse as {'tab' if sep == chr(9) else repr(sep)}-separated ({err})",
            path,
        ) from err
    absent = [k for k in (img_key, caption_key) if k not in df.columns]
    if absent:
        raise layout_error(
            "csv",
            f"no column {' or '.join(map(repr, absent))}; the file has columns "
            f"{list(df.columns)} (choose them with csv_img_key / csv_caption_key)",
            path,
        )
    if df.empty:
        raise layout_error("csv", "no rows in", path)
    for key, what in ((caption_key, "caption"), (img_key, "image path")):
        empty = np.flatnonzero(df[key].str.strip() == "")
        if len(empty):
            lines = ", ".join(
                str(i + 2) for i in empty[:5]
            )  # +2: 1-based, after the header line
            raise layout_error(
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
    check_files_exist("csv", paths, path, path.name)
    captions = [c.strip() for c in df[caption_key].tolist()]
    return caption_data(
        "csv",
        path.resolve(),
        split or "all",
        [str(p) for p in paths],
        names,
        captions,
        pairs,
    )
