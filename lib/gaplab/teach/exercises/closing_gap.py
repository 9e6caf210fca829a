"""Self-checks of the exercises of the chapter closing_gap."""

from gaplab.experiments import organisation
from gaplab.teach.selfcheck import Exercise


def _dot_accuracy_k2_colour(ns):
    # the chapter's table holds this variant; under the dot rule it also equals
    # "ideal words - u0", which is what the exercise asks the student to see
    close = ns["close"]
    row = close[(close["k"] == 2) & (close["seed"] == 0) & (close["factor"] == "color")]
    return float(row["ideal words - u0 + gap"].iloc[0])


def _distance_without_self(ns):
    table = organisation.organisation_by_factor(
        ns["runs"][(2, 0)], factors=["color"], include_self=False
    )
    return float(table["distance"].iloc[0])


EXERCISES = [
    Exercise(
        "closing_gap-ex1",
        variable="dot_acc_shifted",
        task="the dot-rule accuracy on the colours of the k = 2, seed 0 run with the "
        "class vectors `w - u0 + g` (ideal words minus u0, plus the mean gap vector "
        "of the authors' script).",
        expected=_dot_accuracy_k2_colour,
        rtol=0.0,
        atol=1e-6,
        hint="`dot_accuracy(run.eval_image, class_vectors, labels)` with "
        '`labels = run.eval_factors["color"]`, and the class vectors left '
        "unnormalised: that is the authors' rule. The gap vector is the mean training "
        "image minus the mean of every factor's plain prompts.",
        worked="import numpy as np\n"
        "from gaplab.data.mad import FACTORS\n"
        "from gaplab.experiments import closing\n"
        "from gaplab.metrics.closing import dot_accuracy\n\n"
        "run = runs[(2, 0)]\n"
        "words, u0 = closing.ideal_words_by_factor(run.model)\n"
        "train, _ = closing.training_images(run)\n"
        "plain = np.concatenate([closing.plain_prompts(run.model, f) for f in FACTORS])\n"
        "g = train.mean(0) - plain.mean(0)\n"
        'labels = run.eval_factors["color"]\n'
        'print(dot_accuracy(run.eval_image, words["color"] - u0, labels))\n'
        "dot_acc_shifted = dot_accuracy(\n"
        '    run.eval_image, words["color"] - u0 + g, labels\n'
        ")",
    ),
    Exercise(
        "closing_gap-ex2",
        variable="distance_without_self",
        task="the Kendall distance (standard definition) of the colour values of the "
        "k = 2, seed 0 run, with `include_self=False`.",
        expected=_distance_without_self,
        rtol=1e-6,
        atol=1e-9,
        hint="`organisation.organisation_by_factor` takes the run, "
        '`factors=["color"]` and `include_self`; read its `"distance"` column, '
        'not `"tau"` or the script\'s.',
        worked="table = organisation.organisation_by_factor(\n"
        '    runs[(2, 0)], factors=["color"], include_self=False\n'
        ")\n"
        'distance_without_self = float(table["distance"].iloc[0])\n'
        'print(org[(org["k"] == 2) & (org["factor"] == "color")])',
    ),
]
