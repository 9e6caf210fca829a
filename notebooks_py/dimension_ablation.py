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
# # Dimension ablation: a few dimensions carry the gap
#
# The [previous chapter](gap_geometry.ipynb) measured the gap as one number. Schrodi et al.
# {cite:p}`schrodi2025twoeffects` asked how that gap is spread over the embedding dimensions and state that only
# few dimensions drive it (their abstract; the analysis is their `analysis/gap_mean_differences.py` and
# `analysis/gap_ablate_dims.py`, behind Fig. 4a and 4c by their README). Their figures could not be read here.
# This chapter repeats the analysis on a real pretrained CLIP (ViT-B/16, 500 MS-COCO pairs, embeddings published by Liang et al. {cite:p}`liang2022mind`).
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - decompose the squared gap L2M$^2$ into per-dimension contributions and read which dimensions dominate;
# - ablate dimensions (zero them, renormalise) and track gap and retrieval as dimensions are removed;
# - explain why a control with randomly chosen dimensions is needed before concluding anything.
# ```

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU
profile = "auto"
model = "clip"  # the shipped embeddings to analyse

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import display

import gaplab
from gaplab import metrics
from gaplab.book import charts, check_claim, glue, glue_row
from gaplab.book.widgets import stepper
from gaplab.data.embeddings import embedding_info, load_embeddings
from gaplab.experiments.real_embeddings import ablation_effect, ablation_panels

prof = gaplab.resolve_profile(profile)
charts.setup()
img, txt = load_embeddings(model)
print(
    f"profile: {prof.name}; model: {embedding_info(model).model}; "
    f"{img.shape[0]} pairs of {img.shape[1]}-d embeddings"
)

# %% [markdown]
# ## The gap, dimension by dimension
#
# With $\bar x$ and $\bar y$ the means of the normalised image and text embeddings, the gap vector is
# $\Delta = \bar x - \bar y$ and
#
# $$\mathrm{L2M}^2 = \lVert\Delta\rVert^2 = \sum_{j=1}^{d} \Delta_j^2 .$$
#
# So dimension $j$ carries the share $\Delta_j^2 / \lVert\Delta\rVert^2$ of the squared gap. If the gap were an
# even shift of all 512 dimensions, each would carry about 0.2%.

# %%
diff = metrics.mean_differences(img, txt)
top_dims = [int(d) for d in metrics.top_gap_dimensions(img, txt, 10)]
share_top2 = metrics.gap_share(img, txt, top=2)
glue("ablation_top_dims", top_dims)
glue("gap_share_top2", share_top2)
glue("gap_share_top10", metrics.gap_share(img, txt, top=10))
glue("first_gap_dim", top_dims[0])
glue("second_gap_dim", top_dims[1])
charts.dimension_profile(
    diff, top=40, highlight=2, title="Per-dimension mean difference, largest 40 of 512"
)

# %% [markdown]
# Two dimensions stand out: {glue:text}`first_gap_dim` and {glue:text}`second_gap_dim`. Together they carry
# {glue:text}`gap_share_top2:.1%` of the squared gap, and the ten largest carry {glue:text}`gap_share_top10:.1%`,
# from 512 dimensions.
#
# ## Ablating the top dimensions
#
# To *ablate* a set of dimensions we set them to zero in every image and caption embedding and renormalise the rows.
# We ablate the $k$ dimensions with the largest $|\Delta_j|$, for $k = 0, \dots, 20$, and after each step measure
# L2M, RMG and retrieval R@1 in both directions (500 candidates). As a control we ablate $k$ *random*
# dimensions, repeated many times: any change the random control also shows is not about the gap dimensions.

# %%
measures = {
    "l2m": "L2M",
    "rmg": "RMG",
    "i2t_r1": "image->text R@1",
    "t2i_r1": "text->image R@1",
}
top = metrics.ablation_curve(img, txt, max_k=prof.ablation_max_k)
control = metrics.random_ablation_curve(
    img, txt, max_k=prof.ablation_max_k, repeats=prof.ablation_random_repeats, seed=0
)
glue_row(
    "ablation",
    {
        "l2m": top["l2m"],
        "rmg": top["rmg"],
        "i2t_r1": top["i2t_r1"],
        "t2i_r1": top["t2i_r1"],
        "random_l2m": control["l2m"]["mean"],
    },
)
print(f"random control: {prof.ablation_random_repeats} repeats per k")
charts.ablation_curves(
    top,
    control,
    measures=measures,
    max_k=prof.ablation_max_k,
    title="Ablating the top gap dimensions (orange) against random dimensions "
    "(grey, mean +/- sd)",
)

# %% [markdown]
# Move the slider under the chart to read the values at any $k$. The widget below shows the same numbers as a
# table for each $k$, with the dimensions removed so far.

# %%
stepper(
    ablation_panels(top, control, measures), description="dimensions ablated k", start=2
)

# %%
effect = ablation_effect(top, control, k=2)
for key in (
    "l2m_drop_top",
    "l2m_drop_random",
    "r1_change_top",
    "l2m_after_top",
    "rmg_after_top",
):
    glue(f"{key}2", effect[key])
glue("l2m_after_top20", top["l2m"][-1])
display(
    pd.DataFrame(
        {
            "no ablation": [top[m][0] for m in measures],
            "top 2 ablated": [top[m][2] for m in measures],
            "2 random ablated (mean)": [control[m]["mean"][2] for m in measures],
        },
        index=list(measures.values()),
    ).style.format(precision=3)
)

# %% [markdown]
# Removing the two top gap dimensions shrinks L2M by {glue:text}`l2m_drop_top2:.1%` (to
# {glue:text}`l2m_after_top2:.3f`), while removing two random dimensions changes it by
# {glue:text}`l2m_drop_random2:.2%` on average (a negative value means the gap grew slightly: renormalising after
# dropping dimensions that carry little gap gives the remaining gap dimensions more weight). RMG falls too, to
# {glue:text}`rmg_after_top2:.3f`. Retrieval moves by at most {glue:text}`r1_change_top2:.3f` in either direction:
# the dimensions that separate the modalities carry little of what tells one pair from another.
#
# The gap is concentrated but not *confined* to a few dimensions: after 20 ablated dimensions L2M is still
# {glue:text}`l2m_after_top20:.3f`. Each further dimension removes less; the rest of the gap is spread thinly over
# many dimensions. Schrodi et al. state that few dimensions drive the gap (their abstract). Their
# `gap_ablate_dims.py` also tracks ImageNet accuracy or COCO R@1 as the top dimensions are removed (Fig. 4c by
# their README), but what that figure shows could not be read here; that retrieval barely moves is this
# chapter's own finding on these embeddings (the last check below). Why would a model devote dimensions to
# telling modalities apart? The later chapters trace it to information imbalance between image and caption.
#
# ## What this chapter reproduces

# %% tags=["hide-input"]
check_claim(
    "A few embedding dimensions carry most of the modality gap "
    "(Schrodi et al. 2025, abstract)",
    share_top2 > 0.5,
    f"top 2 of {img.shape[1]} dimensions carry {share_top2:.1%} of L2M^2",
    prof,
)
check_claim(
    "Ablating the top gap dimensions shrinks the gap; ablating random ones does not",
    effect["l2m_drop_top"] > 0.2 and abs(effect["l2m_drop_random"]) < 0.02,
    f"L2M drop: top 2 dims {effect['l2m_drop_top']:.1%}, "
    f"2 random dims {effect['l2m_drop_random']:.2%}",
    prof,
)
check_claim(
    "Retrieval barely changes when the top gap dimensions are ablated "
    "(the book's test; the paper's values could not be read)",
    effect["r1_change_top"] <= 0.1,
    f"largest change of R@1 after ablating 2 dims = {effect['r1_change_top']:.3f}",
    prof,
)

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: dimension_ablation-ex1
#
# Ablate *all but* the top 10 gap dimensions (keep only those). How large is L2M, and how well does retrieval
# work in those 10 dimensions?
# ```
#
# ```{solution} dimension_ablation-ex1
# :label: dimension_ablation-sol1
# :class: dropdown
#
# `keep = metrics.top_gap_dimensions(img, txt, 10)`, `drop = np.setdiff1d(np.arange(512), keep)`, then
# `metrics.ablate(img, drop)` and `metrics.ablate(txt, drop)`. In those 10 dimensions the two modalities are far
# apart (L2M above 1) and retrieval falls to chance (R@1 about 1 in 500): the gap dimensions carry the modality, not the
# content.
# ```

# %% [markdown]
# ```{exercise}
# :label: dimension_ablation-ex2
#
# Run the chapter with `model = "clip_random"`. Is the gap of a random-init CLIP concentrated in a few dimensions
# too? What does that suggest about where the concentration comes from?
# ```
#
# ```{solution} dimension_ablation-ex2
# :label: dimension_ablation-sol2
# :class: dropdown
#
# The random-init model's gap is spread much more evenly (`metrics.gap_share(img, txt, 2)` is far smaller). The
# concentration in a few dimensions is something training produces, not something inherited from initialisation.
# ```

# %% [markdown]
# ```{exercise}
# :label: dimension_ablation-ex3
#
# Why does the random control renormalise after zeroing dimensions, instead of only zeroing them?
# ```
#
# ```{solution} dimension_ablation-ex3
# :label: dimension_ablation-sol3
# :class: dropdown
#
# CLIP compares unit vectors. Zeroing dimensions shortens each vector by a different amount; without renormalising,
# the measures would mix the effect of removing directions with the effect of shrinking norms, and the gap
# measures (defined on the sphere) would no longer apply.
# ```
