"""A model's modality gap, object bias and performance on real data: what ``gaplab report`` prints.

Every number is a gaplab.metrics measure of the embeddings, computed as Schrodi et al. (2025) do per data kind
(analysis/gap_precompute.py and analysis/object_bias_precompute.py in lmb-freiburg/two-effects-one-trigger):

* caption data (COCO, a CSV): images against their captions, several captions per image; L2M over all images
  and all captions, L2I and RMG over the matched (image, caption) pairs; retrieval R@1 both ways.
* class data (class folders, CIFAR): images against the class text embeddings (a prompt-template ensemble);
  each image is matched with its class's embedding; zero-shot accuracy.
* attribute data (MIT-States, UT-Zappos): images against the prompt "an image of a {attribute} {object}" of
  their own pair; MOAD of the images and of those texts; zero-shot accuracy of the attribute ("an image of a
  {attribute} object") and of the object ("image of a {object}"), the authors' prompts.

The logits' entropy uses the model's own logit scale (100 for precomputed embeddings unless given).
"""

from __future__ import annotations

import math
import time
import zipfile
from pathlib import Path

import numpy as np

from gaplab import metrics as M
from gaplab.metrics.closing import closing_table
from gaplab.metrics.entropy import logits_entropy
from gaplab.storage import atomic_write_json

__all__ = [
    "TEMPLATES",
    "gap_measures",
    "measure_captions",
    "measure_classes",
    "measure_attributes",
    "report",
    "report_embeddings",
    "format_table",
    "format_closing",
    "weights_source",
    "RANDOM_WEIGHTS",
    "DEFAULT_LOGIT_SCALE",
]

#: the logit scale of CLIP after training (its cap), used for precomputed embeddings
DEFAULT_LOGIT_SCALE = 100.0
#: what the report says of a model measured without --pretrained
RANDOM_WEIGHTS = "random initialisation (no --pretrained given)"
#: hex digits of a checkpoint's SHA-256 the printed table shows (report.json has all)
SHORT_SHA = 12
#: a held-out split of each side needs a few rows (gap_measures)
MIN_SEPARABILITY_ROWS = 4
#: how many of the largest mean-difference dimensions the report lists
TOP_DIMS = 5
_ENTROPY_BLOCK = 512


def _templates(name: str) -> list:
    from open_clip import zero_shot_metadata as z  # heavy: open_clip

    return {
        "openai": list(z.OPENAI_IMAGENET_TEMPLATES),
        "simple": list(z.SIMPLE_IMAGENET_TEMPLATES),
        "single": ["a photo of a {}."],
    }[name]


#: prompt-template ensembles for class data: OpenAI's 80 ImageNet templates, open_clip's 2 simple ones, or one
TEMPLATES = ("openai", "simple", "single")


def _entropy(img, txt, scale: float) -> float:
    """Mean entropy over image rows, a block of rows at a time (COCO has 25,000 captions per row)."""
    x = np.asarray(img)
    weights = [
        min(_ENTROPY_BLOCK, len(x) - s) for s in range(0, len(x), _ENTROPY_BLOCK)
    ]
    parts = [
        logits_entropy(x[s : s + _ENTROPY_BLOCK], txt, scale)
        for s in range(0, len(x), _ENTROPY_BLOCK)
    ]
    return float(np.average(parts, weights=weights))


def gap_measures(
    img, txt, pairs=None, *, logit_scale: float = DEFAULT_LOGIT_SCALE, seed: int = 0
) -> dict:
    """The gap measures every data kind shares (``pairs``: (P, 2) matched rows; default row i with row i)."""
    l2m = M.l2m(img, txt)
    return {
        "n": int(len(img)),
        "n_texts": int(len(txt)),
        "l2m": l2m,
        "l2i": M.l2i(img, txt, pairs),
        "rmg": M.rmg(img, txt, pairs),
        # a held-out split needs a few rows on each side; tiny sets report None rather than fail
        "linear_separability": M.linear_separability(img, txt, seed=seed)
        if min(len(img), len(txt)) >= MIN_SEPARABILITY_ROWS
        else None,
        "top_dims": [int(d) for d in M.top_gap_dimensions(img, txt, TOP_DIMS)],
        # identical means leave no gap to share out: None, not a failed report
        "gap_share_top2": M.gap_share(img, txt, 2) if l2m > 0 else None,
        "logits_entropy": _entropy(img, txt, logit_scale),
        "logit_scale": float(logit_scale),
    }


def measure_captions(
    img, txt, pairs=None, *, logit_scale: float = DEFAULT_LOGIT_SCALE
) -> dict:
    out = {"kind": "captions", **gap_measures(img, txt, pairs, logit_scale=logit_scale)}
    out["i2t_r1"] = M.recall_at_k(img, txt, 1, "i2t", pairs)
    out["t2i_r1"] = M.recall_at_k(img, txt, 1, "t2i", pairs)
    return out


def measure_classes(
    img, class_txt, labels, *, logit_scale: float = DEFAULT_LOGIT_SCALE
) -> dict:
    labels = np.asarray(labels)
    pairs = np.stack([np.arange(len(labels)), labels], axis=1)
    out = {
        "kind": "classes",
        "classes": int(len(class_txt)),
        **gap_measures(img, class_txt, pairs, logit_scale=logit_scale),
    }
    out["zero_shot_acc"] = M.zero_shot_accuracy(img, class_txt, labels)
    return out


def measure_attributes(
    img,
    matching_txt,
    attr_txt,
    obj_txt,
    attr_labels,
    obj_labels,
    *,
    logit_scale: float = DEFAULT_LOGIT_SCALE,
) -> dict:
    out = {
        "kind": "attributes",
        "attributes": int(len(attr_txt)),
        "objects": int(len(obj_txt)),
        **gap_measures(img, matching_txt, logit_scale=logit_scale),
    }
    out["moad_image"] = M.moad(img, obj_labels, attr_labels)
    out["moad_text"] = M.moad(matching_txt, obj_labels, attr_labels)
    out["object_acc"] = M.zero_shot_accuracy(img, obj_txt, obj_labels)
    out["attribute_acc"] = M.zero_shot_accuracy(img, attr_txt, attr_labels)
    return out


def _describe(data) -> dict:
    return {"data": data.kind, "root": str(data.root), "split": data.split}


def measure_data(
    loaded,
    data,
    *,
    templates: str = "openai",
    batch_size: int = 64,
    cache: bool = True,
    closing: bool = False,
    progress: bool = True,
    with_embeddings: bool = False,
) -> dict:
    """Encode ``data`` (a gaplab.zoo.datasets reader's result) under ``loaded`` and measure it. ``closing``:
    for attribute data also closing the gap with the mean gap vector and ideal words
    (:func:`gaplab.metrics.closing.closing_table`), which encodes every attribute-object prompt."""
    # lazy, both: encoding needs the models extra; the measures run on the core install
    from gaplab.zoo import datasets as D
    from gaplab.zoo.encode import class_embeddings, encode_images, encode_texts  # lazy

    kw = {"cache": cache, "progress": progress}
    img = encode_images(
        loaded, data.images, describe=_describe(data), batch_size=batch_size, **kw
    )
    scale = loaded.logit_scale
    emb: dict = {"image": img}
    if isinstance(data, D.CaptionData):
        txt = encode_texts(loaded, data.captions, describe=_describe(data), **kw)
        out = measure_captions(img, txt, data.pairs, logit_scale=scale)
        emb["text"] = txt
    elif isinstance(data, D.ClassData):
        if templates not in TEMPLATES:
            raise ValueError(
                f"unknown template set {templates!r}; choose one of {', '.join(TEMPLATES)}"
            )
        cls = class_embeddings(loaded, data.classnames, _templates(templates), **kw)
        out = measure_classes(img, cls, data.labels, logit_scale=scale)
        out["templates"] = templates
        emb["classes"] = cls
    elif isinstance(data, D.AttributeData):
        match = encode_texts(
            loaded, data.matching_prompts(), describe=_describe(data), **kw
        )
        attr_txt = encode_texts(
            loaded, [f"an image of a {a} object" for a in data.attrs], **kw
        )
        obj_txt = encode_texts(loaded, [f"image of a {o}" for o in data.objs], **kw)
        out = measure_attributes(
            img,
            match,
            attr_txt,
            obj_txt,
            data.attr_labels,
            data.obj_labels,
            logit_scale=scale,
        )
        emb.update(text=match, attributes=attr_txt, objects=obj_txt)
        if closing:
            prompts = [f"an image of a {a} {o}." for a in data.attrs for o in data.objs]
            comp = encode_texts(loaded, prompts, describe=_describe(data), **kw)
            comp = comp.reshape(len(data.attrs), len(data.objs), -1)
            out["closing"] = closing_table(
                img, data.attr_labels, data.obj_labels, attr_txt, obj_txt, comp
            )
    else:
        raise TypeError(f"cannot measure a {type(data).__name__}")
    out = {"data": data.kind, "root": str(data.root), "split": data.split, **out}
    return (out, emb) if with_embeddings else out


def report(
    model: str,
    pretrained: str | None,
    data_specs,
    *,
    out_dir=None,
    device=None,
    limit: int | None = None,
    templates: str = "openai",
    batch_size: int = 64,
    download: bool = False,
    cache: bool = True,
    closing: bool = False,
    progress: bool = True,
    then=None,
) -> dict:
    """Measure one open_clip model on each data set of ``data_specs`` ("kind:PATH"), each checked before the model
    loads; write ``out_dir/report.json`` when ``out_dir`` is given. ``then(measures, embeddings, data,
    logit_scale)``, when given, replaces each data set's measures (gaplab.zoo.posthoc: after a remedy)."""
    from gaplab.zoo.datasets import load_data  # lazy and first, as in measure_data
    from gaplab.zoo.models import load_model  # lazy: the models extra (torch)

    specs = list(data_specs)
    if not specs:
        raise ValueError("give at least one data set (--data KIND:PATH)")
    sets = [load_data(s, download=download, limit=limit) for s in specs]
    start = time.perf_counter()
    loaded = load_model(model, pretrained, device=device)
    result = {
        "model": model,
        "pretrained": pretrained,
        "weights": loaded.weights,
        "weights_source": weights_source(pretrained, loaded.weights),
        "logit_scale": loaded.logit_scale,
        "device": str(loaded.device),
        "closing": closing,
        "data": {},
    }
    for spec, data in zip(specs, sets):
        measured, emb = measure_data(
            loaded,
            data,
            templates=templates,
            batch_size=batch_size,
            cache=cache,
            closing=closing,
            progress=progress,
            with_embeddings=True,
        )
        measured["spec"] = spec
        if then is not None:
            measured = then(measured, emb, data, loaded.logit_scale)
        result["data"][_unique(result["data"], data.kind)] = measured
    # measured, so that a survey can say how long a model takes on the device it ran on
    result["seconds"] = round(time.perf_counter() - start, 1)
    if out_dir is not None:
        write_report(result, out_dir)
    return result


def weights_source(pretrained: str | None, weights: str) -> dict:
    """What weights were measured, for report.json: ``kind`` (tag, file or random), the tag or the file
    with its full SHA-256, and ``description``, the line the table shows.

    ``weights``: :attr:`gaplab.zoo.models.LoadedModel.weights` (``sha256:<hex>`` for a
    file), so the checkpoint is not hashed twice."""
    if pretrained is None:
        return {"kind": "random", "description": RANDOM_WEIGHTS}
    if weights.startswith("sha256:"):
        digest = weights.split(":", 1)[1]
        path = str(Path(pretrained).expanduser().resolve())
        return {
            "kind": "file",
            "path": path,
            "sha256": digest,
            "description": f"local file {path} (sha256 {digest})",
        }
    return {
        "kind": "tag",
        "tag": pretrained,
        "description": f"open_clip pretrained tag {pretrained}",
    }


def _weights_line(result: dict) -> str:
    src = result.get("weights_source")
    if src is None:  # a report.json written before weights_source existed
        return result.get("pretrained") or RANDOM_WEIGHTS
    if src["kind"] == "file":
        return f"local file {src['path']} (sha256 {src['sha256'][:SHORT_SHA]})"
    if src["kind"] == "random":
        return f"{RANDOM_WEIGHTS}: an untrained model, not a pretrained CLIP"
    return src["description"]


def _unique(existing: dict, name: str) -> str:
    out, i = name, 2
    while out in existing:
        out, i = f"{name}-{i}", i + 1
    return out


def _read_embeddings(p: Path) -> tuple[np.ndarray, np.ndarray]:
    # a cut-off or damaged file fails as a zip, a pickle or a short read: all say the same here
    broken = (ValueError, EOFError, zipfile.BadZipFile, OSError)
    try:
        loaded = np.load(p, allow_pickle=False)
    except broken as exc:
        raise ValueError(
            f"{p} is not a readable .npy or .npz array file "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
        ) from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        img, txt = _npz_pair(p, loaded, broken)
    else:
        img, txt = _npy_pair(p, loaded)
    for name, arr in (("image", img), ("text", txt)):
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(
                f"{p}: '{name}' holds {arr.dtype} values; embeddings must be real numbers"
            )
    return img, txt


def _npz_pair(p: Path, loaded, broken) -> tuple[np.ndarray, np.ndarray]:
    with loaded:
        if not {"image", "text"} <= set(loaded.files):
            raise ValueError(
                f"{p} holds arrays {loaded.files}; expected 'image' and 'text'"
            )
        try:
            img, txt = loaded["image"], loaded["text"]
        except broken as exc:
            raise ValueError(
                f"{p} is damaged: its arrays cannot be read "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
            ) from None
    if img.ndim != 2 or txt.ndim != 2:
        raise ValueError(
            f"{p}: 'image' and 'text' must be (N, d) arrays; got {img.shape} and {txt.shape}"
        )
    if len(img) != len(txt):
        raise ValueError(
            f"{p}: {len(img)} image rows but {len(txt)} text rows; row i of each must be a "
            "matched pair, so the counts must be equal"
        )
    return img, txt


def _npy_pair(p: Path, loaded) -> tuple[np.ndarray, np.ndarray]:
    if loaded.ndim != 3 or loaded.shape[0] != 2:
        raise ValueError(
            f"{p} holds an array of shape {loaded.shape}; expected (2, N, d): image rows, then the "
            "matched text rows"
        )
    return loaded[0], loaded[1]


def report_embeddings(
    path, *, logit_scale: float = DEFAULT_LOGIT_SCALE, out_dir=None, then=None
) -> dict:
    """The report of precomputed embeddings whose rows i are a matched (image, text) pair: a .npy array of
    shape (2, N, d) like the book's shipped ``data/liang2022-embeddings/features_*.npy``, or a .npz file with
    (N, d) arrays ``image`` and ``text``. ``then``: as in :func:`report`, with no data set (None).

    Examples:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "pairs.npz")
        >>> np.savez(path, image=np.tile([1.0, 0], (4, 1)), text=np.tile([0, 1.0], (4, 1)))
        >>> round(report_embeddings(path)["data"]["embeddings"]["l2m"], 4)  # sqrt(2)
        1.4142
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise IsADirectoryError(
            f"embeddings file {p} is a folder; give the .npy or .npz file"
        )
    if not p.is_file():
        raise FileNotFoundError(f"embeddings file {p} does not exist")
    img, txt = _read_embeddings(p)
    measures = {"data": "embeddings", "root": str(p), "split": None}
    measures.update(measure_captions(img, txt, logit_scale=logit_scale))
    if then is not None:
        measures = then(measures, {"image": img, "text": txt}, None, float(logit_scale))
    result = {
        "model": None,
        "pretrained": None,
        "embeddings": str(p),
        "logit_scale": float(logit_scale),
        "data": {"embeddings": measures},
    }
    if out_dir is not None:
        write_report(result, out_dir)
    return result


def write_report(result: dict, out_dir) -> Path:
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.json"
    atomic_write_json(path, result)
    return path


_ROWS = [
    ("n", "images", "{:d}"),
    ("n_texts", "texts", "{:d}"),
    ("l2m", "L2M", "{:.3f}"),
    ("l2i", "L2I", "{:.3f}"),
    ("rmg", "RMG", "{:.3f}"),
    ("linear_separability", "linear separability", "{:.3f}"),
    ("gap_share_top2", "gap share, top 2 dims", "{:.3f}"),
    ("top_dims", "top gap dims", "{}"),
    ("logits_entropy", "logits entropy (nats)", "{:.3f}"),
    ("i2t_r1", "image->text R@1", "{:.3f}"),
    ("t2i_r1", "text->image R@1", "{:.3f}"),
    ("zero_shot_acc", "zero-shot accuracy", "{:.3f}"),
    ("moad_image", "MOAD image", "{:.3f}"),
    ("moad_text", "MOAD text", "{:.3f}"),
    ("object_acc", "object accuracy", "{:.3f}"),
    ("attribute_acc", "attribute accuracy", "{:.3f}"),
]

#: the data each kind of data set is, as the footnotes name it, and its --data kinds
_KIND_OF = {
    "captions": ("caption data", "coco, csv"),
    "classes": ("class data", "folder, cifar10, cifar100"),
    "attributes": ("attribute data", "mitstates, utzappos"),
}
#: the measures taken on one kind of data only, and what a footnote calls them
_ONLY_ON = {
    "i2t_r1": ("retrieval R@1", "captions"),
    "t2i_r1": ("retrieval R@1", "captions"),
    "zero_shot_acc": ("zero-shot accuracy", "classes"),
    "moad_image": ("MOAD, object and attribute accuracy", "attributes"),
    "moad_text": ("MOAD, object and attribute accuracy", "attributes"),
    "object_acc": ("MOAD, object and attribute accuracy", "attributes"),
    "attribute_acc": ("MOAD, object and attribute accuracy", "attributes"),
}


def _why_missing(key: str, label: str, name: str, measures: dict) -> str:
    """Why the cell of measure ``key`` for data set ``name`` is empty."""
    if key not in measures and key in _ONLY_ON:
        what, kind = _ONLY_ON[key]
        data, kinds = _KIND_OF[kind]
        has = _KIND_OF.get(measures.get("kind"), (f"{measures.get('kind')} data",))[0]
        return f"{what}: measured on {data} ({kinds}) only; {name} is {has}"
    if key == "linear_separability":
        return (
            f"linear separability: needs at least {MIN_SEPARABILITY_ROWS} images and "
            f"{MIN_SEPARABILITY_ROWS} texts to hold some of each out; {name} has "
            f"{measures.get('n')} images and {measures.get('n_texts')} texts"
        )
    if key not in measures:
        return f"{label}: not measured on {name} (a report.json of another version)"
    return f"{label}: undefined on {name} (not a number)"


def _header(result: dict) -> list[list[str]]:
    if result.get("embeddings"):
        return [
            ["embeddings", f"{result['embeddings']} (precomputed: no model loaded)"],
            [
                "logit scale",
                f"{result['logit_scale']:.1f} (--logit-scale; default 100)",
            ],
        ]
    return [
        ["model", str(result.get("model"))],
        ["weights", _weights_line(result)],
        ["logit scale", f"{result['logit_scale']:.1f} (the model's own)"],
    ]


def _columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text: the first column to the left, the rest right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in rows
    ]


def format_table(result: dict) -> str:
    """The report as plain text: what was measured (model, weights, logit scale), one
    row per measure and one column per data set, a footnote for every "-" saying why
    that value is missing, and the closing-the-gap tables when there are any.

    Examples:
        >>> data = {"x": {"kind": "captions", "n": 6, "l2m": 0.5}}
        >>> table = format_table({"embeddings": "x.npy", "logit_scale": 100.0, "data": data})
        >>> print("\\n".join(table.splitlines()[3:]))  # below the header: what was measured
        measure      x
        --------------
        images       6
        L2M      0.500
    """
    sets = result["data"]
    names = list(sets)
    rows = [["measure", *names]]
    notes: list[str] = []
    for key, label, fmt in _ROWS:
        if any(key in sets[n] for n in names):
            cells = []
            for n in names:
                v = sets[n].get(key)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    why = _why_missing(key, label, n, sets[n])
                    if why not in notes:
                        notes.append(why)
                    cells.append(f"-[{notes.index(why) + 1}]")
                elif key == "top_dims":
                    cells.append(",".join(str(d) for d in v))
                else:
                    cells.append(fmt.format(v))
            rows.append([label, *cells])
    lines = _columns(rows)
    lines.insert(1, "-" * max(len(line) for line in lines))
    head = [f"{a:<12} {b}" for a, b in _header(result)]
    out = [*head, "", *lines]
    out += [f"[{i}] {why}" for i, why in enumerate(notes, 1)]
    closing = format_closing(result)
    if closing:
        out += ["", closing]
    return "\n".join(out)


#: closing_table's variants as the closing table calls its columns
_CLOSING_COLUMNS = [
    ("attribute", "attribute"),
    ("object", "object"),
    ("attribute_dot", "attribute, dot"),
    ("object_dot", "object, dot"),
]


def format_closing(result: dict) -> str:
    """The ``--closing`` results as plain text: per attribute data set, zero-shot accuracy of attribute
    and object for each way of placing the class vectors; "" when there are none."""
    blocks = []
    for name, measures in result["data"].items():
        table = measures.get("closing")
        if not table:
            continue
        rows = [["class vectors", *(label for _, label in _CLOSING_COLUMNS)]]
        rows += [
            [variant, *(f"{acc[k]:.3f}" for k, _ in _CLOSING_COLUMNS)]
            for variant, acc in table.items()
        ]
        lines = _columns(rows)
        lines.insert(1, "-" * max(len(line) for line in lines))
        blocks.append(
            "\n".join(
                [
                    f"closing the gap on {name}: zero-shot accuracy as the class "
                    "vectors move towards the images",
                    *lines,
                    "attribute, object: by cosine (the usual zero-shot rule); "
                    "', dot': by the raw dot product, as the authors score",
                ]
            )
        )
    if result.get("closing") and not blocks:
        blocks.append(
            "closing the gap (--closing): nothing to close; it is measured on "
            "attribute data ({}) only, and none was given".format(
                _KIND_OF["attributes"][1]
            )
        )
    return "\n\n".join(blocks)
