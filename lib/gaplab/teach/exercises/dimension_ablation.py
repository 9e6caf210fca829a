"""Self-checks of the exercises of the chapter dimension_ablation."""

import numpy as np

from gaplab import metrics
from gaplab.data.embeddings import load_embeddings
from gaplab.teach.selfcheck import Exercise


def _l2m_top10_only(ns):
    img, txt = ns["img"], ns["txt"]
    keep = metrics.top_gap_dimensions(img, txt, 10)
    drop = np.setdiff1d(np.arange(np.shape(img)[1]), keep)
    return metrics.l2m(metrics.ablate(img, drop), metrics.ablate(txt, drop))


def _random_share_top2(ns):
    img, txt = load_embeddings("clip_random")
    return metrics.gap_share(img, txt, top=2)


EXERCISES = [
    Exercise(
        "dimension_ablation-ex1",
        variable="l2m_top10_only",
        task="L2M when only the top 10 gap dimensions are kept (both modalities).",
        expected=_l2m_top10_only,
        rtol=1e-3,
        hint="ablate every dimension *except* `metrics.top_gap_dimensions(img, txt, "
        "10)` in both modalities (`np.setdiff1d` gives the others), then `metrics.l2m`.",
        worked="import numpy as np\n\n"
        "keep = metrics.top_gap_dimensions(img, txt, 10)\n"
        "drop = np.setdiff1d(np.arange(img.shape[1]), keep)\n"
        "img10, txt10 = metrics.ablate(img, drop), metrics.ablate(txt, drop)\n"
        "l2m_top10_only = metrics.l2m(img10, txt10)\n"
        'print(metrics.recall_at_k(img10, txt10, 1, "i2t"))',
    ),
    Exercise(
        "dimension_ablation-ex2",
        variable="random_share_top2",
        task='the top 2 dimensions\' share of the squared gap of "clip_random".',
        expected=_random_share_top2,
        rtol=1e-3,
        hint='load the random-init embeddings with `load_embeddings("clip_random")` and '
        "use the same measure the chapter used for the pretrained CLIP.",
        worked="from gaplab import metrics\n"
        "from gaplab.data.embeddings import load_embeddings\n\n"
        'img_r, txt_r = load_embeddings("clip_random")\n'
        "random_share_top2 = metrics.gap_share(img_r, txt_r, top=2)",
    ),
    Exercise(
        "dimension_ablation-ex3",
        variable="why_renorm",
        task="why the ablation renormalises.",
        choices=(
            "It undoes the ablation's effect on retrieval, so only the gap measures move.",
            "Without it, random dimensions would remove more gap than the top ones.",
            "CLIP and the gap measures work on unit vectors; zeroing also shrinks norms.",
            "It spreads the zeroed dimensions' values over the others: nothing is lost.",
        ),
        correct="c",
        hint="think about what zeroing does to each vector's length, and on which "
        "set of vectors CLIP and the gap measures are defined.",
        worked='why_renorm = "c"',
    ),
]
