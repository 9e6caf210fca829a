"""Self-checks of the exercises of the chapter remedies."""

from gaplab.teach.selfcheck import Exercise


def _standardised_l2m(ns):
    # the chapter's own table holds the value the exercise asks the student to recompute
    table = ns["table"]
    row = table[
        (table["remedy"] == "standardisation")
        & (table["k"] == 1)
        & (table["seed"] == 0)
    ]
    return float(row["l2m"].iloc[0])


EXERCISES = [
    Exercise(
        "remedies-ex1",
        variable="l2m_standardised",
        task="the L2M of the plain k = 1, seed 0 run's held-out embeddings after "
        "standardising each modality (fitted on those embeddings).",
        expected=_standardised_l2m,
        rtol=1e-6,
        atol=1e-9,
        hint="`gaplab.metrics.standardise(run.eval_image, run.eval_text)` returns both "
        "sides remedied; give them to `gaplab.metrics.l2m`.",
        worked="import gaplab\n\n"
        "run = runs[(rem.PLAIN, 1, 0)]\n"
        "img, txt = gaplab.metrics.standardise(run.eval_image, run.eval_text)\n"
        "l2m_standardised = gaplab.metrics.l2m(img, txt)\n"
        "h = len(img) // 2\n"
        "half = gaplab.metrics.standardise(\n"
        "    run.eval_image[h:], run.eval_text[h:],\n"
        "    fit=(run.eval_image[:h], run.eval_text[:h]),\n"
        ")\n"
        "print(l2m_standardised, gaplab.metrics.l2m(*half))",
    ),
    Exercise(
        "remedies-ex2",
        variable="why_unchanged",
        task="why subtracting one vector from every class prompt, without "
        "renormalising, cannot change a zero-shot prediction.",
        choices=(
            "The cosine of every image with the subtracted vector is the same.",
            "For an image x, every class score drops by the same x·mu, so the best "
            "class stays the best.",
            "The subtracted vector is orthogonal to every prompt.",
            "The prompts are unit vectors, so subtracting a vector cannot move them.",
        ),
        correct="b",
        hint="write the score of class c for image x before and after: "
        "x·t_c and x·(t_c - mu). Which part depends on c?",
        worked='why_unchanged = "b"',
    ),
]
