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
# # The entropy link: why a gap helps an imbalanced model
#
# The imbalance chapter showed the gap and the entropy of the logits both falling as captions carry more
# information. Schrodi et al. {cite:p}`schrodi2025twoeffects` go further and connect the modality gap with the
# entropy of the logits (their abstract; the body of the paper could not be read here). The book reads that
# connection so: the gap is one of the model's ways to set the entropy of its logits. When a caption fits many images equally well, the best the model can do is
# spread its probability over them, which needs logits that differ little. It can get there by lowering the logit
# scale (raising the temperature), or by moving the two modalities apart: cosine similarities across a gap are
# squeezed into a narrow range, and so are the logits. The test is an intervention, as the authors set it up for
# real data (`clip_on_real_data/README.md`: a full-caption checkpoint fine-tuned on quarter captions, once with a
# learnable temperature and once with `--freeze_temp`): make a model's captions more imbalanced and see which
# route it takes when one of them is blocked.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - compute the entropy of CLIP's logits and relate it to the gap across models;
# - explain why a gap compresses the range of cross-modal similarities;
# - design a fine-tuning intervention with a frozen and a learnable temperature, and read its outcome.
# ```

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU
profile = "auto"

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import display

import gaplab
from gaplab.book import charts, check_claim, glue_row
from gaplab.experiments import imbalance

prof = gaplab.resolve_profile(profile)
charts.setup()
print(f"profile: {prof.name}")

# %% [markdown]
# ## Entropy of the logits
#
# For a batch of $N$ images and $N$ captions with unit embeddings $x_i$, $y_j$ and logit scale $s$ (the inverse
# temperature), image $i$'s distribution over captions is $p_{ij} = \mathrm{softmax}_j(s\,x_i^\top y_j)$, and its
# entropy is $H_i = -\sum_j p_{ij}\log p_{ij}$ nats, between 0 (one caption takes all) and $\log N$ (all equally
# likely). `gaplab.metrics.logits_entropy` averages $H_i$ over the images, computed with log-softmax so large
# scales do not overflow. Each run's last evaluation measures it on its 2,000-pair held-out set at the scale the
# model learned.
#
# ## Gap and entropy across the imbalance runs

# %%
runs = imbalance.imbalance_runs(prof)
table = imbalance.imbalance_table(runs)
corr = float(np.corrcoef(table["entropy"], table["rmg"])[0, 1])
corr_l2m = float(np.corrcoef(table["entropy"], table["l2m"])[0, 1])
rank_corr = imbalance.spearman(table["entropy"], table["rmg"])
glue_row(
    "entropy",
    {
        "gap_corr": corr,
        "l2m_corr": corr_l2m,
        "gap_spearman": rank_corr,
        "n_runs": len(table),
    },
)
charts.scatter(
    table,
    "entropy",
    "rmg",
    color="k",
    x_title="logits entropy (nats)",
    y_title="RMG",
    tooltip=["k:Q", "seed:Q"],
    title="Gap against entropy, one point per imbalance run",
)

# %% [markdown]
# Across the {glue:text}`entropy_n_runs` runs, RMG and entropy correlate with Pearson
# $r = $ {glue:text}`entropy_gap_corr:.2f` (Spearman {glue:text}`entropy_gap_spearman:.2f`; L2M against entropy:
# $r = $ {glue:text}`entropy_l2m_corr:.2f`). A correlation across runs cannot say which causes which; $k$ drives both.
#
# ## The intervention: more imbalance, with the temperature frozen or free
#
# Start from a model trained with the least imbalance ($k = 5$) and fine-tune it on captions with one attribute
# ($k = 1$), twice:
#
# - **frozen**: the logit scale stays where the $k = 5$ training left it, so the only way to raise the entropy
#   is through the embeddings;
# - **learnable**: the logit scale may move too.
#
# For the comparison to mean anything, the temperature must be free to move in practice, not only in name. In the
# imbalance runs it barely left its initial value (the logit-scale panel there): a few hundred steps at the base
# learning rate move it little, whereas CLIP's temperature settles over $10^5$ steps. So the starting model and the
# learnable arm let the logit scale learn `finetune_temperature_lr_mult` = {glue:text}`finetune_temperature_lr_mult:.0f`
# times faster than the other weights. The starting model is otherwise the seed-0 $k = 5$ run of the imbalance grid,
# and its logit scale rose to {glue:text}`finetune_scale_before:.1f`.
#
# If the gap is the model's entropy regulator, the entropy should rise similarly in both runs, and the gap should
# grow more in the frozen run, where the temperature cannot do the job. "Before" is the $k = 5$ model measured on
# the $k = 1$ captions, so a change is what fine-tuning did.

# %%
ft = imbalance.finetune_experiment(prof, source_k=5, target_k=1)
for arm in ("frozen", "learnable"):
    glue_row(
        "finetune",
        {
            f"gap_change_{arm}": ft[f"{arm}_rmg_change"],
            f"entropy_change_{arm}": ft[f"{arm}_entropy_change"],
            f"l2m_change_{arm}": ft[f"{arm}_l2m_change"],
            f"scale_after_{arm}": ft[f"{arm}_logit_scale_after"],
        },
    )
glue_row(
    "finetune",
    {
        "gap_before": ft["frozen_rmg_before"],
        "scale_before": ft["source_logit_scale"],
        "steps": prof.finetune_steps,
        "temperature_lr_mult": prof.finetune_temperature_lr_mult,
    },
)
display(
    pd.DataFrame(
        {
            arm: {
                f"{m} {w}": ft[f"{arm}_{m}_{w}"]
                for m in ("rmg", "l2m", "entropy", "logit_scale")
                for w in ("before", "after", "change")
            }
            for arm in ("frozen", "learnable")
        }
    ).round(3)
)
charts.compare_histories(
    {
        "temperature frozen": ft["frozen"].history,
        "temperature learnable": ft["learnable"].history,
    },
    {
        "rmg": "RMG",
        "l2m": "L2M",
        "entropy": "logits entropy (nats)",
        "logit_scale": "logit scale",
        "zero_shot_digit_acc": "zero-shot digit accuracy",
    },
    title="Fine-tuning a k = 5 model on k = 1 captions",
)

# %% [markdown]
# Over {glue:text}`finetune_steps` fine-tuning steps, starting from RMG {glue:text}`finetune_gap_before:.3f` at logit
# scale {glue:text}`finetune_scale_before:.1f`:
#
# | | temperature frozen | temperature learnable |
# |---|---|---|
# | change in RMG | {glue:text}`finetune_gap_change_frozen:.3f` | {glue:text}`finetune_gap_change_learnable:.3f` |
# | change in L2M | {glue:text}`finetune_l2m_change_frozen:.3f` | {glue:text}`finetune_l2m_change_learnable:.3f` |
# | change in entropy (nats) | {glue:text}`finetune_entropy_change_frozen:.3f` | {glue:text}`finetune_entropy_change_learnable:.3f` |
# | logit scale after | {glue:text}`finetune_scale_after_frozen:.1f` | {glue:text}`finetune_scale_after_learnable:.1f` |
#
# At the `cpu` profile the entropy rose by nearly the same amount in both arms, as the book's reading above
# predicts: the new captions demand it whatever the model may change. The learnable arm got part of the way by
# lowering its logit scale, and its gap grew less; the frozen arm had only the embeddings to work with, and its gap
# grew more. The gap grew in both arms, so at this scale the temperature did not take over the whole adjustment,
# and RMG and L2M agree on the direction but not on the size of the difference (compare their rows in the table).
# The check below is the book's reading of the intervention in its plainest testable form: the gap grows more
# when the temperature is frozen.

# %% tags=["hide-input"]
check_claim(
    "With the temperature frozen, added imbalance widens the gap more than with a "
    "learnable temperature",
    ft["frozen_rmg_change"] > ft["learnable_rmg_change"],
    f"RMG change frozen {ft['frozen_rmg_change']:+.3f}, "
    f"learnable {ft['learnable_rmg_change']:+.3f}; entropy change "
    f"frozen {ft['frozen_entropy_change']:+.3f}, "
    f"learnable {ft['learnable_entropy_change']:+.3f}",
    prof,
)

# %% [markdown]
# ## Real data: the same knob on CC3M and CC12M
#
# On web data the imbalance cannot be dialled per attribute, but it can be raised by cutting captions short. The
# authors' recipe (`clip_on_real_data/README.md`) trains on full and on quarter captions, and their transforms
# also offer half captions. The transforms (in the authors' open_clip
# fork, `custom_transforms.py`) split a caption at spaces into two or four equal chunks and keep *one chunk
# drawn at random* each time the caption is read: over the epochs a model sees every part of its captions, but
# only a quarter at a time. `gaplab.data.captions` supplies that as a plug-in for open_clip's own distributed trainer
# (`open_clip_train`), so the rest of the training recipe stays open_clip's. `truncate_caption` does the
# authors' cut by default (`mode="span"`; the chunk is a function of a seed, the epoch and the caption, so reruns
# and workers agree) and keeps the first words with `mode="first"`, a variant that keeps the object-heavy start
# of every caption and so removes less of what the images show. `python -m gaplab.data.captions --caption-keep
# quarter ...` runs the trainer with the training captions cut (validation captions and ImageNet prompts stay
# whole). This is not executed in the book: a CC3M run needs several GPUs for days.

# %%
from gaplab.data import captions

example = "a brown dog runs across a wide green field chasing a small red ball"
for keep in captions.CAPTION_KEEP:
    spans = [captions.truncate_caption(example, keep, epoch=e) for e in range(3)]
    first = captions.truncate_caption(example, keep, mode="first")
    print(f"{keep:>8}: epochs 0-2: {' | '.join(spans)}")
    print(f"{'':>8}  first words: {first}")
print()
print(captions.torchrun_command("quarter", val_data="/data/cc3m/cc3m-val.csv"))

# %% [markdown]
# After training the three models, measure them as in the first chapters: embed a held-out set of image-caption
# pairs (for instance with `gaplab.training.models.load_open_clip(model, pretrained=<checkpoint path>)`), then compare
# `metrics.rmg`, `metrics.l2m` and `metrics.logits_entropy` across the caption lengths.

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
    "entropy_link",
    [
        "entropy_gap_corr",
        "entropy_gap_spearman",
        "finetune_steps",
        "finetune_gap_change_frozen",
        "finetune_gap_change_learnable",
        "finetune_entropy_change_frozen",
        "finetune_entropy_change_learnable",
        "finetune_scale_after_learnable",
    ],
    build=prof.name,
)

# %%
measures = {
    "entropy_gap_spearman": "Spearman of gap and entropy",
    "finetune_gap_change_frozen": "gap change, frozen",
    "finetune_gap_change_learnable": "gap change, learnable",
    "finetune_scale_after_learnable": "logit scale after fine-tuning",
}
charts.scale_trend(ladder.trend("entropy_link", measures, build=prof.name))

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: entropy_link-ex1
#
# Why does a gap lower the spread of the logits? Take unit vectors $x = \cos\theta\, m + \sin\theta\, u$ and
# $y = -\cos\theta\, m + \sin\theta\, v$ for a fixed unit $m$ and unit $u, v \perp m$. What range can $x^\top y$
# take, and how does it shrink as $\theta \to 0$?
# ```
#
# ```{solution} entropy_link-ex1
# :label: entropy_link-sol1
# :class: dropdown
#
# $x^\top y = -\cos^2\theta + \sin^2\theta\, u^\top v$, with $u^\top v \in [-1, 1]$, so $x^\top y$ lies in
# $[-1, \sin^2\theta - \cos^2\theta]$, an interval of width $2\sin^2\theta$. As the modalities move apart
# ($\theta \to 0$, the gap $\lVert x - y\rVert \to 2$) every cross-modal similarity is pushed into a narrower band,
# and at a fixed logit scale the softmax over captions flattens: higher entropy without touching the temperature.
# ```

# %% [markdown]
# ```{exercise}
# :label: entropy_link-ex2
#
# Fine-tune the $k = 5$ model on $k = 0$ captions instead (`imbalance.finetune_experiment(prof, target_k=0)`).
# Does the frozen arm's gap still grow more?
# ```
#
# ```{solution} entropy_link-ex2
# :label: entropy_link-sol2
# :class: dropdown
#
# The call trains two more fine-tuning runs (one to two minutes at `cpu`) and returns the same fields; compare
# `ft0["frozen_rmg_change"]` with `ft0["learnable_rmg_change"]`. At $k = 0$ there are only ten distinct captions,
# the regime in which the imbalance chapter saw the gap behave differently, so the answer is worth checking rather
# than assuming.
# ```

# %% [markdown]
# ```{exercise}
# :label: entropy_link-ex3
#
# With the authors' cut (`mode="span"`), which quarter captions can the 11-word caption "a small red car parked
# next to a tall green tree" become, and how long is each? In what share of the epochs does a model read its
# first word, and how does `mode="first"` differ?
# ```
#
# ```{solution} entropy_link-ex3
# :label: entropy_link-sol3
# :class: dropdown
#
# The chunk bounds are `int(j * 11 / 4)` = 0, 2, 5, 8, 11, so the four quarters are "a small", "red car parked",
# "next to a" and "tall green tree" (2, 3, 3 and 3 words). Each is drawn with probability 1/4 per epoch, so the
# first word is read in a quarter of the epochs, and the other words likewise. `mode="first"` keeps
# ⌈11/4⌉ = 3 words, "a small red", in every epoch: the start of the caption, where the object is usually named, is
# always seen, and the rest never. `[captions.truncate_caption(c, "quarter", epoch=e) for e in range(8)]` shows
# the draws.
# ```
