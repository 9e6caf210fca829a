"""One table for the model comparison, whichever set of models ran: open_clip models or the MAD zoo.

The chapter's cells read the columns named in :class:`Comparison` (``gap``, ``performance``, ``moad``, ...), so
the same analysis runs on a survey of pretrained models (online, :func:`from_survey`) and on the book's MAD models
(offline: :func:`gaplab.experiments.mad_zoo.from_mad`, which lives with the MAD experiments because real models
never depend on them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gaplab.zoo import survey
from gaplab.zoo.datasets import DataError, load_data
from gaplab.zoo.survey import correlations, keep_like_the_authors, survey_table

__all__ = [
    "Comparison",
    "from_survey",
    "survey_open_clip",
    "closing_frame",
    "ROLES",
]

#: the roles a comparison's columns play, and their labels on the page
ROLES = {
    "gap": "RMG",
    "l2m": "L2M",
    "performance": "accuracy",
    "retrieval": "image-to-text R@1",
    "moad": "MOAD (images)",
    "moad_text": "MOAD (texts)",
    "attribute": "attribute accuracy",
    "object": "object accuracy",
    "group": "training data",
}


@dataclass
class Comparison:
    #: "open_clip" or "mad"
    models_set: str
    table: pd.DataFrame
    #: role -> column of ``table`` (roles without data are left out)
    columns: dict[str, str]
    #: role -> label for charts
    labels: dict[str, str] = field(default_factory=dict)
    _tests: dict = field(default_factory=dict, repr=False)

    def label(self, role: str) -> str:
        return self.labels.get(role, ROLES[role])

    def frame(self, *roles: str) -> pd.DataFrame:
        """The model name and the given roles as columns named by their labels (for tables and charts)."""
        cols = {
            "model": "model",
            **{self.columns[r]: self.label(r) for r in roles if r in self.columns},
        }
        return self.table[list(cols)].rename(columns=cols)

    def correlations(self, tests, *, n_resamples: int = 99_999) -> pd.DataFrame:
        """Kendall's tau and permutation p of each (x role, y role) over all models and within each group, with
        how each p was found (exact over all pairings, or resampled with its Monte-Carlo s.e.)."""
        tests = [(x, y) for x, y in tests if x in self.columns and y in self.columns]
        pairs = [(self.columns[x], self.columns[y]) for x, y in tests]
        out = correlations(
            self.table, pairs, group=self.columns.get("group"), n_resamples=n_resamples
        )
        for (x, y), (cx, cy) in zip(tests, pairs):
            self._tests[(x, y)] = out[(out["x"] == cx) & (out["y"] == cy)]
        names = {c: self.label(r) for r, c in self.columns.items()}
        return out.assign(x=out["x"].map(names), y=out["y"].map(names))

    def test(self, x: str, y: str, models: str = "all") -> dict:
        """One row of :meth:`correlations` (computed once per pair): n, tau, p, how p was found, significant."""
        key = (x, y)
        if key not in self._tests:
            self._tests[key] = self.correlations([key])
        hit = self._tests[key][self._tests[key]["models"] == models]
        if hit.empty:
            raise KeyError(f"no test of {x} against {y} over the models {models!r}")
        return hit.iloc[0].to_dict()

    def groups_tested(self, x: str, y: str) -> list[str]:
        self.test(x, y)
        return [g for g in self._tests[(x, y)]["models"] if g != "all"]

    def sentence(self, x: str, y: str) -> str:
        """The test of ``x`` against ``y`` in words, pooled and within each group."""
        parts = [self._words(self.test(x, y), "over all models")]
        parts += [
            self._words(self.test(x, y, g), f"within {g}")
            for g in self.groups_tested(x, y)
        ]
        # one line each, so the page does not cut them off
        return (
            f"{self.label(x)} against {self.label(y)}:\n  " + ";\n  ".join(parts) + "."
        )

    @staticmethod
    def _words(r: dict, where: str) -> str:
        return (
            f"{where}, τ = {r['tau']:.3f} (p = {r['p']:.3f}, {r['method']}; "
            f"{int(r['n'])} models)"
        )


def from_survey(
    results,
    *,
    captions: str = "coco",
    classes: str | None = "cifar10",
    attributes: str | None = "mitstates",
    like_the_authors: bool = True,
) -> Comparison:
    """A survey of open_clip models (:func:`gaplab.zoo.survey.survey`): the named data sets' measures, grouped by
    training-set size as the authors group them."""
    table = survey_table(results)
    if like_the_authors:
        table = keep_like_the_authors(table, captions)
    table = table.assign(model=table["model"] + " " + table["pretrained"])
    cols = {
        "gap": f"{captions}.rmg",
        "l2m": f"{captions}.l2m",
        "retrieval": f"{captions}.i2t_r1",
        "group": "group",
    }
    labels = {
        "gap": "RMG (COCO)",
        "l2m": "L2M (COCO)",
        "retrieval": "COCO image-to-text R@1",
        "group": "training data (pairs)",
    }
    if classes:
        cols["performance"] = f"{classes}.zero_shot_acc"
        labels["performance"] = f"{classes} zero-shot accuracy"
    else:
        cols["performance"] = cols["retrieval"]
    if attributes:
        cols.update(
            moad=f"{attributes}.moad_image",
            moad_text=f"{attributes}.moad_text",
            attribute=f"{attributes}.attribute_acc",
            object=f"{attributes}.object_acc",
        )
        labels.update(
            attribute=f"{attributes} attribute accuracy",
            object=f"{attributes} object accuracy",
        )
    missing = [c for c in cols.values() if c not in table]
    if missing:
        raise KeyError(
            f"the survey has no measures {missing}; were these data sets in the survey's --data?"
        )
    return Comparison("open_clip", table, cols, labels)


def survey_open_clip(
    n_models: int, data_root, attribute_data: str, survey_dir, *, echo=print
):
    """The chapter's online survey: COCO val2017 and CIFAR-10 (downloaded into ``data_root`` when missing) and
    ``attribute_data``, for the first ``n_models`` of the default selection. Returns the comparison and the
    measured reports."""
    root = Path(data_root).expanduser()
    pairs = survey.default_selection(n_models)
    sizes = survey.parameter_counts(pairs)
    echo(
        f"{len(pairs)} models; about {sum(4 * n for n in sizes.values()) / 2**30:.1f} GiB of weights to "
        "download (parameters x 4 bytes)"
    )
    specs = [f"coco:{root / 'coco'}", f"cifar10:{root}"]
    for spec in specs:  # a missing data set fails here, before any model loads
        load_data(spec, download=True)
    attributes = None
    try:
        load_data(attribute_data)
        specs.append(attribute_data)
        attributes = attribute_data.split(":", 1)[0]
    except DataError as err:
        # MIT-States and UT-Zappos cannot be downloaded for the user: go on without the object-bias part
        echo(
            f"no attribute data, so no object bias or closing the gap in this survey: {err}"
        )
    results = survey.survey(pairs, specs, survey_dir, download=True, echo=echo)
    measured = [r for r in results if "error" not in r]
    times = ", ".join(f"{r['seconds']:.0f}" for r in measured if "seconds" in r)
    echo(
        f"measured {len(measured)} of {len(pairs)} models; seconds per model here: {times}"
    )
    return from_survey(results, classes="cifar10", attributes=attributes), measured


def closing_frame(measured, attributes: str) -> pd.DataFrame:
    """Mean object and attribute accuracy over the surveyed models for each way of closing the gap."""
    rows = [
        {"model": f"{r['model']} {r['pretrained']}", "variant": v, **acc}
        for r in measured
        for v, acc in r["data"][attributes].get("closing", {}).items()
    ]
    if not rows:
        raise ValueError(
            f"no closing results for {attributes}: survey with closing=True"
        )
    return pd.DataFrame(rows).pivot_table(
        index="variant", values=["attribute", "object"], aggfunc="mean"
    )
