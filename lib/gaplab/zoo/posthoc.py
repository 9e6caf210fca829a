"""``gaplab report --posthoc``: the report of a model's embeddings after a post-hoc remedy of the modality gap.

The remedy (:mod:`gaplab.metrics.remedies`) is fitted on the very embeddings the report measures, each data set
on its own: on the images and the texts measured against them (captions, class embeddings, or the matching
attribute-object prompts). The other text queries of a data set (the attribute and object prompts of attribute
data) are moved with the statistics fitted on its texts, so that images and every text live in the same
remedied space. Every measure is then taken again, and the measures before the remedy are kept beside them:
the report says which remedy it applied and shows retrieval (and zero-shot accuracy) before and after.
"""

from __future__ import annotations

import functools

from gaplab.metrics import remedies as R
from gaplab.zoo.report import (
    DEFAULT_LOGIT_SCALE,
    format_table,
    measure_attributes,
    measure_captions,
    measure_classes,
    report,
    report_embeddings,
    write_report,
)

__all__ = [
    "REMEDIES",
    "remedy_embeddings",
    "posthoc_report",
    "posthoc_report_embeddings",
    "format_posthoc",
]

#: each remedy by its command-line name: the function and what the report says of it
REMEDIES = {
    "center": (
        R.center,
        "each modality's mean embedding subtracted, rows renormalised (C^3's collapse, "
        "Zhang et al. 2024)",
    ),
    "standardise": (
        R.standardise,
        "each modality standardised per dimension (mean 0, standard deviation 1), rows "
        "renormalised (I0T's post-hoc standardisation, An et al. 2025)",
    ),
    "gap-vector": (
        R.remove_gap_vector,
        "each modality moved half the gap vector towards the other, rows renormalised "
        "(Liang et al. 2022's shift at lambda 1/2)",
    ),
}
#: the measures the before-and-after table shows, as the report's table labels them
_COMPARED = [
    ("l2m", "L2M"),
    ("rmg", "RMG"),
    ("i2t_r1", "image->text R@1"),
    ("t2i_r1", "text->image R@1"),
    ("zero_shot_acc", "zero-shot accuracy"),
    ("object_acc", "object accuracy"),
    ("attribute_acc", "attribute accuracy"),
    ("logits_entropy", "logits entropy (nats)"),
]
#: what describes a data set rather than measures it: kept as it is, not compared
_ABOUT = ("data", "root", "split", "spec", "kind", "templates")


def _remedy(name: str):
    if name not in REMEDIES:
        raise ValueError(
            f"unknown post-hoc remedy {name!r}; choose one of {', '.join(REMEDIES)}"
        )
    return REMEDIES[name][0]


def remedy_embeddings(name: str, emb: dict) -> dict:
    """The embeddings of one data set after remedy ``name`` (a key of :data:`REMEDIES`), fitted on them.

    ``emb`` holds ``image`` and the texts they are measured against, ``text`` or ``classes``; any other
    entries (``attributes``, ``objects``) are text queries, moved with the statistics fitted on those texts.

    Examples:
        >>> import numpy as np
        >>> from gaplab.metrics import l2m
        >>> rng = np.random.default_rng(0)
        >>> emb = {"image": rng.normal(size=(20, 4)) + 2, "text": rng.normal(size=(20, 4)) - 2}
        >>> out = remedy_embeddings("center", emb)
        >>> sorted(out)
        ['image', 'text']
        >>> round(l2m(emb["image"], emb["text"]), 3), round(l2m(out["image"], out["text"]), 3)
        (1.859, 0.198)
    """
    remedy = _remedy(name)
    key = "text" if "text" in emb else "classes"
    img, txt = emb["image"], emb[key]
    out = dict(zip(("image", key), remedy(img, txt)))
    for extra in sorted(set(emb) - {"image", key}):
        out[extra] = remedy(img, emb[extra], fit=(img, txt))[1]
    return out


def _remeasure(name: str, before: dict, emb: dict, data, logit_scale: float) -> dict:
    """The measures of one data set after the remedy, with those before it under ``before``. ``data``: the
    data set's reader result (labels, pairs), or None for a file of matched embeddings."""
    after = remedy_embeddings(name, emb)
    kind = before["kind"]
    if kind == "captions":
        pairs = None if data is None else data.pairs
        measures = measure_captions(
            after["image"], after["text"], pairs, logit_scale=logit_scale
        )
    elif kind == "classes":
        measures = measure_classes(
            after["image"], after["classes"], data.labels, logit_scale=logit_scale
        )
    elif kind == "attributes":
        measures = measure_attributes(
            after["image"],
            after["text"],
            after["attributes"],
            after["objects"],
            data.attr_labels,
            data.obj_labels,
            logit_scale=logit_scale,
        )
    else:
        raise ValueError(f"cannot apply a remedy to {kind!r} data")
    about = {k: before[k] for k in _ABOUT if k in before}
    measured = {k: v for k, v in before.items() if k not in _ABOUT}
    return {**about, **measures, "before": measured}


def _about(name: str) -> dict:
    return {
        "remedy": name,
        "description": REMEDIES[name][1],
        "fitted_on": "the embeddings measured, each data set on its own",
    }


def posthoc_report(
    model: str,
    pretrained: str | None,
    data_specs,
    remedy: str,
    *,
    out_dir=None,
    device=None,
    limit: int | None = None,
    templates: str = "openai",
    batch_size: int = 64,
    download: bool = False,
    cache: bool = True,
    progress: bool = True,
) -> dict:
    """:func:`gaplab.zoo.report.report` with the embeddings of each data set remedied before they are
    measured (``remedy``: a key of :data:`REMEDIES`); each data set keeps its measures before the remedy
    under ``before``, and ``posthoc`` names the remedy. The closing table is not offered here: it moves class
    vectors by a gap vector of its own."""
    _remedy(remedy)  # before any data set is read or model loaded
    result = report(
        model,
        pretrained,
        data_specs,
        device=device,
        limit=limit,
        templates=templates,
        batch_size=batch_size,
        download=download,
        cache=cache,
        progress=progress,
        then=functools.partial(_remeasure, remedy),
    )
    result["posthoc"] = _about(remedy)
    if out_dir is not None:
        write_report(result, out_dir)
    return result


def posthoc_report_embeddings(
    path, remedy: str, *, logit_scale: float = DEFAULT_LOGIT_SCALE, out_dir=None
) -> dict:
    """:func:`gaplab.zoo.report.report_embeddings` after remedy ``remedy``, with the measures before it kept
    under ``before``.

    Examples:
        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "pairs.npz")
        >>> rng = np.random.default_rng(0)
        >>> shared = rng.normal(size=(40, 6))  # what an image and its text have in common
        >>> image = shared + rng.normal(size=(40, 6)) + 3
        >>> np.savez(path, image=image, text=shared + rng.normal(size=(40, 6)) - 3)
        >>> measures = posthoc_report_embeddings(path, "center")["data"]["embeddings"]
        >>> round(measures["before"]["l2m"], 3), round(measures["l2m"], 3)
        (1.82, 0.113)
        >>> measures["before"]["i2t_r1"], measures["i2t_r1"]
        (0.075, 0.15)
    """
    _remedy(remedy)
    then = functools.partial(_remeasure, remedy)
    result = report_embeddings(path, logit_scale=logit_scale, then=then)
    result["posthoc"] = _about(remedy)
    if out_dir is not None:
        write_report(result, out_dir)
    return result


def format_posthoc(result: dict) -> str:
    """The post-hoc report as plain text: the report's table (the embeddings after the remedy), with a line
    naming the remedy among what was measured, and a table of the main measures before and after it.

    Examples:
        >>> data = {"x": {"kind": "captions", "n": 6, "l2m": 0.05, "i2t_r1": 0.5,
        ...               "before": {"l2m": 0.8, "i2t_r1": 0.25}}}
        >>> result = {"embeddings": "x.npy", "logit_scale": 100.0, "data": data,
        ...           "posthoc": {"remedy": "center", "description": "means subtracted"}}
        >>> print(format_posthoc(result).split("\\n\\n")[-1])
        before and after the remedy (center)
        measure          x: before  after
        ---------------------------------
        L2M                  0.800  0.050
        image->text R@1      0.250  0.500
    """
    about = result["posthoc"]
    table = format_table(result).split("\n")
    # beside the model and weights: what was done to the embeddings before they were measured
    table.insert(
        table.index(""),
        f"{'remedy':<12} {about['remedy']}: {about['description']}; fitted on the "
        "embeddings measured, so every measure below is of the embeddings after it",
    )
    return "\n".join(table) + "\n\n" + _before_after(result)


def _before_after(result: dict) -> str:
    sets = result["data"]
    header = ["measure"]
    for name in sets:
        header += [f"{name}: before", "after"]
    rows = [header]
    for key, label in _COMPARED:
        if not any(key in m for m in sets.values()):
            continue
        row = [label]
        for m in sets.values():
            for v in (m.get("before", {}).get(key), m.get(key)):
                row.append("-" if v is None else f"{v:.3f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in rows
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(
        [f"before and after the remedy ({result['posthoc']['remedy']})", *lines]
    )
