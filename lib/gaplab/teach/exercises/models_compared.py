"""Self-checks of the exercises of the chapter models_compared."""

from gaplab import metrics
from gaplab.data.embeddings import load_embeddings
from gaplab.metrics.correlation import kendall
from gaplab.teach.selfcheck import Exercise, NotReady


def _frozen_k2_tau(ns):
    comparison = ns["comparison"]
    if comparison.models_set != "mad":
        raise NotReady(
            'this exercise reads the MAD zoo: run the chapter with models = "mad".'
        )
    t = comparison.table
    k2 = t[(t.k == 2) & (t.family == "frozen temperature")]
    return kendall(k2.logit_scale, k2.rmg).tau


def _random_l2m(ns):
    return metrics.l2m(*load_embeddings("clip_random"))


EXERCISES = [
    Exercise(
        "models_compared-ex1",
        variable="tau_scale_gap",
        task="Kendall's tau of logit scale against RMG over the frozen runs at k = 2.",
        expected=_frozen_k2_tau,
        rtol=1e-6,
        hint="select the rows of `comparison.table` with `k == 2` and family "
        '"frozen temperature", then `kendall(rows.logit_scale, rows.rmg).tau`.',
        worked="from gaplab.metrics.correlation import kendall\n\n"
        "t = comparison.table\n"
        't = t[(t.k == 2) & (t.family == "frozen temperature")]\n'
        "tau_scale_gap = kendall(t.logit_scale, t.rmg).tau",
    ),
    Exercise(
        "models_compared-ex2",
        variable="l2m_random",
        task="L2M of the untrained CLIP's shipped embeddings (clip_random).",
        expected=_random_l2m,
        rtol=1e-4,
        hint='`gaplab.data.embeddings.load_embeddings("clip_random")` returns the '
        "image and text arrays; pass both to `gaplab.metrics.l2m`.",
        worked="from gaplab import metrics\n"
        "from gaplab.data.embeddings import load_embeddings\n\n"
        'l2m_random = metrics.l2m(*load_embeddings("clip_random"))',
    ),
    Exercise(
        "models_compared-ex3",
        variable="lambda_threshold",
        task="the lambda at which class 1 and class 2 tie in part (b).",
        expected=lambda ns: -1 / 7,
        rtol=0,
        atol=1e-3,
        hint="write each class's score as a function of lambda: "
        "<x - lambda g, t_c>, and set the two equal.",
        worked="lambda_threshold = -1 / 7",
    ),
]
