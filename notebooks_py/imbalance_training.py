# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: notebooks///ipynb,notebooks_py///py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# On Colab: clone the book once, install it and point gaplab at it (elsewhere: nothing).
import os, subprocess, sys  # noqa: E401, I001 (one line keeps the cell short)

if "google.colab" in sys.modules:
    url, book = "https://github.com/gaplab-book/gaplab", "/content/gaplab"
    if not os.path.isdir(book):
        subprocess.run(["git", "clone", "-q", "--depth", "1", url, book], check=True)
    package = book + "[models,charts]"  # with the extras the chapters import
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)
    os.environ["GAPLAB_BOOK"] = book

# %% [markdown]
# # Imbalance training: turning the knob
#
# Schrodi et al. {cite:p}`schrodi2025twoeffects` propose that one trigger, **information imbalance** (a caption
# says less than its image shows), produces both the modality gap and the object bias (their abstract). Observing both in CLIP does
# not show a cause. MAD lets us set the imbalance and nothing else: this chapter trains the same model on the same
# images with captions that name the digit plus $k = 0, 1, \dots, 5$ of its five attributes, with several seeds
# per $k$, and measures the gap, the object bias, the entropy of the logits and zero-shot accuracy of every model.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - run a controlled experiment on the cause of the gap, with seeds and a rank-correlation check;
# - read how RMG, L2M and MOAD change as captions describe more of their images;
# - say which of the paper's trends hold at this book's small scale, and which one does not everywhere.
# ```

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU
profile = "auto"

# %% tags=["hide-input"]
from IPython.display import display

import gaplab
from gaplab.book import charts, check_claim, glue, glue_row
from gaplab.experiments import imbalance

prof = gaplab.resolve_profile(profile)
charts.setup()
seeds = tuple(range(prof.imbalance_seeds))
print(
    f"profile: {prof.name}; k = {list(imbalance.IMBALANCE_KS)}; seeds = {list(seeds)}; "
    f"{prof.mad_steps} steps x {prof.mad_batch} = "
    f"{prof.mad_steps * prof.mad_batch:,} samples per run"
)

# %% [markdown]
# ## Training the grid
#
# Every run uses the recipe of the MAD chapter and differs only in $k$ and in the seed (which sets the weights'
# initialisation and the order of batches and captions; the images are the same). At the `cpu` profile this is
# twelve runs of about a minute each on two cores; runs are cached, so the next chapters reuse them.

# %%
runs = imbalance.imbalance_runs(prof, seeds=seeds)
table = imbalance.imbalance_table(runs)
summary = imbalance.by_k(table)
display(
    summary.style.format(
        "{:.3f}", subset=[c for c in summary.columns if c[1] in ("mean", "std")]
    )
)

# %% [markdown]
# ## The gap and the object bias against $k$
#
# Each dot is one seed; the line joins the seed means and the band spans one standard deviation. RMG and L2M are
# measured between the held-out images and their captions (drawn with the run's own $k$). MOAD compares how much
# sharing the digit, against sharing an attribute, makes two embeddings alike (see the object-bias chapter); on the
# text side it uses the same held-out captions, the only kind of text each model was trained to read.

# %%
charts.metrics_by_k(
    table,
    {
        "rmg": "RMG",
        "l2m": "L2M",
        "moad_img": "MOAD (images)",
        "moad_txt": "MOAD (captions)",
        "entropy": "logits entropy (nats)",
        "logit_scale": "learned logit scale",
    },
    title="Gap, object bias and entropy against the number of attributes per caption",
)

# %%
ks = list(imbalance.IMBALANCE_KS)
mean = summary.xs("mean", axis=1, level=1)
rho = imbalance.trends(summary)
rho_rmg, rho_l2m, rho_entropy = rho["rmg"], rho["l2m"], rho["entropy"]
rho_moad_img, rho_moad_txt = rho["moad_img"], rho["moad_txt"]
rmg_tail = imbalance.spearman(ks[1:], mean["rmg"].iloc[1:])

for name in (
    "rmg",
    "l2m",
    "moad_img",
    "moad_txt",
    "entropy",
    "object_acc",
    "attribute_acc",
):
    # by k: the mean over seeds and its spread (0 with one seed)
    glue_row(
        "imbalance",
        {name: mean[name], f"{name}_std": summary[(name, "std")].fillna(0.0)},
    )
glue_row(
    "imbalance",
    {
        "k": ks,
        "seeds": len(seeds),
        "samples_per_run": prof.mad_steps * prof.mad_batch,
        "rmg_k0_rank": int(1 + (mean["rmg"] > mean["rmg"].iloc[0]).sum()),
    },
)
glue_row(
    "imbalance_rho",
    {
        "rmg": rho_rmg,
        "rmg_k1": rmg_tail,
        "l2m": rho_l2m,
        "moad_img": rho_moad_img,
        "moad_txt": rho_moad_txt,
        "entropy": rho_entropy,
    },
)
for name in ("rmg", "moad_img", "l2m"):
    values = mean[name]
    glue_row(
        f"imbalance_{name}",
        {"k0": values.iloc[0], "k1": values.iloc[1], "k5": values.iloc[-1]},
    )
print(
    f"Spearman with k: RMG {rho_rmg:.2f} (k >= 1: {rmg_tail:.2f}), "
    f"L2M {rho_l2m:.2f}, MOAD images {rho_moad_img:.2f}, "
    f"MOAD captions {rho_moad_txt:.2f}, entropy {rho_entropy:.2f}"
)

# %% [markdown]
# With {glue:text}`imbalance_seeds` seeds per $k$ and {glue:text}`imbalance_samples_per_run:,` training samples per
# run:
#
# - **Object bias falls as captions carry more.** MOAD of the image embeddings goes from
#   {glue:text}`imbalance_moad_img_k0:.3f` at $k = 0$ to {glue:text}`imbalance_moad_img_k5:.3f` at $k = 5$
#   (Spearman correlation with $k$: {glue:text}`imbalance_rho_moad_img:.2f`). When captions name only the digit,
#   nothing in the loss asks the image tower to tell colours or sizes apart beyond what it needs to find the
#   right digit, and images of one digit crowd together; every attribute added to the captions becomes something the
#   images must be told apart by.
# - **The gap shrinks as captions carry more, except at $k = 0$.** RMG falls from
#   {glue:text}`imbalance_rmg_k1:.3f` at $k = 1$ to {glue:text}`imbalance_rmg_k5:.3f` at $k = 5$ (Spearman
#   {glue:text}`imbalance_rho_rmg_k1:.2f` over $k \ge 1$, {glue:text}`imbalance_rho_rmg:.2f` over all six); L2M
#   falls overall but not step by step (Spearman {glue:text}`imbalance_rho_l2m:.2f`). At $k = 0$, though, RMG is
#   {glue:text}`imbalance_rmg_k0:.3f`, in place {glue:text}`imbalance_rmg_k0_rank` of the six means counted from
#   the largest. With the digit alone there are only ten different captions, and the imbalance takes a form the softmax absorbs by itself:
#   an image of a 3 matches the twenty-odd copies of the caption "3" in its batch equally well because they *are*
#   the same caption, so spreading probability over them needs no compression of the logits. At $k = 1$ an image
#   of a red, thick 3 fits `red-3` and `thick-3` equally well, two different captions the model can only score alike
#   by keeping the logits close; the entropy-link chapter argues that a gap is one way to do that. The book reads
#   the paper's claim (its abstract names information imbalance as the driving factor of the gap) as the gap
#   falling as $k$ grows; the paper's MAD numbers could not be read here. At this book's scale (a minute of training per model) the $k = 0$
#   point does not follow, and an earlier throwaway prototype found the same. The check over all six points below
#   therefore passes or fails on where $k = 0$ lands, so read its margin, not only its verdict. Trained five
#   times longer (`long`, the ladder at the end of this page) $k = 0$ lands lower still, below $k = 1$, 2 and 3,
#   and the check over all six fails there while RMG still falls step by step from $k = 1$ on; the book
#   reports that rung's verdict rather than enforcing it, and keeps the check strict at `cpu` and `paper`.
# - **The entropy of the logits falls with $k$** (Spearman {glue:text}`imbalance_rho_entropy:.2f`): with more
#   information per caption the matching becomes less ambiguous. The entropy-link chapter follows this thread.
#
# The checks below are the book's reading of the paper's claim: a rank correlation of at most $-0.8$ between $k$
# and the seed means. They run at the `cpu`, `long` and `paper` profiles and fail the build when the trend is not
# there, except the RMG check at `long`, which the paragraph above explains.

# %% tags=["hide-input"]
check_claim(
    "More attributes per caption, smaller modality gap "
    "(Spearman of k with mean RMG <= -0.8)",
    rho_rmg <= -0.8,
    f"Spearman {rho_rmg:.2f}; mean RMG by k = "
    + ", ".join(f"{v:.3f}" for v in mean["rmg"]),
    prof,
    # measured at long (2026-12-05): Spearman -0.66, k = 0 in place 4 of 6;
    # from k = 1 on -1.00
    not_at_this_scale={
        "long": "at long RMG at k = 0 sits below k = 1, 2 and 3; from k = 1 "
        "on it falls step by step (the prose above)",
    },
)
check_claim(
    "More attributes per caption, less object bias in the images "
    "(Spearman of k with mean MOAD <= -0.8)",
    rho_moad_img <= -0.8,
    f"Spearman {rho_moad_img:.2f}; mean MOAD (images) by k = "
    + ", ".join(f"{v:.3f}" for v in mean["moad_img"]),
    prof,
)

# %% [markdown]
# ## Learnable or frozen temperature
#
# The grid above learns its temperature, as CLIP does. In a run of
# {glue:text}`imbalance_samples_per_run:,` samples, though, the learned logit scale only moves from CLIP's
# initial $1/0.07 \approx 14.3$ to between {glue:text}`imbalance_logit_scale_low:.1f` and
# {glue:text}`imbalance_logit_scale_high:.1f` (the seed means over $k$), where CLIP's own training takes it
# to its cap of 100 {cite:p}`radford2021clip` (Liang et al., Sec. 4.1: CLIP's learned temperature is 1/100): at
# this scale the learnable recipe is not far from a frozen one. At the book's `paper`
# profile (5,000 steps of 512) the temperature has room to settle, and the question becomes whether the two trends
# need it to. So the `long` and `paper` profiles train the grid a second time
# with the logit scale frozen at $1/0.07$, the learnable recipe's starting value, and report both trends
# under each recipe. That doubles the chapter's training, so the `cpu` build leaves it out; its numbers
# appear in the recorded table at the end of this page: at `long` as recorded on two CPU cores, at `paper`
# once a GPU has run the chapter (the `smoke` profile runs it too, only so that its code is tested). Which
# temperature the paper's MAD models used cannot be checked: the authors did not publish their MAD training
# code (the README of their repository says so). The book's main
# recipe learns its temperature, as CLIP does, so under the frozen recipe the trends are reported, not required.
# At `long` the two recipes part on one point (the ladder below has the numbers). The frozen one keeps
# both trends over all six $k$, its $k = 0$ third of six (where the learnable $k = 0$ is at `cpu`); the
# learnable one keeps the object-bias trend but the gap trend only from $k = 1$ on. Where $k = 0$ lands
# depends on the recipe; the object-bias trend, at this scale, does not.

# %%
glue_row(
    "imbalance_logit_scale",
    {"low": mean["logit_scale"].min(), "high": mean["logit_scale"].max()},
)
if prof.imbalance_frozen_recipe:
    frozen = imbalance.by_k(
        imbalance.imbalance_table(imbalance.frozen_runs(prof, seeds=seeds))
    )
    frozen_rho = imbalance.trends(frozen)
    frozen_mean = frozen.xs("mean", axis=1, level=1)
    for name in ("rmg", "moad_img"):
        glue_row(
            "imbalance_frozen",
            {name: frozen_mean[name], f"rho_{name}": frozen_rho[name]},
        )
    frozen_label = f"frozen at {imbalance.FROZEN_LOGIT_SCALE:.1f}"
    recipes = {"learnable": rho, frozen_label: frozen_rho}
    display(imbalance.trend_table(recipes).style.format("{:.2f}"))
else:
    print(
        f"The frozen-temperature grid runs at 'long' and 'paper', not at {prof.name!r}."
    )

# %% tags=["hide-input"]
if prof.imbalance_frozen_recipe:
    why = "the book's main recipe learns its temperature; the frozen one is reported"
    for name, label in (("rmg", "RMG"), ("moad_img", "MOAD (images)")):
        check_claim(
            f"With the temperature frozen: Spearman of k with mean {label} <= -0.8",
            frozen_rho[name] <= -0.8,
            f"Spearman {frozen_rho[name]:.2f}; by k = "
            + ", ".join(f"{v:.3f}" for v in frozen_mean[name]),
            prof,
            not_at_this_scale=why,
        )

# %% [markdown]
# ## What the models can name
#
# Zero-shot accuracy for the digit (the object) and the mean over the five attributes, with prompts built from
# captions drawn as in each model's training (the MAD chapter explains why). A model trained at $k = 0$ never saw
# an attribute word, so its attribute accuracy is at chance; every attribute it learns to name comes with the
# attributes its captions named.

# %%
glue("imbalance_attribute_chance", float(table["attribute_chance"].iloc[0]))
for name in ("attribute_acc", "object_acc"):
    glue_row(f"imbalance_{name}", {"k0": mean[name].iloc[0], "k5": mean[name].iloc[-1]})
charts.metrics_by_k(
    table,
    {
        "object_acc": "zero-shot digit accuracy",
        "attribute_acc": "zero-shot attribute accuracy (mean of 5)",
    },
    title="Object and attribute recognition against k",
)

# %% [markdown]
# Attribute accuracy climbs from {glue:text}`imbalance_attribute_acc_k0:.3f` at $k = 0$ (chance for the five
# attributes averages {glue:text}`imbalance_attribute_chance:.3f`) to {glue:text}`imbalance_attribute_acc_k5:.3f`
# at $k = 5$, while digit accuracy moves from {glue:text}`imbalance_object_acc_k0:.3f` to
# {glue:text}`imbalance_object_acc_k5:.3f`: the digit shares each caption with more words as $k$ grows.

# %% [markdown]
# ## At larger scales (recorded)
#
# This page was computed at the profile printed at its top. The same chapter recorded at `long` (five
# times the training, on two CPU cores, in the background) and at `paper` (the papers' scale, on a
# GPU) is kept in `data/recorded/` with its device, date and commit. The tables set each claim's verdict
# and each key number rung by rung, from `smoke` (which checks nothing) to `paper`; the chart draws the
# chapter's headline numbers against scale. {ref}`scale-ladder` gathers every chapter's verdicts.

# %% tags=["hide-input"]
from gaplab.book import ladder

ladder.show(
    "imbalance_training",
    [
        "imbalance_samples_per_run",
        "imbalance_rmg",
        "imbalance_moad_img",
        "imbalance_rho_rmg",
        "imbalance_rho_l2m",
        "imbalance_rho_moad_img",
        "imbalance_rho_entropy",
        "imbalance_logit_scale_high",
        "imbalance_frozen_rho_rmg",
        "imbalance_frozen_rho_moad_img",
    ],
    build=prof.name,
)

# %%
measures = {
    "imbalance_rho_rmg": "Spearman of RMG over k",
    "imbalance_rho_moad_img": "Spearman of MOAD over k",
    "imbalance_frozen_rho_rmg": "same, RMG, frozen temperature",
    "imbalance_frozen_rho_moad_img": "same, MOAD, frozen temperature",
    "imbalance_logit_scale_high": "learned logit scale",
}
charts.scale_trend(ladder.trend("imbalance_training", measures, build=prof.name))

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: imbalance_training-ex1
#
# Which single $k$ would you drop to make the falling RMG trend perfectly monotone (or as close to it as the
# points allow), and is dropping it honest? Compute `imbalance.spearman` of $k$ with the mean RMG on the
# remaining points.
# ```
#
# ```{solution} imbalance_training-ex1
# :label: imbalance_training-sol1
# :class: dropdown
#
# Dropping $k = 0$ gives the Spearman correlation printed above as "k >= 1". It is honest only if the reason is
# stated and the point is still shown: $k = 0$ is a different regime (ten distinct captions), not noise, and a
# reader deserves to see it. This page keeps all six points in the claim check.
# ```

# %% [markdown]
# ```{exercise}
# :label: imbalance_training-ex2
#
# The spread across seeds is part of the result. For which metrics is the difference between $k = 4$ and $k = 5$
# smaller than two seed standard deviations?
# ```
#
# ```{solution} imbalance_training-ex2
# :label: imbalance_training-sol2
# :class: dropdown
#
# `d = mean.iloc[-1] - mean.iloc[-2]; s = summary.xs("std", axis=1, level=1).iloc[-2:].max()` and compare
# `d.abs() < 2 * s` per column. With two seeds a standard deviation is itself uncertain, so treat the answer as a
# hint of where more seeds (the `paper` profile) are needed.
# ```
