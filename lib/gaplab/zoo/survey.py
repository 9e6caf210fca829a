"""The cross-model analysis of Schrodi et al. (2025): many open_clip models, one report each, rank correlations.

Their protocol (analysis/gap_vs_performance.py, analysis/utils.py, analysis/object_bias_vs_performance.py in
lmb-freiburg/two-effects-one-trigger): 115 open_clip models, kept when their MS COCO image-to-text R@1 is at
least 5 (and not a fine-tuned or superseded one), split by training-set size into "medium" (at most 140M
pairs) and "large"; Kendall's tau of L2M and RMG against ImageNet accuracy and COCO R@1 within each group, with a
permutation test; MOAD against attribute accuracy on MIT-States and UT-Zappos.

:func:`survey` measures a list of (model, tag) pairs and keeps each model's report as its own JSON file, so an
interrupted survey resumes with the next model.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import torch

from gaplab.metrics.correlation import kendall, kendall_by_group
from gaplab.storage import atomic_write_json
from gaplab.training.models import quiet_no_weights_warning
from gaplab.zoo.report import report

__all__ = [
    "DEFAULT_MODELS",
    "MEDIUM_MAX_PAIRS",
    "training_pairs",
    "data_group",
    "default_selection",
    "survey",
    "survey_table",
    "correlations",
    "keep_like_the_authors",
    "parameter_counts",
    "MIN_COCO_R1",
]

#: a survey of at least ten models across architectures and training sets, small enough for a free Colab GPU
DEFAULT_MODELS: tuple[tuple[str, str], ...] = (
    ("RN50", "openai"),
    ("RN50", "yfcc15m"),
    ("RN50", "cc12m"),
    ("RN101", "openai"),
    ("RN101", "yfcc15m"),
    ("ViT-B-32", "openai"),
    ("ViT-B-32", "laion400m_e32"),
    ("ViT-B-32", "laion2b_s34b_b79k"),
    ("ViT-B-32", "datacomp_xl_s13b_b90k"),
    ("ViT-B-32", "datacomp_m_s128m_b4k"),
    ("ViT-B-32", "commonpool_m_clip_s128m_b4k"),
    ("ViT-B-16", "openai"),
    ("ViT-B-16", "laion400m_e32"),
    ("ViT-B-16", "laion2b_s34b_b88k"),
    ("ViT-B-16", "datacomp_xl_s13b_b90k"),
    ("convnext_base", "laion400m_s13b_b51k"),
)

#: the authors' filter: models whose COCO image-to-text R@1 (in percent) is below this are left out
MIN_COCO_R1 = 5.0
#: the authors' split between medium and large training sets (pairs)
MEDIUM_MAX_PAIRS = 140e6

# training-set sizes as the authors list them (analysis/utils.py, with their sources); longest prefix wins
_PAIRS = {
    "openai": 400e6,
    "laion400m": 413e6,
    "metaclip_400m": 400e6,
    "laion2b": 2.3e9,
    "laion5b": 5.85e9,
    "yfcc15m": 14829396,
    "cc12m": 12423374,
    "laion_aesthetic": 900e6,
    "metaclip_fullcc": 2.5e9,
    "merged2b": 2e9,
    "datacomp_s_": 1.4e6,
    "datacomp_m_": 14e6,
    "datacomp_l_": 140e6,
    "datacomp_s34b": 1.4e9,
    "datacomp1b": 1.4e9,
    "datacomp_xl": 1.4e9,
    "commonpool_s_basic": 3e6,
    "commonpool_s_text": 3.2e6,
    "commonpool_s_image": 3e6,
    "commonpool_s_laion": 1.3e6,
    "commonpool_s_clip": 3.8e6,
    "commonpool_s_s": 12.8e6,
    "commonpool_m_s": 128e6,
    "commonpool_m_basic": 30e6,
    "commonpool_m_text": 31e6,
    "commonpool_m_image": 29e6,
    "commonpool_m_laion": 13e6,
    "commonpool_m_clip": 38e6,
    "commonpool_l_s": 1.28e9,
    "commonpool_l_basic": 298e6,
    "commonpool_l_text": 317e6,
    "commonpool_l_image": 293e6,
    "commonpool_l_laion": 130e6,
    "commonpool_l_clip": 384e6,
    "commonpool_xl_s": 12.8e9,
    "commonpool_xl_laion": 1.3e9,
    "commonpool_xl_clip": 3.8e9,
    "webli": 400e6,
}


def training_pairs(tag: str) -> float | None:
    """The number of image-text pairs a tag was trained on, as the authors list it (None when unknown)."""
    hits = [k for k in _PAIRS if k in tag]
    return _PAIRS[max(hits, key=len)] if hits else None


def data_group(tag: str) -> str:
    """ "medium" (at most 140M pairs), "large", or "unknown"."""
    n = training_pairs(tag)
    return "unknown" if n is None else ("medium" if n <= MEDIUM_MAX_PAIRS else "large")


def default_selection(n: int | None = None) -> list[tuple[str, str]]:
    """:data:`DEFAULT_MODELS` that the installed open_clip knows, the first ``n`` of them."""
    import open_clip  # heavy: open_clip loads only to list models

    known = set(open_clip.list_pretrained())
    chosen = [p for p in DEFAULT_MODELS if p in known]
    return chosen if n is None else chosen[:n]


def parameter_counts(pairs) -> dict[tuple[str, str], int]:
    """Parameters of each architecture, counted without allocating weights (meta device)."""
    import open_clip  # heavy: open_clip loads only to list models

    by_arch: dict[str, int] = {}
    for name, _ in pairs:
        if name not in by_arch:
            with torch.device("meta"), quiet_no_weights_warning():
                model = open_clip.create_model(name, pretrained=None, device="meta")
            by_arch[name] = int(sum(p.numel() for p in model.parameters()))
    return {(name, tag): by_arch[name] for name, tag in pairs}


def _slug(name: str, tag: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{name}__{tag}")


def survey(
    pairs,
    data_specs,
    out_dir,
    *,
    device=None,
    limit: int | None = None,
    templates: str = "openai",
    download: bool = False,
    closing: bool = True,
    progress: bool = True,
    echo=print,
) -> list[dict]:
    """The report of each (model, weights) pair on ``data_specs``, one JSON per model under ``out_dir``.

    A model whose report exists is not measured again; one that cannot be loaded (no network, a missing file)
    is recorded with its error and the survey goes on.
    """
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    pairs = list(pairs)
    results = []
    for i, (name, tag) in enumerate(pairs, 1):
        path = out / f"{_slug(name, tag)}.json"
        if path.is_file():
            rec = json.loads(path.read_text())
            echo(f"[{i}/{len(pairs)}] {name} {tag}: already measured")
        else:
            echo(f"[{i}/{len(pairs)}] {name} {tag}: measuring ...")
            try:
                rec = report(
                    name,
                    tag,
                    data_specs,
                    device=device,
                    limit=limit,
                    templates=templates,
                    download=download,
                    closing=closing,
                    progress=progress,
                )
            except (RuntimeError, OSError, ValueError) as exc:
                print(f"      skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
                results.append(
                    {
                        "model": name,
                        "pretrained": tag,
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                )
                continue
            atomic_write_json(path, rec)
        results.append(rec)
    return results


def survey_table(results) -> pd.DataFrame:
    """One row per measured model: model, weights, training group, and ``<data set>.<measure>`` columns."""
    rows = []
    for rec in results:
        if "error" in rec:
            continue
        row = {
            "model": rec["model"],
            "pretrained": rec["pretrained"],
            "group": data_group(rec["pretrained"] or ""),
            "training_pairs": training_pairs(rec["pretrained"] or ""),
        }
        for name, measures in rec["data"].items():
            for key, value in measures.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    row[f"{name}.{key}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def _test_row(r) -> dict:
    return {
        "n": r.n,
        "tau": r.tau,
        "p": r.p,
        "exact": r.exact,
        # n! passes 2**63 at 21 models: kept as a Python int
        "pairings": r.n_pairings,
        "se": r.se,
        "method": r.method,
    }


def correlations(
    table: pd.DataFrame,
    pairs,
    *,
    group: str | None = "group",
    n_resamples: int = 99_999,
) -> pd.DataFrame:
    """Kendall's tau with its permutation p-value for each (x column, y column) in ``pairs``, over all models and
    within each ``group`` of at least three models. ``exact``, ``pairings`` and ``se`` say how each p was found
    (see :func:`gaplab.metrics.correlation.kendall`); ``method`` says it in words."""
    rows = []
    for x, y in pairs:
        if x not in table or y not in table:
            raise KeyError(
                f"the survey table has no column {x if x not in table else y!r}"
            )
        both = table[[x, y] + ([group] if group else [])].dropna()
        if len(both) >= 3:
            r = kendall(both[x], both[y], n_resamples=n_resamples)
            rows.append({"x": x, "y": y, "models": "all", **_test_row(r)})
        if group:
            for g, r in kendall_by_group(
                both[x], both[y], both[group], n_resamples=n_resamples
            ).items():
                rows.append({"x": x, "y": y, "models": str(g), **_test_row(r)})
    columns = ["x", "y", "models", "n", "tau", "p", "exact", "pairings", "se", "method"]
    out = pd.DataFrame(rows, columns=columns)
    out["significant"] = out["p"] < 0.05
    return out


def keep_like_the_authors(table: pd.DataFrame, coco: str = "coco") -> pd.DataFrame:
    """The authors' filter: drop models whose COCO image-to-text R@1 is below 5 % (when COCO was measured)."""
    col = f"{coco}.i2t_r1"
    if col not in table:
        return table
    return table[table[col] * 100 >= MIN_COCO_R1].reset_index(drop=True)
