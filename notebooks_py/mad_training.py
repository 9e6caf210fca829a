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
# # MAD: a data set where information imbalance is a knob, and training a CLIP on it
#
# To test whether information imbalance *causes* the modality gap and the object bias, Schrodi et al.
# {cite:p}`schrodi2025twoeffects` needed data where they could set how much of an image a caption describes. They
# built **MAD** (its data set code is `mad_dataset/MAD_dataset.py` in their repository): digits with
# Morpho-MNIST-style perturbations {cite:p}`castro2019morphomnist`, each image described by six factors, and
# captions that name the digit plus $k$ of the five other factors. With $k = 5$ a caption says
# everything about its image; with $k = 0$ it says only which digit it shows. The authors did not publish their MAD
# training code (the README of their repository says so); this chapter shows this book's version and trains a
# first model.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - name MAD's factors and explain how the number of attributes per caption, $k$, sets the information imbalance;
# - train a small CLIP on MAD with `gaplab` and read its training curves (loss, gap, entropy, temperature);
# - measure zero-shot digit recognition with class prompts built from the training captions.
# ```

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU
profile = "auto"
k = 2  # attributes named per caption besides the digit (0..5)

# %% tags=["hide-input"]
from IPython.display import display

import gaplab
from gaplab import runs
from gaplab.book import charts, check_claim, glue
from gaplab.book.gallery import caption_gallery, factor_gallery
from gaplab.data.mad import FACTORS, generate_mad
from gaplab.experiments.temperature import settling

prof = gaplab.resolve_profile(profile)
charts.setup()
config = runs.mad_config(prof, k=k)
samples = generate_mad(400, seed=1, glyphs=config.glyphs)
print(
    f"profile: {prof.name}; glyphs: {samples.glyph_source}; factors: "
    + ", ".join(f"{name} ({len(values)})" for name, values in FACTORS.items())
)

# %% [markdown]
# ## The factors
#
# Each sample draws every factor uniformly at random: the **digit** (10 values), stroke **thickness** (regular,
# thickened, thinned), a local **swelling**, a **fracture** of the stroke, the **scale** (large, or shrunk to 0.75)
# and the **colour** (7). Offline the digits are drawn from fonts that ship with matplotlib, with random rotation,
# shear and elastic distortion; with network, `glyphs="auto"` uses real MNIST digits, as the
# authors' data set code does (`mad_dataset/prepare_MAD.py`). The tabs show
# samples of each value.

# %%
factor_gallery(samples)

# %% [markdown]
# ## Captions and the imbalance knob $k$
#
# A caption joins the digit's word and $k$ randomly chosen attribute words in random order, for example
# `small-2-swollen`. Training draws fresh captions at every step, so at $k = 2$ the model sees each image described
# by different pairs of attributes over time, but never completely. Move the slider to see the same images
# described at each $k$.

# %%
caption_gallery(samples, n=6)

# %% [markdown]
# ## Training one model
#
# `gaplab.training.train` trains a CLIP built by open_clip from a small preset: a five-layer convolutional image tower with
# batch normalisation (registered as a timm model, so open_clip's factory builds it) and a two-layer text transformer over MAD's
# 26 caption words, both projecting to 128 dimensions. It uses CLIP's symmetric contrastive loss, AdamW with warmup
# and cosine decay, and a learnable temperature. The images stay on the training device as tensors; each step
# samples a batch and new captions for it. Every few steps the run measures a held-out evaluation set. Runs are
# cached by their configuration, so running the chapter again loads the model instead of training it.

# %%
print(config)
result = runs.get_or_train(config)
final = result.final
glue("mad_zero_shot_acc", final["zero_shot_digit_acc"])
glue("mad_train_samples", final["samples"])
glue("mad_final_l2m", final["l2m"])
glue("mad_final_rmg", final["rmg"])
glue("mad_init_l2m", result.history[0]["l2m"])
glue("mad_train_seconds", result.seconds)
settled = settling(result)
glue("mad_final_logit_scale", final["logit_scale"])
glue("mad_scale_change", settled["change"])
glue("mad_scale_drive", settled["drive"])
charts.training_curves(result.history, title=f"Training a MAD CLIP at k = {config.k}")

# %% [markdown]
# After {glue:text}`mad_train_samples:,` training samples the model names the digit of a held-out image correctly
# {glue:text}`mad_zero_shot_acc:.1%` of the time, choosing among ten class prompts (chance: 10%). Each class prompt
# averages captions drawn as in training that contain the digit's word: the model never read a one-word caption at
# $k = 2$, so a bare "3" would test something it was not trained on.
#
# The gap starts large, because the two freshly initialised towers point their outputs in different directions
# (L2M {glue:text}`mad_init_l2m:.2f` at initialisation), and shrinks in training to L2M
# {glue:text}`mad_final_l2m:.3f` and RMG {glue:text}`mad_final_rmg:.3f`: it does not close. The next chapters ask
# how it depends on $k$.
#
# The learnable temperature starts at CLIP's initial logit scale of 14.3 and ends this run at
# {glue:text}`mad_final_logit_scale:.1f`, far below the 100 that CLIP's own training reaches. Over the last
# fifth of the run it changes by {glue:text}`mad_scale_change:.1%` of its final value: it looks settled. It is
# not at rest, though: the cosine schedule has taken its learning rate away. Measured against the largest
# change its optimiser could have made there (Adam moves a parameter by about its learning rate per step
# when every gradient points one way), its log moved at {glue:text}`mad_scale_drive:.0%` of that rate, so
# it is still being pushed up (`gaplab.experiments.temperature.settling`). The `long` profile trains five
# times longer; the last section shows where its scale ends.

# %% tags=["hide-input"]
check_claim(
    "A CLIP trained on MAD recognises digits zero-shot (this book's training recipe)",
    final["zero_shot_digit_acc"] >= 0.9,
    f"zero-shot digit accuracy {final['zero_shot_digit_acc']:.3f} "
    f"after {final['samples']} samples",
    prof,
)

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
    "mad_training",
    [
        "mad_train_samples",
        "mad_zero_shot_acc",
        "mad_init_l2m",
        "mad_final_l2m",
        "mad_final_rmg",
        "mad_train_seconds",
    ],
    build=prof.name,
)

# %%
measures = {
    "mad_final_logit_scale": "learned logit scale",
    "mad_scale_drive": "logit scale's drive, last fifth",
    "mad_final_l2m": "L2M",
    "mad_zero_shot_acc": "zero-shot accuracy",
}
charts.scale_trend(ladder.trend("mad_training", measures, build=prof.name))

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: mad_training-ex1
#
# Train with `k = 5` (`runs.get_or_train(runs.mad_config(profile, k=5))`). How do the final L2M and RMG compare
# with $k = 2$?
# ```
#
# ```{solution} mad_training-ex1
# :label: mad_training-sol1
# :class: dropdown
#
# Compare `result.final` of both runs. Schrodi et al. name information imbalance as the driving factor of
# the gap (their abstract), so the gap should shrink as captions carry more of their images' information; one pair of runs is a single data point with seed noise, so the imbalance chapter
# measures all $k$ with several seeds before drawing a conclusion.
# ```

# %% [markdown]
# ```{exercise}
# :label: mad_training-ex2
#
# Freeze the temperature at a logit scale of 10 (`temperature=10.0`). What happens to the entropy curve?
# ```
#
# ```{solution} mad_training-ex2
# :label: mad_training-sol2
# :class: dropdown
#
# `runs.get_or_train(runs.mad_config(profile, temperature=10.0))`, then `charts.training_curves(...)`. The logit
# scale stays at 10, below where the learnable run ends, so the softmax over the batch cannot sharpen as far and
# the entropy curve should level off higher; check it against the learnable run's curve above. Liang et al. report
# that the temperature shapes the gap (their Sec. 4.2).
# ```
