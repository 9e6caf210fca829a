"""One table for the model comparison, whichever set of models ran: open_clip models or the MAD zoo.

The chapter's cells read the columns named in :class:`Comparison` (``gap``, ``performance``, ``moad``, ...), so
the same analysis runs on a survey of pretrained models (online) and on the book's MAD models (offline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from gaplab.metrics.correlation import kendall
from gaplab.zoo.survey import correlations

__all__ = ["Comparison", "from_mad", "from_survey", "ROLES"]

#: the roles a comparison's columns play, and their labels on the page
ROLES = {"gap": "RMG", "l2m": "L2M", "performance": "accuracy", "retrieval": "image-to-text R@1",
         "moad": "MOAD (images)", "moad_text": "MOAD (texts)", "attribute": "attribute accuracy",
         "object": "object accuracy", "group": "training data"}


@dataclass
class Comparison:
    #: "open_clip" or "mad"
    models_set: str
    table: pd.DataFrame
    #: role -> column of ``table`` (roles without data are left out)
    columns: dict[str, str]
    #: role -> label for charts
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, role: str) -> str:
        return self.labels.get(role, ROLES[role])

    def frame(self, *roles: str) -> pd.DataFrame:
        """The model name and the given roles as columns named by their labels (for tables and charts)."""
        cols = {"model": "model", **{self.columns[r]: self.label(r) for r in roles if r in self.columns}}
        return self.table[list(cols)].rename(columns=cols)

    def correlations(self, tests, *, n_resamples: int = 9999) -> pd.DataFrame:
        """Kendall's tau and permutation p of each (x role, y role) over all models and within each group."""
        pairs = [(self.columns[x], self.columns[y]) for x, y in tests if x in self.columns and y in self.columns]
        out = correlations(self.table, pairs, group=self.columns.get("group"), n_resamples=n_resamples)
        names = {c: self.label(r) for r, c in self.columns.items()}
        return out.assign(x=out["x"].map(names), y=out["y"].map(names))

    def kendall(self, x: str, y: str, **kwargs):
        return kendall(self.table[self.columns[x]], self.table[self.columns[y]], **kwargs)


def from_mad(profile="cpu", *, progress: bool = False) -> Comparison:
    """The MAD zoo (:func:`gaplab.zoo.mad.mad_zoo`): k stands for the training data."""
    from gaplab.zoo.mad import mad_zoo

    table = mad_zoo(profile, progress=progress)
    table = table.assign(group=table["k"].map(lambda k: f"k={k}"))
    cols = {"gap": "rmg", "l2m": "l2m", "performance": "object_acc", "retrieval": "i2t_r1", "moad": "moad_img",
            "moad_text": "moad_txt", "attribute": "attribute_acc", "object": "object_acc", "group": "group"}
    labels = {"performance": "digit zero-shot accuracy", "object": "digit zero-shot accuracy",
              "attribute": "attribute zero-shot accuracy", "group": "k (attributes per caption)"}
    return Comparison("mad", table, cols, labels)


def from_survey(results, *, captions: str = "coco", classes: str | None = "cifar10",
                attributes: str | None = "mitstates", like_the_authors: bool = True) -> Comparison:
    """A survey of open_clip models (:func:`gaplab.zoo.survey.survey`): the named data sets' measures, grouped by
    training-set size as the authors group them."""
    from gaplab.zoo.survey import keep_like_the_authors, survey_table

    table = survey_table(results)
    if like_the_authors:
        table = keep_like_the_authors(table, captions)
    table = table.assign(model=table["model"] + " " + table["pretrained"])
    cols = {"gap": f"{captions}.rmg", "l2m": f"{captions}.l2m", "retrieval": f"{captions}.i2t_r1", "group": "group"}
    labels = {"gap": "RMG (COCO)", "l2m": "L2M (COCO)", "retrieval": "COCO image-to-text R@1",
              "group": "training data (pairs)"}
    if classes:
        cols["performance"] = f"{classes}.zero_shot_acc"
        labels["performance"] = f"{classes} zero-shot accuracy"
    else:
        cols["performance"] = cols["retrieval"]
    if attributes:
        cols.update(moad=f"{attributes}.moad_image", moad_text=f"{attributes}.moad_text",
                    attribute=f"{attributes}.attribute_acc", object=f"{attributes}.object_acc")
        labels.update(attribute=f"{attributes} attribute accuracy", object=f"{attributes} object accuracy")
    missing = [c for c in cols.values() if c not in table]
    if missing:
        raise KeyError(f"the survey has no measures {missing}; were these data sets in the survey's --data?")
    return Comparison("open_clip", table, cols, labels)
