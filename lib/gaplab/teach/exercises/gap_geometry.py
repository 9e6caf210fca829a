"""Self-checks of the exercises of the chapter gap_geometry."""

import numpy as np

from gaplab import metrics
from gaplab.teach.selfcheck import Exercise


def _shifted_l2m(ns):
    img, txt = ns["img"], ns["txt"]
    moved = txt + (img.mean(0) - txt.mean(0))
    moved = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return metrics.l2m(img, moved)


def _clamp_construction(answer, ns) -> bool:
    x, y = (np.asarray(a, dtype=float) for a in answer)
    if x.shape != y.shape or x.ndim != 2 or len(x) < 2:
        raise ValueError("store two arrays of the same shape (samples x dimensions)")
    # without the clamp, RMG is 0 exactly when every matched pair coincides
    return bool(np.allclose(x, y)) and 0.0 < metrics.rmg(x, y) < 1.0


EXERCISES = [
    Exercise(
        "gap_geometry-ex1",
        variable="convirt_text_cone",
        task="the mean cosine among ConVIRT's caption embeddings, read from `table`.",
        expected=lambda ns: float(ns["table"].loc["convirt", "mean cos (text)"]),
        hint="`table` has one row per model and a column for each side's mean cosine.",
        worked='convirt_text_cone = float(table.loc["convirt", "mean cos (text)"])',
    ),
    Exercise(
        "gap_geometry-ex2",
        variable="rmg_sets",
        task="your two embedding sets as a pair, `rmg_sets = (x, y)`.",
        accept=_clamp_construction,
        hint="without the clamp, RMG's numerator is the mean distance of matched pairs: "
        "when is that 0?",
        worked="import numpy as np\n\n"
        "x = np.random.default_rng(0).normal(size=(50, 8))\n"
        "rmg_sets = (x, x.copy())",
    ),
    Exercise(
        "gap_geometry-ex3",
        variable="l2m_shifted",
        task="L2M between the images and the shifted, renormalised captions.",
        expected=_shifted_l2m,
        rtol=1e-3,
        hint="add `img.mean(0) - txt.mean(0)` to every caption, then divide each row by its "
        "length before `metrics.l2m`.",
        worked="import numpy as np\n\n"
        "moved = txt + (img.mean(0) - txt.mean(0))\n"
        "moved /= np.linalg.norm(moved, axis=1, keepdims=True)\n"
        "l2m_shifted = metrics.l2m(img, moved)",
    ),
]
