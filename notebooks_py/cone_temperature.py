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
# # The cone effect and the temperature
#
# Before Schrodi et al., the leading explanation of the modality gap came from Liang et al. {cite:p}`liang2022mind`
# (their Sec. 2 and Sec. 4):
# a randomly initialised network maps all its inputs into a narrow **cone**, two separately initialised towers map
# them into two different cones, and contrastive training with a low temperature does not pull the cones together.
# This chapter reproduces the pieces of that argument with this book's tools: the cone at initialisation, the
# temperature's hold on the gap, the loss along the gap, what happens when the embeddings are moved along the gap
# by hand, and a model whose gap is closed before training starts.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - measure the cone effect and explain why depth and nonlinearity narrow the cone;
# - train models at fixed temperatures and relate the logit scale to the gap;
# - draw Liang et al.'s loss landscape and read from it which gap the loss prefers at a given temperature;
# - explain with Liang et al.'s three-dimensional toy why mismatched pairs keep a gap at a low temperature;
# - shift embeddings along the gap vector and read what that does to retrieval and zero-shot accuracy;
# - close the gap at initialisation with an orthogonal map and follow what training does to it;
# - say what the cone explanation leaves open, which the information-imbalance chapters address.
# ```

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU
profile = "auto"

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import display

import gaplab
from gaplab import metrics as M
from gaplab.book import charts, check_claim, glue, glue_row
from gaplab.book.papers import glue_paper_numbers
from gaplab.data.embeddings import load_embeddings
from gaplab.experiments import cone, imbalance, temperature
from gaplab.metrics import geometry
from gaplab.training.models import MAD_PRESETS

prof = gaplab.resolve_profile(profile)
charts.setup()
print(f"profile: {prof.name}")

# %% [markdown]
# ## A random network is a cone
#
# Feed Gaussian noise (mean cosine similarity between two inputs: about 0) through a randomly initialised MLP and
# measure the mean cosine similarity of the outputs after each layer. Each layer adds the same bias to every input
# and, with ReLU or sigmoid, keeps only non-negative or positive outputs: the outputs share a common component that
# grows layer after layer, and the cloud of embeddings closes into a cone.

# %%
depth = 10
cones = cone.mlp_cone_table(depth=depth, seed=0)  # cone.mlp_cone per activation
final_cos = cones[cones.layer == depth].set_index("activation")["mean cosine"]
glue_row(
    "cone_mlp",
    {
        "relu": final_cos["relu"],
        "min": final_cos.min(),
        "min_activation": str(final_cos.idxmin()),
    },
)
charts.lines(
    cones,
    "layer",
    {"mean cosine": "mean cosine similarity of the outputs"},
    series="activation",
    x_title="layers of a random MLP (width 512)",
    columns=1,
    title="The cone narrows with depth",
)

# %% [markdown]
# After ten layers the mean cosine of the outputs is {glue:text}`cone_mlp_relu:.3f` with ReLU, and even the most open
# of the four activations ({glue:text}`cone_mlp_min_activation`) ends at {glue:text}`cone_mlp_min:.3f`.
#
# ## Real encoders at initialisation
#
# The same holds for the encoders CLIP models are built from. The table measures, for each model at
# initialisation, the mean within-modality cosine of its image and text embeddings and the gap (L2M) between them:
# this book's three MAD presets (on MAD images and $k = 2$ captions; the batch normalisation statistics of the
# CNN come from the same images, as an untrained model has none), open_clip's ViT-B-32 built without weights (fed
# noise images and random token sequences), and the random-initialisation twins of the four models whose
# embeddings Liang et al. released (their `Figure_1_Modality_Gap/features_*_random.npy`).

# %%
init = cone.init_cone_table(prof, seed=0)
mad_init = init[init.model.isin(MAD_PRESETS)]
towers = ["image_mean_cos", "text_mean_cos"]
glue_row(
    "cone",
    {
        "mean_cos_init": mad_init[towers].to_numpy().mean(),
        "min_cos_init": init[towers].to_numpy().min(),
        "min_l2m_init": init["l2m"].min(),
    },
)
display(init.round(3))

# %% [markdown]
# Averaged over the three MAD presets and both towers, the mean within-modality cosine at initialisation is
# {glue:text}`cone_mean_cos_init:.3f`; across every model in the table the smallest is
# {glue:text}`cone_min_cos_init:.3f` (two random directions in hundreds of dimensions would give about 0). Every
# model starts with its two modalities apart: the smallest L2M at initialisation is
# {glue:text}`cone_min_l2m_init:.3f`.

# %% tags=["hide-input"]
check_claim(
    "Freshly initialised encoders map their inputs into narrow cones "
    "(Liang et al. 2022, Sec. 2.1, Fig. 2a)",
    mad_init[towers].to_numpy().min() > 0.3,
    "MAD presets' within-modality mean cosine: "
    + ", ".join(
        f"{r.model} {r.image_mean_cos:.2f}/{r.text_mean_cos:.2f}"
        for r in mad_init.itertuples()
    ),
    prof,
)

# %% [markdown]
# ## The temperature keeps the gap
#
# Liang et al. found that the gap left after fine-tuning CLIP depends on the temperature of the contrastive loss
# (Sec. 4.2, its paragraph on fine-tuning; the values are in their Supp. Fig. 8).
# Here the MAD recipe ($k = 2$) is trained with the logit scale (the inverse temperature) frozen at each of
# 1, 10, 20, 30, 50 and 100.

# %%
t_runs = temperature.temperature_runs(prof)
t_table = temperature.temperature_table(t_runs)
rho_t = imbalance.spearman(t_table["logit scale"], t_table["l2m"])
acc = t_table["zero-shot digit accuracy"]
glue_row(
    "temperature",
    {
        "logit_scale": t_table["logit scale"],
        "l2m": t_table["l2m"],
        "rmg": t_table["rmg"],
        "zero_shot": acc,
        "rho": rho_t,
        "l2m_low": t_table["l2m"].iloc[0],
        "l2m_high": t_table["l2m"].iloc[-1],
        "acc_low": acc.iloc[0],
        "acc_high": acc.iloc[-1],
    },
)
display(t_table.round(3))
charts.lines(
    t_table,
    "logit scale",
    {
        "l2m": "L2M",
        "rmg": "RMG",
        "zero-shot digit accuracy": "zero-shot digit accuracy",
    },
    x_title="logit scale (log axis)",
    x_scale="log",
    title="The gap after training, by temperature",
)

# %% [markdown]
# At logit scale 1 the trained model ends with L2M {glue:text}`temperature_l2m_low:.3f`; at 100 (CLIP's cap) with
# {glue:text}`temperature_l2m_high:.3f` (Spearman correlation of the scale with L2M:
# {glue:text}`temperature_rho:.2f`). A low temperature (high scale) keeps the gap, as Liang et al. report (Sec. 4.2). The
# price of a high temperature is visible too: zero-shot accuracy is {glue:text}`temperature_acc_low:.3f` at scale 1
# against {glue:text}`temperature_acc_high:.3f` at 100, since a soft softmax barely pushes non-matching pairs apart.

# %% tags=["hide-input"]
check_claim(
    "A lower temperature (higher logit scale) leaves a larger gap after training "
    "(Liang et al. 2022, Sec. 4.2; Spearman >= 0.8)",
    rho_t >= 0.8,
    f"Spearman {rho_t:.2f}; L2M by scale = "
    + ", ".join(
        f"{s:g}: {v:.3f}" for s, v in zip(t_table["logit scale"], t_table["l2m"])
    ),
    prof,
)

# %% [markdown]
# ## The loss along the gap
#
# Liang et al.'s main evidence that contrastive training *keeps* the gap is a loss landscape (their Fig. 3b-d).
# Take the trained embeddings, slide both modalities towards each other along the unit gap direction $\hat g$
# (mean image minus mean caption embedding, normalised): a shift by the distance $d$ moves every caption by
# $+\tfrac d2\hat g$ and every image by $-\tfrac d2\hat g$, then renormalises both. $d = 0$ is the embeddings as
# they are; positive $d$ closes the gap (the means cross a little beyond $d$ = the gap), negative $d$ widens it.
# At each $d$, evaluate the CLIP loss over fixed batches of 50 pairs, at several temperatures. If the loss is
# lowest at $d = 0$, training has no reason to close the gap.
#
# Where the book follows the authors' notebook (`plot_optimization_exp.ipynb`): the shift, the batches of 50,
# the grid $d = -5, -4.75, \dots, 4.75$, the logit scales 1 to 100 and the second axis of their plots, the signed
# distance between the two means after the shift. Where it differs: the notebook's symmetric loss passes the
# image-to-text logits twice, so it is the image-to-text loss alone; the book uses both directions, as CLIP is
# trained (the image-to-text variant is printed below for comparison). The embeddings are the 500 COCO pairs of
# the first chapter (CLIP ViT-B/16), not their 5,000 pairs of CLIP ViT-B/32.

# %%
from gaplab.experiments import landscape

img, txt = load_embeddings("clip")
land = landscape.loss_landscape(img, txt)
lows = landscape.landscape_minima(land)
lows_i2t = landscape.landscape_minima(
    landscape.loss_landscape(img, txt, directions="i2t")
)
at_scale = lows.set_index("logit scale")  # the minimum at each logit scale
glue_row(
    "landscape",
    {
        "logit_scale": lows["logit scale"],
        "min_shift": lows["shift"],
        "min_centroid": lows["centroid distance"],
        "min_shift_i2t": lows_i2t["shift"],
        "gap": M.l2m(img, txt),
        "min_shift_100": at_scale.loc[100, "shift"],
        "min_shift_1": at_scale.loc[1, "shift"],
        "min_centroid_1": at_scale.loc[1, "centroid distance"],
    },
)
display(
    lows.assign(**{"shift at minimum (i2t only)": lows_i2t["shift"]})
    .style.format(precision=3)
    .hide(axis="index")
)
charts.landscape(
    land[land["shift"].between(-2, 3)],
    lows,
    title="CLIP loss as the modalities slide along the gap",
)

# %% [markdown]
# The dashed line is the embeddings as trained (gap {glue:text}`landscape_gap:.3f`), the red dot each curve's
# minimum (the charts show $-2 \le d \le 3$ of the computed range). At logit scale 100, the scale CLIP was trained
# at, the loss is lowest at $d =$ {glue:text}`landscape_min_shift_100:.2f`: the gap as it is. At logit scale 1 the
# minimum moves to $d =$ {glue:text}`landscape_min_shift_1:.2f`, where the means are
# {glue:text}`landscape_min_centroid_1:.3f` apart: with a soft softmax, closing most of the gap pays. This is
# Liang et al.'s reading (Sec. 4.2, Results): at CLIP's temperature the gap is where the loss wants it, so nothing in training pushes
# it closed; a higher temperature would. With the image-to-text loss alone, as in their notebook, the minima
# fall at the shifts printed in the last column.

# %% tags=["hide-input"]
at_100, at_1 = at_scale.loc[100, "shift"], at_scale.loc[1, "shift"]
check_claim(
    "At CLIP's temperature (logit scale 100) the loss is lowest at the gap as "
    "trained; at a high temperature (logit scale 1) closing the gap lowers it "
    "(Liang et al. 2022, Fig. 3)",
    abs(at_100) <= 0.25 and at_1 > 0.25,
    f"shift at the minimum: logit scale 100: {at_100:.2f}, "
    f"logit scale 1: {at_1:.2f} (grid step 0.25)",
    prof,
)

# %% [markdown]
# ## Mismatched pairs keep the gap
#
# Why does training not close the gap by itself? Liang et al. (Sec. 4.3, Fig. 3e-g) point to pairs that do not
# match: a caption that fits another image better than its own. A toy in three dimensions makes this visible,
# and the authors have two versions of it:
#
# - **the paper's text** (Sec. 4.3; the caption of Fig. 3): six image-caption pairs on the unit sphere, two of
#   them mismatched; the images stay fixed and only the captions move to close the gap. The authors'
#   `Figure_3_Contrastive_Learning/3d_sphere.ipynb` builds this one;
# - **their notebook** `Figure_3_Contrastive_Learning/mismatched_simulation.ipynb`: nine pairs on two rings, and
#   both modalities move.
#
# The book leads with the notebook's version, because its symmetric move makes the temperature argument below
# easy to see, and then reads the paper's version beside it. In the notebook's version nine image points lie on a
# ring at height $z$ of the unit sphere, their nine captions on the same ring at $-z$, so $z = 0$ means no gap
# and $z \to 1$ the widest. Read the CLIP loss as $z$ moves, once with every pair matched and once with the
# captions of images 3 and 8 exchanged (the ring's two closest points).
#
# Where the book follows `mismatched_simulation.ipynb`: the ring, the swapped pair, the temperatures 1 to 1/1000
# (logit scales 1 to 1000) and the loss (both directions). Where it differs: their grid of 100 heights in
# $[-1, 1]$ misses $z = 0$; the loss is the same at $z$ and $-z$, so the book reads it on $[0, 1]$ in steps of
# 0.01. Up to three further swapped pairs extend their single one to higher mismatch rates.

# %%
from gaplab.experiments import mismatch

toy = mismatch.loss_against_z(swaps=(0, 1, 2, 3, 4))
toy_low = mismatch.loss_minima(toy)
by_swap = toy_low.pivot(index="logit scale", columns="swapped pairs", values="z")
# from which scale the one-swap minimum leaves z = 0, and s(1 - z^2) there
swap_moved = mismatch.moved_minima(by_swap[1])
glue_row(
    "mismatch",
    {
        "logit_scales": by_swap.index,
        "min_z_matched": by_swap[0],
        "min_z_swapped": by_swap[1],
        "matched_max_z": by_swap[0].max(),
        "z_at_1000": by_swap.loc[1000.0, 1],
        **swap_moved,
    },
)
display(
    by_swap.rename_axis(columns="z at the minimum; swapped pairs:")
    .style.format(precision=2)
    .format_index("{:g}")
)
charts.mismatch_explorer(toy, toy_low, title="The toy's loss as the rings move apart")

# %% [markdown]
# Pick a logit scale and a number of swapped pairs above; the grey curve is the matched toy at the same
# scale and the red dots mark the minima. With every pair matched, the loss is lowest where the rings meet at
# every temperature (largest $z$ at a minimum: {glue:text}`mismatch_matched_max_z:.2f`). With one pair swapped,
# the minimum leaves $z = 0$ from logit scale {glue:text}`mismatch_first_moved:g` on and sits at
# $z =$ {glue:text}`mismatch_z_at_1000:.2f` at logit scale 1000: at a low temperature, a gap lowers the loss
# that the one bad pair costs. Two or more swapped pairs move the minimum away already at lower scales.
#
# The toy has a simple reason for this, which the curves show once you know it. Both rings carry the same
# layout, so every logit is $s(1-z^2)\cos\varphi - s z^2$ with $\varphi$ the angle between the two points
# seen from above. The last term is the same for every entry and cancels in the softmax: the height acts only
# through an effective logit scale $s(1-z^2)$. Moving the rings apart is the toy's one way to *raise its
# temperature*, and a mismatched pair wants a softer softmax, here about $s(1-z^2) \approx$
# {glue:text}`mismatch_eff_low:.0f` to {glue:text}`mismatch_eff_high:.0f` at each minimum (on the grid of 0.01).
# At a fixed low temperature the gap is what lets the loss have the temperature it would choose.

# %% tags=["hide-input"]
z_m, z_s = by_swap[0], by_swap[1]
check_claim(
    "With matched pairs the toy's loss is lowest with no gap at every temperature; "
    "one swapped pair moves the minimum away from zero gap at low temperatures "
    "(Liang et al. 2022, Sec. 4.3; the ring of their mismatched_simulation.ipynb)",
    bool(
        (z_m == 0).all()
        and z_s.loc[1.0] == 0
        and (z_s.loc[[100.0, 1000.0]] > 0.5).all()
    ),
    f"z at the minimum, matched: max {z_m.max():.2f}; "
    f"one swap: {z_s.loc[1.0]:.2f} at logit scale 1, "
    f"{z_s.loc[100.0]:.2f} at 100, {z_s.loc[1000.0]:.2f} at 1000",
    prof,
)

# %% [markdown]
# ### The paper's set-up: images fixed, captions moved
#
# Now the version of the paper's text (Sec. 4.3), laid out as in `3d_sphere.ipynb`: six images fixed on the
# equator, 20° apart in longitude (−20° to 80°); each caption on its image's meridian, with the first two
# exchanged (the mismatched pairs $(I_0, T_0)$ and $(I_1, T_1)$ of the paper); the captions tilted down their
# meridians, at the notebook's logit scales 1, 5, 35, 50 and 100 (the legend of Fig. 3f-g). The notebook tilts
# from −90° to 90° in steps of 1°; the loss is the same at $\theta$ and $-\theta$, so the book reads 0° to 90°.

# %%
paper_toy = mismatch.loss_against_tilt()
paper_low = mismatch.loss_minima(paper_toy, along="tilt")
tilt_by = paper_low.pivot(index="logit scale", columns="swapped pairs", values="tilt")
gap_by = paper_low.pivot(index="logit scale", columns="swapped pairs", values="gap")
# from which scale the one-swap minimum leaves no tilt, and s cos(tilt) there
tilt_moved = mismatch.moved_minima(tilt_by[1], along="tilt")
glue_row(
    "paper_toy",
    {
        "logit_scales": tilt_by.index,
        "tilt_matched": tilt_by[0],
        "tilt_swapped": tilt_by[1],
        "matched_max_tilt": tilt_by[0].max(),
        "tilt_100": tilt_by.loc[100.0, 1],
        "gap_100": gap_by.loc[100.0, 1],
        **tilt_moved,
    },
)
display(
    pd.DataFrame(
        {
            "tilt at the minimum, matched (°)": tilt_by[0],
            "tilt at the minimum, one swap (°)": tilt_by[1],
            "gap (L2M) there, one swap": gap_by[1],
        }
    )
    .style.format(precision=2)
    .format_index("{:g}")
)
swapped_curves = paper_toy[paper_toy["swapped pairs"] == 1]
charts.lines(
    swapped_curves.assign(
        **{"logit scale": swapped_curves["logit scale"].map("{:g}".format)}
    ),
    "tilt",
    {"loss": "CLIP loss, one swapped pair"},
    series="logit scale",
    columns=1,
    x_title="captions' tilt in degrees (0: no gap)",
    title="The paper's set-up: the images stay, the captions move",
)

# %% [markdown]
# The reading is the ring's. With every pair matched the loss is lowest with no gap at every temperature
# (largest tilt at a minimum: {glue:text}`paper_toy_matched_max_tilt:.0f`°), as the paper reports for the toy
# without the mismatch (Sec. 4.3, Supp. Fig. 9). With the two captions exchanged, the minimum leaves zero from
# logit scale {glue:text}`paper_toy_first_moved:g` on; at 100, CLIP's scale, it lies at a tilt of
# {glue:text}`paper_toy_tilt_100:.0f`°, where the means are {glue:text}`paper_toy_gap_100:.3f` apart.
#
# The effective-scale explanation carries over, in another form. The ring needed both modalities to move alike:
# only then is the term $-s z^2$ the same for every logit and cancels. Here the images stay on the equator, so
# there is no such term at all: every logit is $s\cos\theta\cos\varphi$, with $\theta$ the tilt and $\varphi$
# the angle between the two meridians, and the tilt acts only through the effective logit scale $s\cos\theta$.
# At each minimum that moved it is about {glue:text}`paper_toy_eff_low:.0f` to
# {glue:text}`paper_toy_eff_high:.0f` (on the grid of 1°), the softness this layout would choose. What changes is
# the geometry, not the argument: the captions alone carry the gap, and the number the minimum settles at belongs
# to the layout (six points over 100° of longitude here, nine round a full ring there), so the effective scale at
# the minimum differs between the two toys.

# %% tags=["hide-input"]
check_claim(
    "Images fixed, captions moved (the set-up of the paper's text): matched pairs "
    "are lowest with no gap at every temperature, one swapped pair moves the "
    "minimum away at low temperatures (Liang et al. 2022, Sec. 4.3, Fig. 3f-g)",
    bool(
        (tilt_by[0] == 0).all()
        and tilt_by.loc[1.0, 1] == 0
        and (tilt_by.loc[[50.0, 100.0], 1] > 30).all()
    ),
    f"tilt at the minimum, matched: max {tilt_by[0].max():.0f} degrees; one swap: "
    + ", ".join(f"{t:.0f} at {s:g}" for s, t in tilt_by[1].items()),
    prof,
)

# %% [markdown]
# The toy holds the points in place. The book's addition lets them move: the 18 points start on the rings at
# $z = 0.5$ (L2M 1.0) and are trained as free unit vectors with the CLIP loss at a fixed logit scale (Adam,
# {glue:text}`mismatch_free_steps` steps). With free points a fixed swap is only a relabelling they can absorb,
# so the mismatch is drawn anew at every step: 1, 2 or 4 random pairs of captions exchanged, as a caption that
# fits several images pulls on all of them. The gap after training:

# %%
free = mismatch.free_points_grid(z0=0.5, steps=prof.toy_steps)
free_gap = free.pivot(index="logit scale", columns="swapped pairs", values="l2m")
glue_row(
    "mismatch_free",
    {
        "steps": prof.toy_steps,
        "matched_low": free_gap.loc[[1.0, 5.0, 10.0], 0].max(),
        "matched_high": free_gap.loc[[100.0, 1000.0], 0].min(),
        "one_swap_100": free_gap.loc[100.0, 1],
        "one_swap_1": free_gap.loc[1.0, 1],
        "four_swaps_1": free_gap.loc[1.0, 4],
    },
)
charts.lines(
    free.assign(**{"swapped pairs": free["swapped pairs"].astype(str)}),
    "logit scale",
    {"l2m": "gap after training (L2M)"},
    series="swapped pairs",
    x_scale="log",
    title="Free points trained from a gap of 1.0",
)

# %% [markdown]
# Matched free points close the gap at logit scales up to 10 (L2M at most
# {glue:text}`mismatch_free_matched_low:.3f`) and keep most of it at 100 and above (at least
# {glue:text}`mismatch_free_matched_high:.3f`): there the loss is already near zero and its gradient with it,
# which is the temperature's hold of the previous sections. With mismatched pairs the gap *widens*: one swapped
# pair per step ends at L2M {glue:text}`mismatch_free_one_swap_100:.3f` at logit scale 100, near the largest
# possible gap of 2, where every image is equally far from every caption. At logit scale 1 one swap still lets
# the gap close ({glue:text}`mismatch_free_one_swap_1:.3f`), four do not
# ({glue:text}`mismatch_free_four_swaps_1:.3f`). Free points in three dimensions have few other ways to soften the
# softmax, so they exaggerate; a real encoder in 512 dimensions keeps a gap, not an antipode, but the direction of
# the effect is Liang et al.'s (Sec. 4.3).

# %% tags=["hide-input"]
check_claim(
    "Trained at a low temperature, points with mismatched pairs keep a wider gap "
    "than matched ones (Liang et al. 2022, Sec. 4.3)",
    bool(
        (
            free_gap.loc[[50.0, 100.0, 1000.0], 1]
            > free_gap.loc[[50.0, 100.0, 1000.0], 0]
        ).all()
    ),
    "L2M after training at logit scales 50/100/1000: matched "
    + "/".join(f"{v:.3f}" for v in free_gap.loc[[50.0, 100.0, 1000.0], 0])
    + ", one swap "
    + "/".join(f"{v:.3f}" for v in free_gap.loc[[50.0, 100.0, 1000.0], 1]),
    prof,
)

# %% [markdown]
# ## Moving the embeddings along the gap
#
# If the gap were only a nuisance, closing it by hand should help downstream. The same shifts, over the same range,
# now read through retrieval on the pretrained CLIP embeddings:

# %%
shifts = list(landscape.LIANG_SHIFTS)
shift = landscape.shift_effects(img, txt, shifts)
at0 = shift["shift"] == 0
closest = shift.loc[shift["centroid distance"].abs().idxmin()]
r1 = shift["i2t R@1"]
glue_row(
    "shift",
    {
        "distance": shifts,
        "l2m": shift["l2m"],
        "i2t_r1": r1,
        "r1_at_0": r1[at0].iloc[0],
        "r1_max": r1.max(),
        "best_shift": shift.loc[r1.idxmax(), "shift"],
        "closed_at": closest["shift"],
        "l2m_closed": closest["l2m"],
        "r1_closed": closest["i2t R@1"],
    },
)
charts.lines(
    shift[shift["shift"].between(-2, 3)],
    "shift",
    {
        "centroid distance": "signed distance of the means",
        "i2t R@1": "image -> text R@1",
        "t2i R@1": "text -> image R@1",
    },
    x_title="shift d",
    title="Pretrained CLIP (500 COCO pairs) shifted along its gap",
)

# %% [markdown]
# The means come closest at $d =$ {glue:text}`shift_closed_at:.2f` (L2M {glue:text}`shift_l2m_closed:.3f`), and
# closing the gap this way costs retrieval: image-to-text R@1 falls from {glue:text}`shift_r1_at_0:.3f` unshifted
# to {glue:text}`shift_r1_closed:.3f` there. The best R@1 over the range, {glue:text}`shift_r1_max:.3f`, is at
# $d =$ {glue:text}`shift_best_shift:.2f`. Why would a shift reorder anything? Before renormalising, the score of
# caption $j$ for image $x$ becomes
# $(x - \tfrac d2\hat g)^\top(y_j + \tfrac d2\hat g) = x^\top y_j + \tfrac d2\,x^\top\hat g - \tfrac d2\,\hat g^\top
# y_j - \tfrac{d^2}{4}$, and the term $-\tfrac d2\,\hat g^\top y_j$ differs from caption to caption; the
# renormalisation then rescales captions unequally too. The trained model's retrieval is tuned to its embeddings as
# they are, gap included.
#
# On a MAD model ($k = 2$), the same shifts with the class prompts moved like captions, for every factor:

# %%
mad_run = imbalance.imbalance_runs(prof, ks=(2,), seeds=(0,), progress=False)[(2, 0)]
mad_shift = landscape.zero_shot_under_shift(mad_run, shifts)
by_factor = mad_shift.pivot(index="shift", columns="factor", values="accuracy")
attributes = by_factor.drop(columns="digit").mean(axis=1)  # the mean over attributes
glue_row(
    "shift_mad",
    {
        "zero_shot": by_factor["digit"],
        "acc_at_0": by_factor.loc[0.0, "digit"],
        "attr_at_0": attributes.loc[0.0],
        "attr_best": attributes.max(),
        "attr_best_shift": attributes.idxmax(),
        "digit_best_shift": by_factor["digit"].idxmax(),
        "l2m": M.l2m(mad_run.eval_image, mad_run.eval_text),
    },
)
charts.lines(
    mad_shift[mad_shift["shift"].between(-2, 3)],
    "shift",
    {"accuracy": "zero-shot accuracy"},
    series="factor",
    columns=1,
    x_title="shift d (> 0 closes the gap)",
    title="A MAD model (k = 2) shifted along its gap",
)

# %% [markdown]
# Unshifted, the MAD model's zero-shot digit accuracy is {glue:text}`shift_mad_acc_at_0:.3f` and its mean
# attribute accuracy {glue:text}`shift_mad_attr_at_0:.3f`. The digit is best at $d =$
# {glue:text}`shift_mad_digit_best_shift:.2f`; the attributes on average at $d =$
# {glue:text}`shift_mad_attr_best_shift:.2f` (mean accuracy {glue:text}`shift_mad_attr_best:.3f`). Its gap is
# small (L2M {glue:text}`shift_mad_l2m:.3f`), so the embeddings pass each other early in the range. Liang et al.
# report that such shifts can raise or lower zero-shot accuracy depending on the task (Sec. 5.1, Table 1). A shift moves every class
# prompt by the same vector; the closing chapter tries the subtler construction of Schrodi et al. (ideal words
# without their shared component) on the same models.
#
# ## Closing the gap at initialisation
#
# If the cones at initialisation were the whole story, a model that starts without a gap should stay without one.
# Liang et al. (Sec. 4.4) test this: they close the gap of a freshly initialised CLIP with an orthogonal map of the
# text embeddings and train it from scratch on MS-COCO (τ = 1/100, batch 64, 3 seeds). The gap at
# initialisation falls from {glue:text}`paper_liang_init_original_start:.3f` to
# {glue:text}`paper_liang_init_amended_start:.3f`, and after training it is back at
# {glue:text}`paper_liang_init_amended_end:.3f`, against {glue:text}`paper_liang_init_original_end:.3f` without the
# amendment: {glue:text}`paper_liang_init_share:.0f`% of it returns (their numbers, with their sources, are in
# {doc}`../book/paper_numbers`). The book does the same on MAD: the orthogonal map is the Procrustes rotation that
# best carries the text embeddings of 2,048 training captions onto their images, folded into the text projection
# before the first step (`TrainConfig(align_init=True)`). It is trained twice, beside the same model without the
# amendment: at Liang et al.'s temperature (logit scale fixed at 100; the unamended run is the temperature
# experiment's) and with the book's usual learnable temperature ($k = 2$, one seed each). A rotation keeps the
# shape of the text cone, so the gap at step 0 is small but not zero when the two cones differ in width.

# %%
# with and without the gap closed at step 0, at logit scale 100 and learnable
init_runs = temperature.align_init_runs(prof)
per_run, overall = temperature.align_init_summary(init_runs)
for key, row in per_run.items():
    glue_row(f"init_{key}", row)
# a rotation keeps the length of the text mean: the gap cannot fall below the
# difference of the two lengths
cnn = mad_init[mad_init.model == "mad-cnn"].iloc[0]
bound = abs(cnn.image_mean_cos**0.5 - cnn.text_mean_cos**0.5)
glue_row("init", {**overall, "bound": bound})
glue_paper_numbers(  # Liang et al.'s Sec. 4.4, from data/paper-numbers
    "liang-init-original-start",
    "liang-init-original-end",
    "liang-init-amended-start",
    "liang-init-amended-end",
    "liang-init-share",
)
labels = temperature.ALIGN_INIT_LABELS
charts.compare_histories(
    {labels[key]: run.history for key, run in init_runs.items()},
    {"l2m": "L2M", "zero_shot_digit_acc": "zero-shot digit accuracy"},
    x_title="training step",
    title="Closing the gap at initialisation, then training",
)

# %% [markdown]
# | | L2M at step 0 | L2M after training | digit accuracy |
# |---|---|---|---|
# | MAD, logit scale 100, as initialised | {glue:text}`init_plain_l2m_start:.3f` | {glue:text}`init_plain_l2m_end:.3f` | {glue:text}`init_plain_acc_end:.3f` |
# | MAD, logit scale 100, gap closed at initialisation | {glue:text}`init_aligned_l2m_start:.3f` | {glue:text}`init_aligned_l2m_end:.3f` | {glue:text}`init_aligned_acc_end:.3f` |
# | MAD, learnable, as initialised | {glue:text}`init_learnable_plain_l2m_start:.3f` | {glue:text}`init_learnable_plain_l2m_end:.3f` | {glue:text}`init_learnable_plain_acc_end:.3f` |
# | MAD, learnable, gap closed at initialisation | {glue:text}`init_learnable_aligned_l2m_start:.3f` | {glue:text}`init_learnable_aligned_l2m_end:.3f` | {glue:text}`init_learnable_aligned_acc_end:.3f` |
# | Liang et al. (Sec. 4.4), MS-COCO, τ = 1/100, as initialised | {glue:text}`paper_liang_init_original_start:.3f` | {glue:text}`paper_liang_init_original_end:.3f` | |
# | Liang et al. (Sec. 4.4), MS-COCO, τ = 1/100, gap closed | {glue:text}`paper_liang_init_amended_start:.3f` | {glue:text}`paper_liang_init_amended_end:.3f` | |
#
# At Liang et al.'s temperature, training opens a gap again in the aligned model: it ends at
# {glue:text}`init_share:.0%` of the unaligned model's (Liang et al.: {glue:text}`paper_liang_init_share:.0f`%). With the learnable temperature the
# aligned model's gap also jumps back at first (L2M {glue:text}`init_learnable_peak:.3f` at step
# {glue:text}`init_learnable_peak_step`), then both models shrink their gaps as the temperature settles (logit
# scale {glue:text}`init_learnable_scale:.1f` at the end), and the aligned one ends at
# {glue:text}`init_learnable_share:.0%` of the unaligned model's gap, against {glue:text}`init_share:.0%` at logit
# scale 100. The cone at initialisation is one reason for the gap, not the only one: with a low temperature the
# loss keeps a gap of its own whatever the start.

# %% tags=["hide-input"]
a0, a1 = per_run["aligned"]["l2m_start"], per_run["aligned"]["l2m_end"]
p1 = per_run["plain"]["l2m_end"]
check_claim(
    "At a low temperature, a gap closed at initialisation opens again in training, "
    "though less than without the amendment (Liang et al. 2022, Sec. 4.4)",
    a1 > 2 * a0 and a1 < p1,
    f"logit scale 100, aligned: L2M {a0:.3f} at step 0, {a1:.3f} after training; "
    f"unaligned: {p1:.3f} after training",
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
    "cone_temperature",
    [
        "temperature_rho",
        "temperature_l2m_low",
        "temperature_l2m_high",
        "temperature_acc_low",
        "temperature_acc_high",
        "init_plain_l2m_end",
        "init_aligned_l2m_end",
        "init_learnable_aligned_l2m_end",
        "shift_mad_l2m",
    ],
    build=prof.name,
)

# %%
measures = {
    "temperature_rho": "Spearman of L2M over logit scale",
    "temperature_l2m_low": "L2M, lowest scale",
    "temperature_l2m_high": "L2M, highest scale",
    "init_aligned_l2m_end": "L2M, gap closed at start",
}
charts.scale_trend(ladder.trend("cone_temperature", measures, build=prof.name))

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: cone_temperature-ex1
#
# Repeat the MLP experiment without biases. Which activations still produce a cone, and why?
# ```
#
# ```{solution} cone_temperature-ex1
# :label: cone_temperature-sol1
# :class: dropdown
#
# `cone.mlp_cone(act, bias=False)` builds the same layers without biases. ReLU and sigmoid still
# narrow the cone, because their outputs are all non-negative (positive) so every pair of outputs has a positive
# cosine; tanh and a linear network keep the mean cosine near 0, since without a bias nothing is shared by all
# inputs and both maps are odd functions.
# ```

# %% [markdown]
# ```{exercise}
# :label: cone_temperature-ex2
#
# The cone at initialisation explains a gap at step 0. The temperature runs above all start from the same
# initialisation (L2M at init in the table). What does that say about the cone as the *cause* of the gap that is
# left after training?
# ```
#
# ```{solution} cone_temperature-ex2
# :label: cone_temperature-sol2
# :class: dropdown
#
# `t_table[["logit scale", "l2m at init", "l2m"]]`: the initial gap is the same for every run, but the final gap
# ranges widely with the temperature. The initial cones set where training starts; the training objective and its
# temperature decide how much of the gap remains. The imbalance chapters show another factor that decides it.
# ```

# %% [markdown]
# ```{exercise}
# :label: cone_temperature-ex3
#
# The landscape's minimum sits at the gap as trained for logit scale 100 and moves towards closing it at logit
# scale 1. Evaluate `landscape.loss_landscape(img, txt, logit_scales=...)` for the scales 40, 50, 60, 70 and 80:
# from which scale on is the minimum at $d = 0$?
# ```
#
# ```{solution} cone_temperature-ex3
# :label: cone_temperature-sol3
# :class: dropdown
#
# `landscape.landscape_minima(landscape.loss_landscape(img, txt, logit_scales=(40, 50, 60, 70, 80)))`: on the
# chapter's grid (steps of 0.25) the minimum is one step towards closing ($d = 0.25$) at 40 and 50, and at $d = 0$
# from 60 on. These are the shipped embeddings, which need no training, so the answer is the same on every machine.
# The model was trained at a logit scale of 100, and its gap is where the loss at that scale wants it; the
# further the scale falls below, the more closing pays.
# ```

# %% [markdown]
# ```{exercise}
# :label: cone_temperature-ex4
#
# The gap of the aligned model at step 0 is small but not zero. Show that no rotation of the text side can bring
# L2M below $\lvert\, \lVert\bar x\rVert - \lVert\bar y\rVert \,\rvert$ (the lengths of the two means), and
# estimate that bound from the mean cosines of the `mad-cnn` preset (the model the aligned runs train) in the
# cone table.
# ```
#
# ```{solution} cone_temperature-ex4
# :label: cone_temperature-sol4
# :class: dropdown
#
# A rotation $R$ keeps lengths, so $\lVert R\bar y\rVert = \lVert\bar y\rVert$, and by the triangle inequality
# $\lVert\bar x - R\bar y\rVert \ge \lvert\, \lVert\bar x\rVert - \lVert\bar y\rVert \,\rvert$. For $N$ unit
# vectors, $\lVert\bar x\rVert^2 = \tfrac1N + \tfrac{N-1}{N}\,c$ with $c$ their mean pairwise cosine, about
# $c$ for large $N$. With the `mad-cnn` row of the cone table (images and captions at initialisation) the bound is
# $\lvert\sqrt{c_{\text{img}}} - \sqrt{c_{\text{txt}}}\rvert \approx$ {glue:text}`init_bound:.3f`, close to the
# aligned model's L2M at step 0 ({glue:text}`init_aligned_l2m_start:.3f`; the cone table measures other samples
# than the run's held-out set, so the two need not agree exactly). The cones' widths, not their directions, are
# what the rotation cannot change.
# ```

# %% [markdown]
# ```{exercise}
# :label: cone_temperature-ex5
#
# In the mismatched-pairs toy, use the effective logit scale $s(1-z^2)$ and the minimum with one swapped pair
# at logit scale 50 to predict where that curve's minimum lies at logit scale 200. Check the prediction with
# `mismatch.loss_against_z(logit_scales=(200,), swaps=(1,))`.
# ```
#
# ```{solution} cone_temperature-ex5
# :label: cone_temperature-sol5
# :class: dropdown
#
# The loss depends on $s$ and $z$ only through $c = s(1-z^2)$, so every curve with one swap has its minimum at
# the same $c^*$. At logit scale 50 the minimum is at $z = 0.71$, so $c^* \approx 50\,(1 - 0.71^2) \approx 24.8$,
# and at 200 it should sit at $z = \sqrt{1 - 24.8/200} \approx 0.94$. `mismatch.loss_minima(...)` on the
# chapter's grid gives $z = 0.94$ (0.937 on a grid of 0.001). The toy needs no training, so the answer is the
# same on every machine.
# ```
