"""Self-checks of the exercises of the chapter object_bias."""

from gaplab import metrics as M
from gaplab.data.mad import FACTORS
from gaplab.experiments import imbalance, readout
from gaplab.teach.selfcheck import Exercise, stored_run


def _moad_thickness_color(ns):
    model, f = ns["model"], ns["f"]
    return [M.moad(model.eval_image, f["digit"], f[a]) for a in ("thickness", "color")]


def _scale_contrast(ns):
    run = stored_run(
        imbalance.imbalance_config(ns["prof"], 2, 0, object_factor="scale")
    )
    factors = {n: run.eval_factors[n] for n in FACTORS}
    return readout.factor_contrasts(run.eval_image, factors)["scale"]


EXERCISES = [
    Exercise(
        "object_bias-ex1",
        variable="moad_thickness_color",
        task="(MOAD with thickness as the attribute, MOAD with colour as the attribute).",
        expected=_moad_thickness_color,
        rtol=1e-4,
        hint='`M.moad(model.eval_image, f["digit"], f["thickness"])` is the first; '
        "the digit stays the object in both.",
        worked="moad_thickness_color = (\n"
        '    M.moad(model.eval_image, f["digit"], f["thickness"]),\n'
        '    M.moad(model.eval_image, f["digit"], f["color"]),\n'
        ")",
    ),
    Exercise(
        "object_bias-ex2",
        variable="scale_contrast",
        task="the similarity contrast of scale in the scale-anchored model's images.",
        expected=_scale_contrast,
        rtol=1e-4,
        hint='train `imbalance.imbalance_config(prof, 2, 0, object_factor="scale")` '
        "with `gaplab.runs.get_or_train`, then take `readout.factor_contrasts` of its "
        "`eval_image` with its `eval_factors`, as the last section does.",
        worked="scale_run = gaplab.runs.get_or_train(\n"
        '    imbalance.imbalance_config(prof, 2, 0, object_factor="scale")\n'
        ")\n"
        "scale_factors = {n: scale_run.eval_factors[n] for n in FACTORS}\n"
        "scale_contrast = readout.factor_contrasts(\n"
        "    scale_run.eval_image, scale_factors\n"
        ')["scale"]',
    ),
]
