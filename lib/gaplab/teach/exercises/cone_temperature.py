"""Self-checks of the exercises of the chapter cone_temperature."""

import functools

import numpy as np

from gaplab.experiments import cone, landscape
from gaplab.teach.selfcheck import Exercise

# a mean cosine above this after ten layers is a cone (the chapter's claim's bar)
_CONE = 0.3


@functools.lru_cache(maxsize=1)
def _final_cosines_without_bias() -> dict:
    """activation -> mean cosine after the chapter's ten layers, built without biases."""
    return {a: cone.mlp_cone(a, bias=False)[-1] for a in cone.ACTIVATIONS}


def _cones_without_bias(answer, ns) -> bool:
    names = [answer] if isinstance(answer, str) else answer
    if not isinstance(names, (list, tuple, set)) or not all(
        isinstance(n, str) for n in names
    ):
        raise ValueError("store a list of activation names (strings)")
    unknown = sorted(set(names) - set(cone.ACTIVATIONS))
    if unknown:
        raise ValueError(
            f"{unknown} are not activations of the experiment; choose from "
            f"{list(cone.ACTIVATIONS)}"
        )
    final = _final_cosines_without_bias()
    return set(names) == {name for name, c in final.items() if c > _CONE}


def _first_scale_at_zero(ns):
    scales = (40, 50, 60, 70, 80)
    lows = landscape.landscape_minima(
        landscape.loss_landscape(ns["img"], ns["txt"], logit_scales=scales)
    ).sort_values("logit scale")
    at_zero = (lows["shift"].abs() < 1e-9).to_numpy()
    for i, scale in enumerate(lows["logit scale"]):
        if at_zero[i:].all():
            return float(scale)
    return float("nan")


def _rotation_bound(ns):
    init = ns["init"]
    row = init[init["model"] == "mad-cnn"].iloc[0]
    return abs(float(np.sqrt(row["image_mean_cos"]) - np.sqrt(row["text_mean_cos"])))


def _z_predicted_at_200(ns):
    z50 = float(ns["by_swap"].loc[50.0, 1])
    c_star = 50.0 * (1.0 - z50**2)
    return float(np.sqrt(1.0 - c_star / 200.0))


EXERCISES = [
    Exercise(
        "cone_temperature-ex1",
        variable="cone_without_bias",
        task="a list of the activations (names as in `cone.ACTIVATIONS`) that still "
        "close into a cone without biases (mean cosine above 0.3 after ten layers).",
        accept=_cones_without_bias,
        hint="`cone.mlp_cone(name, bias=False)` runs the chapter's MLP without "
        "biases; read the mean cosine after its last layer for each activation.",
        worked="final = {a: cone.mlp_cone(a, bias=False)[-1] for a in cone.ACTIVATIONS}\n"
        "cone_without_bias = [name for name, c in final.items() if c > 0.3]",
    ),
    Exercise(
        "cone_temperature-ex2",
        variable="cone_as_cause",
        task="what the temperature runs say about the cone as the cause of the gap "
        "left after training.",
        choices=(
            "The cone is the whole cause: where the towers start fixes the gap that "
            "training leaves.",
            "Same start, different ends: the cones give training its starting point, "
            "and the loss with its temperature settles how much gap is left.",
            "The cone plays no part: training removes the initial gap at every "
            "temperature.",
            "The runs start alike only by chance; with other seeds the initial gaps "
            "would explain the final ones.",
        ),
        correct="b",
        hint='compare the columns "l2m at init" and "l2m" of `t_table` across the '
        "logit scales: which one varies?",
        worked='cone_as_cause = "b"',
    ),
    Exercise(
        "cone_temperature-ex3",
        variable="first_scale_at_zero",
        task="the smallest of the logit scales 40, 50, 60, 70, 80 from which on "
        "every landscape minimum is at d = 0.",
        expected=_first_scale_at_zero,
        rtol=0.0,
        atol=0.5,
        hint="`landscape.landscape_minima(...)` gives one row per logit scale; read "
        'its `"shift"` column from the largest scale down.',
        worked="lows_40_80 = landscape.landscape_minima(\n"
        "    landscape.loss_landscape(img, txt, logit_scales=(40, 50, 60, 70, 80))\n"
        ")\n"
        "print(lows_40_80)\n"
        'at_zero = lows_40_80[lows_40_80["shift"] == 0]["logit scale"]\n'
        "first_scale_at_zero = float(at_zero.min())",
    ),
    Exercise(
        "cone_temperature-ex4",
        variable="rotation_bound",
        task="the bound on L2M (the difference of the two means' lengths) estimated "
        "from the `mad-cnn` row of the cone table `init`.",
        expected=_rotation_bound,
        rtol=5e-3,
        atol=1e-6,
        hint="for many unit vectors the squared length of their mean is about their "
        "mean pairwise cosine.",
        worked='cnn_row = init[init.model == "mad-cnn"].iloc[0]\n'
        "rotation_bound = abs(\n"
        "    cnn_row.image_mean_cos**0.5 - cnn_row.text_mean_cos**0.5\n"
        ")",
    ),
    Exercise(
        "cone_temperature-ex5",
        variable="z_min_at_200",
        task="your prediction of z at the minimum with one swapped pair at logit "
        "scale 200.",
        expected=_z_predicted_at_200,
        rtol=0.0,
        atol=5e-3,
        hint="read the minimum at logit scale 50 from `by_swap`, compute the "
        "effective scale there, and ask which z gives the same effective scale "
        "at 200.",
        worked="import numpy as np\n\n"
        "z50 = by_swap.loc[50.0, 1]\n"
        "c_star = 50 * (1 - z50**2)\n"
        "z_min_at_200 = np.sqrt(1 - c_star / 200)\n"
        "check_200 = mismatch.loss_against_z(logit_scales=(200,), swaps=(1,))\n"
        "print(z_min_at_200, mismatch.loss_minima(check_200))",
    ),
]
