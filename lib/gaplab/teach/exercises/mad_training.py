"""Self-checks of the exercises of the chapter mad_training."""

from gaplab import runs
from gaplab.teach.selfcheck import Exercise, stored_run


def _rmg_k5_minus_k2(ns):
    prof = ns["prof"]
    k5 = stored_run(runs.mad_config(prof, k=5)).final["rmg"]
    k2 = stored_run(runs.mad_config(prof, k=2)).final["rmg"]
    return float(k5 - k2)


def _entropy_frozen_minus_learnable(ns):
    prof = ns["prof"]
    frozen = stored_run(runs.mad_config(prof, temperature=10.0))
    learnable = stored_run(runs.mad_config(prof))
    return float(frozen.final["entropy"] - learnable.final["entropy"])


EXERCISES = [
    Exercise(
        "mad_training-ex1",
        variable="rmg_k5_minus_k2",
        task="the final RMG of the k = 5 run minus the final RMG of the k = 2 run.",
        expected=_rmg_k5_minus_k2,
        rtol=1e-3,
        atol=1e-6,
        hint="a run's last evaluation is `result.final`; read the same "
        "measure from both runs and subtract in the order the task says.",
        worked="from gaplab import runs\n\n"
        "result5 = runs.get_or_train(runs.mad_config(profile, k=5))\n"
        "result2 = runs.get_or_train(runs.mad_config(profile, k=2))\n"
        'rmg_k5_minus_k2 = result5.final["rmg"] - result2.final["rmg"]\n'
        'print(result5.final["l2m"] - result2.final["l2m"])',
    ),
    Exercise(
        "mad_training-ex2",
        variable="entropy_frozen_minus_learnable",
        task="final entropy, logit scale frozen at 10, minus the learnable k = 2 run's.",
        expected=_entropy_frozen_minus_learnable,
        rtol=1e-3,
        atol=1e-6,
        hint="train `runs.mad_config(profile, temperature=10.0)` and compare the "
        '`"entropy"` of its last evaluation with the learnable run\'s.',
        worked="from gaplab import runs\nfrom gaplab.book import charts\n\n"
        "frozen = runs.get_or_train(runs.mad_config(profile, temperature=10.0))\n"
        "learnable = runs.get_or_train(runs.mad_config(profile))\n"
        "entropy_frozen_minus_learnable = "
        'frozen.final["entropy"] - learnable.final["entropy"]\n'
        'charts.training_curves(frozen.history, title="logit scale frozen at 10")',
    ),
]
