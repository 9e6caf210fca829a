"""The data set readers, on tiny copies of every real layout written into tmp_path."""

from __future__ import annotations

import json
import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from gaplab.zoo.datasets import (
    KINDS,
    AttributeData,
    CaptionData,
    ClassData,
    DataError,
    ImageList,
    load_data,
    parse_spec,
)


def _image(path, shade=0, size=8, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(
        mode, (size, size), shade if mode == "L" else (shade, 0, 255 - shade)
    ).save(path)
    return path


# ---------------------------------------------------------------------------------------------------------
# layouts


@pytest.fixture
def coco(tmp_path):
    root = tmp_path / "coco"
    # listed out of id order, and image 7 has no caption: neither may show in the result
    images = [
        {"id": 42, "file_name": "000000000042.jpg"},
        {"id": 7, "file_name": "000000000007.jpg"},
        {"id": 9, "file_name": "000000000009.jpg"},
        {"id": 3, "file_name": "000000000003.png"},
    ]
    notes = [
        (1, 42, "a dog on grass "),
        (2, 9, "a cat"),
        (3, 42, "the dog runs"),
        (4, 3, "a red car\n"),
        (5, 9, "a sleeping cat"),
        (6, 42, "grass and a dog"),
    ]
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "captions_val2017.json").write_text(
        json.dumps(
            {
                "info": {},
                "licenses": [],
                "images": images,
                "annotations": [
                    {"id": i, "image_id": im, "caption": c} for i, im, c in notes
                ],
            }
        )
    )
    for k, im in enumerate(images):
        _image(
            root / "val2017" / im["file_name"], 40 * k, mode="L" if k == 3 else "RGB"
        )
    return root


def test_coco_root(coco):
    d = load_data("coco", coco)
    assert isinstance(d, CaptionData)
    assert (d.kind, d.split) == ("coco", "val2017")
    assert d.images.ids() == [
        "val2017/000000000003.png",
        "val2017/000000000009.jpg",
        "val2017/000000000042.jpg",
    ]
    assert d.captions == [
        "a red car",
        "a cat",
        "a sleeping cat",
        "a dog on grass",
        "the dog runs",
        "grass and a dog",
    ]
    assert d.pairs.dtype == np.int64
    assert d.pairs.tolist() == [[0, 0], [1, 1], [1, 2], [2, 3], [2, 4], [2, 5]]
    im = d.images[0]
    assert (
        isinstance(im, Image.Image) and im.mode == "RGB" and im.size == (8, 8)
    )  # from a greyscale file
    assert d.images[-1].mode == "RGB"


def test_coco_spec_and_json_path(coco):
    by_spec = load_data(f"coco:{coco}")
    by_json = load_data("coco", coco / "annotations" / "captions_val2017.json")
    assert by_json.split == "val2017"
    assert by_json.images.ids() == by_spec.images.ids()
    assert by_json.captions == by_spec.captions
    assert by_json.root == by_spec.root


def test_coco_errors(coco, tmp_path):
    with pytest.raises(
        DataError, match=r"no such folder.*\n.*annotations/captions_<split>\.json"
    ):
        load_data("coco", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"no captions file.*captions_train2017\.json"):
        load_data("coco", coco, split="train2017")
    assert (
        len(load_data("coco", coco, download=True).images) == 3
    )  # nothing to fetch: the flag is ignored
    (coco / "val2017" / "000000000009.jpg").unlink()
    with pytest.raises(
        DataError,
        match=r"1 of 3 images listed in captions_val2017\.json are missing "
        r"\(e\.g\. .*000000000009\.jpg\)",
    ):
        load_data("coco", coco)
    # the split's folder is there, so download=True leaves it as it is and the missing file is named
    with pytest.raises(DataError, match=r"(?s)missing.*cocodataset\.org") as err:
        load_data("coco", coco, download=True)
    assert "only fetches" not in str(err.value)


@pytest.fixture
def captions_tsv(tmp_path):
    folder = tmp_path / "cc"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _image(folder / "img" / name, 50)
    absolute = _image(tmp_path / "elsewhere" / "d.png", 90)
    rows = [
        ("img/a.jpg", "a photo of a"),
        ("img/b.jpg", "a photo of b"),
        ("img/a.jpg", "a again"),
        (str(absolute), "an absolute path"),
        ("img/c.jpg", "c, with a comma"),
    ]
    tsv = folder / "val.tsv"
    tsv.write_text("filepath\ttitle\n" + "".join(f"{p}\t{c}\n" for p, c in rows))
    return tsv


def test_tsv_open_clip_columns(captions_tsv):
    d = load_data(f"csv:{captions_tsv}")
    assert d.kind == "csv" and d.split == "all"
    assert len(d.images) == 4  # a.jpg twice is one image with two captions
    assert d.images.ids()[:2] == ["img/a.jpg", "img/b.jpg"]
    assert d.captions[4] == "c, with a comma"
    assert d.pairs.tolist() == [[0, 0], [1, 1], [0, 2], [2, 3], [3, 4]]
    assert d.images[2].size == (8, 8)


def test_csv_separator_is_detected(tmp_path):
    _image(tmp_path / "x.jpg")
    _image(tmp_path / "y.jpg")
    comma = tmp_path / "pairs.csv"
    comma.write_text('filepath,title\nx.jpg,"a, quoted caption"\ny.jpg,plain\n')
    assert load_data("csv", comma).captions == ["a, quoted caption", "plain"]
    tabbed = (
        tmp_path / "tabbed.csv"
    )  # open_clip_train's default separator is a tab, whatever the suffix
    tabbed.write_text("filepath\ttitle\nx.jpg\ta, b\n")
    assert load_data("csv", tabbed).captions == ["a, b"]
    keys = tmp_path / "keys.csv"
    keys.write_text("image,text\nx.jpg,renamed columns\n")
    d = load_data("csv", keys, csv_img_key="image", csv_caption_key="text", split="val")
    assert d.captions == ["renamed columns"] and d.split == "val"


def test_csv_errors(tmp_path, captions_tsv):
    with pytest.raises(DataError, match="no such file"):
        load_data("csv", tmp_path / "missing.csv")
    with pytest.raises(DataError, match="not a folder"):
        load_data("csv", tmp_path)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("path,caption\nx.jpg,hi\n")
    with pytest.raises(
        DataError,
        match=r"no column 'filepath' or 'title'; the file has columns \['path', 'caption'\]",
    ):
        load_data("csv", wrong)
    _image(tmp_path / "x.jpg")
    blank = tmp_path / "blank.tsv"
    blank.write_text("filepath\ttitle\nx.jpg\tfine\nx.jpg\t\nx.jpg\t  \n")
    with pytest.raises(DataError, match=r"2 rows have an empty caption \(lines 3, 4\)"):
        load_data("csv", blank)
    header_only = tmp_path / "header.tsv"
    header_only.write_text("filepath\ttitle\n")
    with pytest.raises(DataError, match="no rows"):
        load_data("csv", header_only)
    (captions_tsv.parent / "img" / "b.jpg").unlink()
    with pytest.raises(
        DataError, match=r"1 of 4 images listed in val\.tsv are missing"
    ):
        load_data("csv", captions_tsv)


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "imgs"
    for cls, names in {
        "golden_retriever": ["1.JPG", "2.png"],
        "tabby_cat": ["a.jpeg", "b.webp", "c.bmp"],
        "zebra": ["z.jpg"],
    }.items():
        for n in names:
            _image(root / cls / n)
    (root / "zebra" / "notes.txt").write_text("not an image")
    (root / "zebra" / ".hidden.jpg").write_text("not an image either")
    return root


def test_class_folders(class_folders):
    d = load_data("folder", class_folders)
    assert isinstance(d, ClassData)
    assert d.classnames == ["golden retriever", "tabby cat", "zebra"]
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [0, 0, 1, 1, 1, 2]
    assert d.images.ids() == [
        "golden_retriever/1.JPG",
        "golden_retriever/2.png",
        "tabby_cat/a.jpeg",
        "tabby_cat/b.webp",
        "tabby_cat/c.bmp",
        "zebra/z.jpg",
    ]
    assert all(d.images[i].mode == "RGB" for i in range(len(d.images)))
    named = load_data("folder", class_folders, classnames=["dog", "cat", "zebra"])
    assert named.classnames == ["dog", "cat", "zebra"]


def test_class_folders_split_subfolder(tmp_path):
    _image(tmp_path / "imagenet" / "val" / "n01440764" / "x.JPEG")
    d = load_data("folder", tmp_path / "imagenet", split="val", classnames=["tench"])
    assert (
        d.split == "val"
        and d.classnames == ["tench"]
        and d.images.ids() == ["n01440764/x.JPEG"]
    )


def test_class_folder_errors(class_folders, tmp_path):
    with pytest.raises(
        DataError, match=r"no such folder.*\n.*PATH/<class>/<image files>"
    ):
        load_data("folder", tmp_path / "absent")
    (tmp_path / "flat").mkdir()
    _image(tmp_path / "flat" / "loose.jpg")
    with pytest.raises(DataError, match="no class folders"):
        load_data("folder", tmp_path / "flat")
    with pytest.raises(DataError, match="2 class names given for 3 class folders"):
        load_data("folder", class_folders, classnames=["a", "b"])
    (class_folders / "empty_class").mkdir()
    with pytest.raises(DataError, match="class folder 'empty_class' holds no images"):
        load_data("folder", class_folders)


# ---------------------------------------------------------------------------------------------------------
# CIFAR in torchvision's pickle format


def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    # torchvision checks the real files' md5 sums; fakes cannot match them, so trust the files instead
    monkeypatch.setattr(
        torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True
    )
    monkeypatch.setattr(
        torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True
    )
    rng = np.random.default_rng(0)
    pixels = rng.integers(
        0, 256, size=(5, 3 * 32 * 32), dtype=np.uint8
    )  # CIFAR rows: R, G, B planes
    _pickle(
        tmp_path / "cifar-10-batches-py" / "test_batch",
        {"data": pixels, "labels": [3, 0, 9, 3, 1]},
    )
    _pickle(
        tmp_path / "cifar-10-batches-py" / "batches.meta",
        {
            "label_names": [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]
        },
    )
    fine = [f"class_{i:02d}" for i in range(100)]
    fine[4] = "aquarium_fish"
    _pickle(
        tmp_path / "cifar-100-python" / "test",
        {"data": pixels[:3], "fine_labels": [4, 99, 0], "coarse_labels": [1, 2, 3]},
    )
    _pickle(tmp_path / "cifar-100-python" / "meta", {"fine_label_names": fine})
    return tmp_path, pixels


def test_cifar10(cifar_root):
    root, pixels = cifar_root
    d = load_data(f"cifar10:{root}")
    assert isinstance(d, ClassData) and d.split == "test"
    assert d.labels.tolist() == [3, 0, 9, 3, 1]
    assert d.classnames[3] == "cat" and len(d.classnames) == 10
    assert d.images.ids() == [f"cifar10/test/{i}" for i in range(5)]
    im = d.images[1]
    assert im.mode == "RGB" and im.size == (32, 32)
    assert np.array_equal(
        np.asarray(im), pixels[1].reshape(3, 32, 32).transpose(1, 2, 0)
    )
    # already there, so download=True must not reach for the network
    assert (
        load_data("cifar10", root, download=True).labels.tolist() == d.labels.tolist()
    )


def test_cifar100(cifar_root):
    root, _ = cifar_root
    d = load_data("cifar100", root)
    assert d.labels.tolist() == [4, 99, 0]
    assert len(d.classnames) == 100 and d.classnames[4] == "aquarium fish"
    assert d.images.ids()[2] == "cifar100/test/2"


def test_cifar_errors(tmp_path, monkeypatch):
    with pytest.raises(
        DataError, match=r"no readable cifar-10-batches-py/(.|\n)*download=True"
    ):
        load_data("cifar10", tmp_path)
    with pytest.raises(DataError, match="splits 'train' and 'test', not 'val'"):
        load_data("cifar100", tmp_path, split="val")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(
        torchvision.datasets.cifar, "download_and_extract_archive", offline
    )
    with pytest.raises(
        DataError, match=r"download failed(.|\n)*cifar-100-python/ folder in PATH"
    ):
        load_data("cifar100", tmp_path, download=True)


# ---------------------------------------------------------------------------------------------------------
# attribute-object data


@pytest.fixture
def mitstates(tmp_path):
    root = tmp_path / "mit-states"
    for folder, files in {
        "ancient clock": ["1.jpg", "2.jpg"],
        "wet dog": ["3.png"],
        "old Fire.Truck": ["4.jpg"],
        "adj clock": ["5.jpg", "6.jpg"],
    }.items():
        for f in files:
            _image(root / "images" / folder / f)
    (root / "images" / "wet dog" / "Thumbs.db").write_text("")
    return root


def test_mitstates_folders(mitstates):
    d = load_data("mitstates", mitstates)
    assert isinstance(d, AttributeData) and d.split == "all"
    assert d.images.ids() == [
        "ancient clock/1.jpg",
        "ancient clock/2.jpg",
        "old Fire.Truck/4.jpg",
        "wet dog/3.png",
    ]  # "adj" = unlabelled, skipped
    assert d.attrs == ["ancient", "old", "wet"]
    assert d.objs == [
        "fire truck",
        "clock",
        "dog",
    ]  # raw names sorted: Fire.Truck, clock, dog
    assert d.attr_labels.tolist() == [0, 0, 1, 2] and d.obj_labels.tolist() == [
        1,
        1,
        0,
        2,
    ]
    assert d.matching_prompts() == [
        "an image of a ancient clock",
        "an image of a ancient clock",
        "an image of a old fire truck",
        "an image of a wet dog",
    ]
    assert d.matching_prompts("a {obj} that is {attr}")[3] == "a dog that is wet"
    assert d.images[3].mode == "RGB"


def test_mitstates_errors(mitstates, tmp_path):
    with pytest.raises(
        DataError, match=r"no such folder(.|\n)*states_and_transformations"
    ):
        load_data("mitstates", tmp_path / "absent")
    (tmp_path / "bare").mkdir()
    with pytest.raises(
        DataError, match=r"no images/ folder(.|\n)*PATH/images/<adj noun>"
    ):
        load_data("mitstates", tmp_path / "bare")
    with pytest.raises(
        DataError, match=r"split 'test' needs metadata_compositional-split-natural\.t7"
    ):
        load_data("mitstates", mitstates, split="test")
    assert len(load_data("mitstates", mitstates, download=True).images) == 4
    with pytest.raises(
        DataError,
        match=r"(?s)states_and_transformations.*only fetches coco, cifar10, cifar100",
    ):
        load_data("mitstates", tmp_path / "absent", download=True)
    with pytest.raises(DataError, match="classnames only apply"):
        load_data("mitstates", mitstates, classnames=["x"])
    only_unlabelled = tmp_path / "unlabelled"
    _image(only_unlabelled / "images" / "adj dog" / "x.jpg")
    with pytest.raises(DataError, match="no labelled images"):
        load_data("mitstates", only_unlabelled)
    _image(mitstates / "images" / "nospace" / "x.jpg")
    with pytest.raises(DataError, match="'nospace' is not named"):
        load_data("mitstates", mitstates)


@pytest.fixture
def utzappos(tmp_path):
    root = tmp_path / "ut-zap50k"
    # (image, attr, obj, set) as in the natural split's metadata; folders as reorganize_utzap.py makes them
    records = [
        ("Canvas_Boots.Ankle/1.jpg", "Canvas", "Boots.Ankle", "test"),
        (
            "Leather_Shoes.Sneakers.and.Athletic.Shoes/2.jpg",
            "Leather",
            "Shoes.Sneakers.and.Athletic.Shoes",
            "test",
        ),
        ("Faux.Fur_Sandals/3.jpg", "Faux.Fur", "Sandals", "test"),
        ("Canvas_Sandals/4.jpg", "Canvas", "Sandals", "train"),
        ("Leather_Boots.Ankle/5.jpg", "Leather", "Boots.Ankle", "val"),
        ("Leather_Boots.Ankle/6.jpg", "Leather", "Boots.Ankle", "NA"),
        ("NA_Sandals/7.jpg", "NA", "Sandals", "test"),
        ("Wool_Sandals/8.jpg", "Wool", "Sandals", "test"),  # a pair no pair file lists
        ("Canvas_Boots.Ankle/9.jpg", "Canvas", "Boots.Ankle", "test"),
    ]
    for image, *_ in records:
        _image(root / "images" / image)
    torch.save(
        [
            {"image": i, "attr": a, "obj": o, "set": s, "_image": f"x/{i}"}
            for i, a, o, s in records
        ],
        root / "metadata_compositional-split-natural.t7",
    )
    pairs = root / "compositional-split-natural"
    pairs.mkdir()
    (pairs / "train_pairs.txt").write_text("Canvas Sandals\nCanvas Boots.Ankle\n")
    (pairs / "val_pairs.txt").write_text("Leather Boots.Ankle\n")
    (pairs / "test_pairs.txt").write_text(
        "Faux.Fur Sandals\nLeather Shoes.Sneakers.and.Athletic.Shoes\n\n"
    )
    return root


def test_utzappos_natural_split(utzappos):
    d = load_data("utzappos", utzappos)
    assert d.split == "test"
    assert d.images.ids() == [
        "Canvas_Boots.Ankle/1.jpg",
        "Leather_Shoes.Sneakers.and.Athletic.Shoes/2.jpg",
        "Faux.Fur_Sandals/3.jpg",
        "Canvas_Boots.Ankle/9.jpg",
    ]  # metadata order
    # vocabularies: sorted union over the three pair files, whatever the split holds
    assert d.attrs == ["canvas", "faux fur", "leather"]
    assert d.objs == ["ankle boots", "sandals", "sneakers and athletic shoes"]
    assert d.attr_labels.tolist() == [0, 2, 1, 0] and d.obj_labels.tolist() == [
        0,
        2,
        1,
        0,
    ]
    assert d.matching_prompts()[:3] == [
        "an image of a canvas ankle boots",
        "an image of a leather sneakers and athletic shoes",
        "an image of a faux fur sandals",
    ]
    train = load_data("utzappos", utzappos, split="train")
    assert train.images.ids() == ["Canvas_Sandals/4.jpg"] and train.attrs == d.attrs
    assert load_data("utzappos", utzappos, split="val").images.ids() == [
        "Leather_Boots.Ankle/5.jpg"
    ]


def test_utzappos_without_metadata_and_errors(utzappos, tmp_path):
    with pytest.raises(DataError, match="not 'all'"):
        load_data("utzappos", utzappos, split="all")
    (utzappos / "images" / "Faux.Fur_Sandals" / "3.jpg").unlink()
    with pytest.raises(
        DataError,
        match=r"1 of 4 images listed in metadata_compositional-split-natural\.t7 "
        r"are missing(.|\n)*reorganize_utzap",
    ):
        load_data("utzappos", utzappos)
    (utzappos / "compositional-split-natural" / "val_pairs.txt").unlink()
    with pytest.raises(DataError, match="pair list is not"):
        load_data("utzappos", utzappos)
    plain = (
        tmp_path / "plain"
    )  # the brief's space-joined folders, no split files: every image, split "all"
    _image(plain / "images" / "Suede Boots.Knee.High" / "a.jpg")
    _image(plain / "images" / "Suede Boots.Ankle" / "b.jpg")
    d = load_data("utzappos", plain)
    assert (
        d.split == "all"
        and d.attrs == ["suede"]
        and d.objs == ["ankle boots", "knee high boots"]
    )
    assert d.obj_labels.tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------------------
# specs, limits, ids


def test_parse_spec():
    assert parse_spec("coco:/data/coco") == ("coco", "/data/coco")
    assert parse_spec("CIFAR10:C:\\data") == (
        "cifar10",
        "C:\\data",
    )  # only the first ':' splits
    with pytest.raises(DataError, match=r"KIND:PATH, e\.g\. coco:/data/coco"):
        parse_spec("/data/coco")
    with pytest.raises(
        DataError, match=r"unknown data kind 'imagenet'(.|\n)*  cifar100: "
    ):
        parse_spec("imagenet:/data")
    with pytest.raises(DataError, match="no PATH"):
        parse_spec("coco:")
    with pytest.raises(DataError, match="unknown data kind 'flickr'"):
        load_data("flickr", "/data")
    assert set(KINDS) == {
        "coco",
        "csv",
        "folder",
        "cifar10",
        "cifar100",
        "mitstates",
        "utzappos",
    }
    assert all("\n" not in line for line in KINDS.values())


def test_limit_is_seeded_and_sorted(class_folders):
    full = load_data("folder", class_folders).images.ids()
    a = load_data("folder", class_folders, limit=3, seed=5)
    b = load_data("folder", class_folders, limit=3, seed=5)
    assert a.images.ids() == b.images.ids() and len(a.images) == 3
    assert a.images.ids() == [
        i for i in full if i in a.images.ids()
    ]  # the set's own order
    assert a.labels.tolist() == [
        ["golden_retriever", "tabby_cat", "zebra"].index(i.split("/")[0])
        for i in a.images.ids()
    ]
    assert (
        len(
            {
                tuple(load_data("folder", class_folders, limit=3, seed=s).images.ids())
                for s in range(8)
            }
        )
        > 1
    )
    assert load_data("folder", class_folders, limit=100).images.ids() == full
    for bad in (0, -2, 1.5, True):
        with pytest.raises(DataError, match="limit must be"):
            load_data("folder", class_folders, limit=bad)


def test_limit_keeps_all_captions_of_kept_images(coco):
    full = load_data("coco", coco)
    owner = {full.captions[c]: full.images.ids()[i] for i, c in full.pairs.tolist()}
    for seed in range(4):
        d = load_data("coco", coco, limit=2, seed=seed)
        ids = d.images.ids()
        assert len(ids) == 2
        assert sorted(d.captions) == sorted(c for c, i in owner.items() if i in ids)
        assert sorted(d.pairs[:, 1].tolist()) == list(range(len(d.captions)))
        assert all(owner[d.captions[c]] == ids[i] for i, c in d.pairs.tolist())


def test_limit_on_attributes(utzappos):
    d = load_data("utzappos", utzappos, limit=2, seed=1)
    full = load_data("utzappos", utzappos)
    rows = [full.images.ids().index(i) for i in d.images.ids()]
    assert d.attr_labels.tolist() == full.attr_labels[rows].tolist()
    assert d.obj_labels.tolist() == full.obj_labels[rows].tolist()
    assert d.attrs == full.attrs and len(d.matching_prompts()) == 2


def test_image_list(tmp_path):
    paths = [_image(tmp_path / f"{k}.png", 10 * k) for k in range(3)]
    images = ImageList(["0", "1", "2"], [str(p) for p in paths])
    assert len(images) == 3 and images.ids() == ["0", "1", "2"]
    assert images[-1].getpixel((0, 0)) == (20, 0, 235)
    assert images.take([2, 0]).ids() == ["2", "0"]
    with pytest.raises(IndexError):
        images[3]
    with pytest.raises(TypeError):
        images["0"]
    (tmp_path / "bad.jpg").write_text("not a jpeg")
    with pytest.raises(DataError, match="cannot read image .*bad.jpg"):
        ImageList(["bad"], [str(tmp_path / "bad.jpg")])[0]


def test_coco_download_fetches_and_unpacks_the_archives(coco, tmp_path, monkeypatch):
    import shutil
    import zipfile

    from gaplab.zoo import caption_sets, datasets

    # COCO's archives, made from the fixture's files: the captions zip also holds a file that must not be unpacked
    zips = {}
    with zipfile.ZipFile(tmp_path / "ann.zip", "w") as z:
        z.write(
            coco / "annotations" / "captions_val2017.json",
            "annotations/captions_val2017.json",
        )
        z.writestr("annotations/instances_val2017.json", "{}")
    zips[datasets.COCO_URLS["annotations"]] = tmp_path / "ann.zip"
    with zipfile.ZipFile(tmp_path / "val.zip", "w") as z:
        for f in (coco / "val2017").iterdir():
            z.write(f, f"val2017/{f.name}")
    zips[datasets.COCO_URLS["val2017"]] = tmp_path / "val.zip"
    fetched = []

    def fake_fetch(url, dest):
        fetched.append(url)
        shutil.copy(zips[url], dest)

    monkeypatch.setattr(caption_sets, "_fetch", fake_fetch)
    root = tmp_path / "fresh"
    d = load_data("coco", root, download=True)
    assert len(d.images) == 3 and len(d.captions) == 6
    assert not (root / "annotations" / "instances_val2017.json").exists()
    assert sorted(p.name for p in root.iterdir()) == [
        "annotations",
        "val2017",
    ]  # archives removed
    load_data("coco", root, download=True)
    assert len(fetched) == 2  # nothing fetched the second time
    with pytest.raises(DataError, match="only val2017 and train2017"):
        load_data("coco", tmp_path / "other", split="test2017", download=True)
