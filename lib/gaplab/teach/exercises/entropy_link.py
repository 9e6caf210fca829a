"""Self-checks of the exercises of the chapter entropy_link."""

import numpy as np

from gaplab.data import captions
from gaplab.experiments import imbalance
from gaplab.teach.selfcheck import Exercise, stored_run

CAPTION = "a small red car parked next to a tall green tree"


def _cross_range(answer, ns) -> bool:
    if not callable(answer):
        raise ValueError(
            "store a function of theta that returns (lowest, highest) of x^T y"
        )
    m, w = np.eye(3)[0], np.eye(3)[1]
    for theta in np.linspace(0.05, np.pi / 2 - 0.05, 9):
        x = np.cos(theta) * m + np.sin(theta) * w
        # u^T v spans [-1, 1]; its ends give the ends of x^T y
        ends = [x @ (-np.cos(theta) * m + np.sin(theta) * v) for v in (-w, w)]
        got = np.asarray(answer(float(theta)), dtype=float).reshape(-1)
        if got.shape != (2,):
            raise ValueError(
                "the function should return two numbers: (lowest, highest)"
            )
        if not np.allclose(got, ends, rtol=1e-6, atol=1e-9):
            return False
    return True


def _finetune_k0_difference(ns):
    ft = imbalance.finetune_experiment(ns["prof"], target_k=0, load=stored_run)
    return ft["frozen_rmg_change"] - ft["learnable_rmg_change"]


def _quarter_captions(answer, ns) -> bool:
    if isinstance(answer, str) or not isinstance(answer, (list, tuple, set)):
        raise ValueError("store a list of captions (strings), one per possible cut")
    if not all(isinstance(a, str) for a in answer):
        raise ValueError("every entry of the list should be a caption (a string)")
    drawn = {
        captions.truncate_caption(CAPTION, "quarter", seed=seed, epoch=epoch)
        for seed in range(4)
        for epoch in range(100)
    }
    return {" ".join(a.split()) for a in answer} == drawn


EXERCISES = [
    Exercise(
        "entropy_link-ex1",
        variable="cross_range",
        task="a function `cross_range(theta)` that returns (lowest, highest) of x^T y.",
        accept=_cross_range,
        hint="expand x^T y using m^T m = 1 and m^T u = m^T v = 0; only u^T v is "
        "left free, and it lies between -1 and 1.",
        worked="import numpy as np\n\n\n"
        "def xy_ends(theta):\n"
        "    c2, s2 = np.cos(theta) ** 2, np.sin(theta) ** 2\n"
        "    return (-c2 - s2, -c2 + s2)\n\n\n"
        "cross_range = xy_ends",
    ),
    Exercise(
        "entropy_link-ex2",
        variable="frozen_minus_learnable_k0",
        task="frozen minus learnable change in RMG, fine-tuning k = 5 on k = 0.",
        expected=_finetune_k0_difference,
        rtol=1e-3,
        atol=1e-6,
        hint="the dictionary the fine-tuning returns has a field with each arm's "
        "change in RMG; subtract in the order the task says.",
        worked="from gaplab.experiments import imbalance\n\n"
        "ft0 = imbalance.finetune_experiment(prof, target_k=0)\n"
        'frozen_minus_learnable_k0 = ft0["frozen_rmg_change"] - ft0["learnable_rmg_change"]',
    ),
    Exercise(
        "entropy_link-ex3",
        variable="quarter_captions",
        task='every caption the quarter cut (mode="span") can make, as a list.',
        accept=_quarter_captions,
        hint="the caption is split at spaces into four chunks with bounds "
        "`int(j * n / 4)`; or call `captions.truncate_caption` over many epochs.",
        worked="from gaplab.data import captions\n\n"
        'c = "a small red car parked next to a tall green tree"\n'
        'cuts = [captions.truncate_caption(c, "quarter", epoch=e) for e in range(40)]\n'
        "quarter_captions = sorted(set(cuts))\n"
        "print(quarter_captions, [len(q.split()) for q in quarter_captions])",
    ),
]
