"""Self-checks of the exercises of the chapter contrastive_gap."""

import dataclasses

import numpy as np

from gaplab import runs
from gaplab.experiments import contrastive
from gaplab.experiments.samemodality import SameModalityConfig
from gaplab.teach.selfcheck import Exercise, stored_run


def _alignment_only_change(ns):
    run = stored_run(runs.mad_config(ns["prof"], alignment_weight=1.0))
    report = contrastive.embedding_report(run.eval_image, run.eval_text)
    clip = ns["v_table"].loc["CLIP"]
    return [float(report[m] - clip[m]) for m in ("l2m", "uniformity")]


def _learnable_config(answer, ns) -> bool:
    if not isinstance(answer, SameModalityConfig):
        raise ValueError(
            "store one `samemodality.SameModalityConfig`, e.g. made with "
            "`SameModalityConfig.from_profile(prof, ...)`"
        )
    fixed = ns["same"]["(i) same start, crop view, seed 0"].config
    # set-up (i) with only the temperature changed
    return answer == dataclasses.replace(fixed, temperature="learnable")


def _text_only_guess(ns):
    digits = np.asarray(ns["variants"]["CLIP"].eval_factors["digit"])
    return 1.0 / len(np.unique(digits))


EXERCISES = [
    Exercise(
        "contrastive_gap-ex1",
        variable="alignment_only_change",
        task="[change in L2M, change in uniformity] of the alignment-only run against "
        'the CLIP run (row "CLIP" of `v_table`), each as alignment-only minus CLIP.',
        expected=_alignment_only_change,
        rtol=1e-3,
        atol=1e-4,
        hint="train the run, measure it with `contrastive.embedding_report` and "
        'subtract the `"CLIP"` row of `v_table`, in the order the task says.',
        worked="from gaplab import runs\n\n"
        "align_run = runs.get_or_train(runs.mad_config(prof, alignment_weight=1.0))\n"
        "img_a, txt_a = align_run.eval_image, align_run.eval_text\n"
        "rep = contrastive.embedding_report(img_a, txt_a)\n"
        "print(rep)\n"
        "alignment_only_change = [\n"
        '    rep["l2m"] - v_table.loc["CLIP", "l2m"],\n'
        '    rep["uniformity"] - v_table.loc["CLIP", "uniformity"],\n'
        "]",
    ),
    Exercise(
        "contrastive_gap-ex2",
        variable="learnable_config",
        task="the configuration of set-up (i), seed 0, with a learnable temperature, "
        "as `learnable_config`.",
        accept=_learnable_config,
        hint='set-up (i) is `init="same"`, `views="crop"`, `seed=0` at the chapter\'s '
        "profile; leave `temperature` at its default, which is learnable.",
        worked="from gaplab.experiments import samemodality\n\n"
        "learnable_config = samemodality.SameModalityConfig.from_profile(\n"
        '    prof, init="same", views="crop", seed=0\n'
        ")",
    ),
    Exercise(
        "contrastive_gap-ex3",
        variable="why_separable",
        task="how a small centroid distance can go with a high linear separability.",
        choices=(
            "In 32 dimensions a linear classifier can split any two sets of points, "
            "so its accuracy says nothing about the gap.",
            "Separability sets the offset of the means against the spread of the "
            "points along the separating direction, and tightly packed points make "
            "even 0.1 a wide offset.",
            "A 32-dimensional unit sphere is smaller than a 128-dimensional one, so "
            "0.104 is a large distance on it.",
            "Linear separability measures how far each image is from its own caption, "
            "not the offset between the modalities.",
        ),
        correct="b",
        hint="a classifier has to tell the two clouds apart: compare the distance of "
        "their centres with how wide each cloud is.",
        worked='why_separable = "b"',
    ),
    Exercise(
        "contrastive_gap-ex4",
        variable="text_only_guess",
        task="your prediction, before running anything, of the text-only baseline's "
        "top-1 share (same digit, new value), as a number between 0 and 1.",
        expected=_text_only_guess,
        rtol=0.0,
        atol=0.02,
        hint="the query `t_b` is the same whatever digit the query image shows: how "
        "often does a guess that ignores the digit get it right?",
        worked="import numpy as np\n\n"
        'digits = variants["CLIP"].eval_factors["digit"]\n'
        "text_only_guess = 1 / len(np.unique(digits))",
    ),
]
