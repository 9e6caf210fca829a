# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: notebooks///ipynb,notebooks_py///py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# On Colab: fetch the book and install gaplab (elsewhere this cell does nothing).
import sys

if "google.colab" in sys.modules:
    import os, subprocess

    subprocess.run("test -d /content/gaplab || git clone -q --depth 1 https://github.com/gaplab-book/gaplab /content/gaplab;"
                   f" {sys.executable} -m pip install -q /content/gaplab", shell=True, check=True)
    os.environ["GAPLAB_DATA"] = "/content/gaplab/data"

# %% [markdown]
# # The cone effect and the temperature
#
# Before Schrodi et al., the leading explanation of the modality gap came from Liang et al. {cite:p}`liang2022mind`:
# a randomly initialised network maps all its inputs into a narrow **cone**, two separately initialised towers map
# them into two different cones, and contrastive training with a low temperature does not pull the cones together.
# This chapter reproduces the three pieces of that argument with this book's tools: the cone at initialisation,
# the temperature's hold on the gap, and what happens when the embeddings are moved along the gap by hand.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - measure the cone effect and explain why depth and nonlinearity narrow the cone;
# - train models at fixed temperatures and relate the logit scale to the gap;
# - shift embeddings along the gap vector and read what that does to retrieval and zero-shot accuracy;
# - say what the cone explanation leaves open, which the information-imbalance chapters address.
# ```

# %% tags=["parameters"]
profile = "auto"  # "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU

# %%
import numpy as np
import pandas as pd
from IPython.display import display

import gaplab
from gaplab import charts, cone, geometry, imbalance, temperature
from gaplab import metrics as M
from gaplab.book import check_claim, glue
from gaplab.data.embeddings import load_embeddings
from gaplab.models import MAD_PRESETS

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
cone_rows = []
for act in cone.ACTIVATIONS:
    for layer, value in enumerate(cone.mlp_cone(act, depth=depth, seed=0)):
        cone_rows.append({"layer": layer, "activation": act, "mean cosine": value})
cones = pd.DataFrame(cone_rows)
final_cos = cones[cones.layer == depth].set_index("activation")["mean cosine"]
glue("cone_mlp_relu", float(final_cos["relu"]))
glue("cone_mlp_min", float(final_cos.min()))
glue("cone_mlp_min_activation", str(final_cos.idxmin()))
charts.lines(cones, "layer", {"mean cosine": "mean cosine similarity of the outputs"}, series="activation",
             x_title="layers of a random MLP (width 512)", columns=1,
             title="The cone narrows with depth")

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
# embeddings Liang et al. released.

# %%
n_openclip = 8 if prof.name == "smoke" else 32
init_rows = []
for preset in MAD_PRESETS:
    init_rows.append({"model": preset, "source": "MAD preset, MAD inputs", **cone.mad_init_cone(preset, seed=0)})
init_rows.append({"model": "ViT-B-32 (open_clip)", "source": "no weights, noise inputs",
                  **cone.open_clip_init_cone("ViT-B-32", n=n_openclip, seed=0)})
for name in ("clip", "convirt", "videoclip", "clasp"):
    img, txt = load_embeddings(f"{name}_random")
    init_rows.append({"model": name, "source": "shipped random-init embeddings", "image_mean_cos": M.mean_cosine(img),
                      "text_mean_cos": M.mean_cosine(txt), "l2m": M.l2m(img, txt)})
init = pd.DataFrame(init_rows)
mad_init = init[init.model.isin(MAD_PRESETS)]
glue("cone_mean_cos_init", float(mad_init[["image_mean_cos", "text_mean_cos"]].to_numpy().mean()))
glue("cone_min_cos_init", float(init[["image_mean_cos", "text_mean_cos"]].to_numpy().min()))
glue("cone_min_l2m_init", float(init["l2m"].min()))
display(init.round(3))

# %% [markdown]
# Averaged over the three MAD presets and both towers, the mean within-modality cosine at initialisation is
# {glue:text}`cone_mean_cos_init:.3f`; across every model in the table the smallest is
# {glue:text}`cone_min_cos_init:.3f` (two random directions in hundreds of dimensions would give about 0). Every
# model starts with its two modalities apart: the smallest L2M at initialisation is
# {glue:text}`cone_min_l2m_init:.3f`.

# %%
check_claim(
    "Freshly initialised encoders map their inputs into narrow cones (Liang et al. 2022)",
    float(mad_init[["image_mean_cos", "text_mean_cos"]].to_numpy().min()) > 0.3,
    f"MAD presets' within-modality mean cosine: "
    + ", ".join(f"{r.model} {r.image_mean_cos:.2f}/{r.text_mean_cos:.2f}" for r in mad_init.itertuples()),
    prof,
)

# %% [markdown]
# ## The temperature keeps the gap
#
# Liang et al. found that the gap left after training depends strongly on the temperature of the contrastive loss.
# Here the MAD recipe ($k = 2$) is trained with the logit scale (the inverse temperature) frozen at each of
# 1, 10, 20, 30, 50 and 100.

# %%
t_runs = temperature.temperature_runs(prof)
t_rows = [{"logit scale": s, "l2m": r.history[-1]["l2m"], "rmg": r.history[-1]["rmg"],
           "zero-shot digit accuracy": r.history[-1]["zero_shot_digit_acc"], "entropy": r.history[-1]["entropy"],
           "l2m at init": r.history[0]["l2m"]} for s, r in t_runs.items()]
t_table = pd.DataFrame(t_rows)
rho_t = imbalance.spearman(t_table["logit scale"], t_table["l2m"])
glue("temperature_logit_scale", [float(s) for s in t_table["logit scale"]])
glue("temperature_l2m", [float(v) for v in t_table["l2m"]])
glue("temperature_rmg", [float(v) for v in t_table["rmg"]])
glue("temperature_zero_shot", [float(v) for v in t_table["zero-shot digit accuracy"]])
glue("temperature_rho", rho_t)
glue("temperature_l2m_low", float(t_table["l2m"].iloc[0]))
glue("temperature_l2m_high", float(t_table["l2m"].iloc[-1]))
glue("temperature_acc_low", float(t_table["zero-shot digit accuracy"].iloc[0]))
glue("temperature_acc_high", float(t_table["zero-shot digit accuracy"].iloc[-1]))
display(t_table.round(3))
charts.lines(t_table, "logit scale", {"l2m": "L2M", "rmg": "RMG", "zero-shot digit accuracy": "zero-shot digit accuracy"},
             x_title="logit scale (log axis)", x_scale="log", title="The gap after training, by temperature")

# %% [markdown]
# At logit scale 1 the trained model ends with L2M {glue:text}`temperature_l2m_low:.3f`; at 100 (CLIP's cap) with
# {glue:text}`temperature_l2m_high:.3f` (Spearman correlation of the scale with L2M:
# {glue:text}`temperature_rho:.2f`). A low temperature (high scale) keeps the gap, as Liang et al. report. The
# price of a high temperature is visible too: zero-shot accuracy is {glue:text}`temperature_acc_low:.3f` at scale 1
# against {glue:text}`temperature_acc_high:.3f` at 100, since a soft softmax barely pushes non-matching pairs apart.

# %%
check_claim(
    "A lower temperature (higher logit scale) leaves a larger gap after training (Liang et al. 2022; Spearman >= 0.8)",
    rho_t >= 0.8,
    f"Spearman {rho_t:.2f}; L2M by scale = " + ", ".join(f"{s:g}: {v:.3f}" for s, v in zip(t_table["logit scale"], t_table["l2m"])),
    prof,
)

# %% [markdown]
# ## Moving the embeddings along the gap
#
# If the gap were only a nuisance, closing it by hand should help. Liang et al. shift both modalities along the gap
# vector $\Delta$ (the mean image embedding minus the mean text embedding): $x' = \mathrm{normalise}(x - \lambda\Delta)$,
# $y' = \mathrm{normalise}(y + \lambda\Delta)$. At $\lambda = 0.5$ the two means meet (before renormalising);
# negative $\lambda$ widens the gap. On the pretrained CLIP embeddings of the first chapter:

# %%
img, txt = load_embeddings("clip")
lambdas = [round(float(v), 3) for v in np.linspace(-0.25, 0.75, 21)]
shift_rows = []
for lam in lambdas:
    x, y = geometry.shift_along_gap(img, txt, lam)
    shift_rows.append({"lambda": lam, "l2m": M.l2m(x, y), "i2t R@1": M.recall_at_k(x, y, k=1, direction="i2t"),
                       "t2i R@1": M.recall_at_k(x, y, k=1, direction="t2i")})
shift = pd.DataFrame(shift_rows)
glue("shift_lambda", lambdas)
glue("shift_l2m", [float(v) for v in shift["l2m"]])
glue("shift_i2t_r1", [float(v) for v in shift["i2t R@1"]])
glue("shift_r1_at_0", float(shift.loc[shift["lambda"] == 0, "i2t R@1"].iloc[0]))
glue("shift_r1_max", float(shift["i2t R@1"].max()))
glue("shift_r1_min", float(shift["i2t R@1"].min()))
glue("shift_l2m_at_half", float(shift.loc[shift["lambda"] == 0.5, "l2m"].iloc[0]))
glue("shift_r1_at_half", float(shift.loc[shift["lambda"] == 0.5, "i2t R@1"].iloc[0]))
glue("shift_best_lambda", float(shift.loc[shift["i2t R@1"].idxmax(), "lambda"]))
charts.lines(shift, "lambda", {"l2m": "L2M", "i2t R@1": "image -> text R@1", "t2i R@1": "text -> image R@1"},
             x_title="shift lambda", title="Pretrained CLIP (500 COCO pairs) shifted along its gap")

# %% [markdown]
# The shift closes the gap (L2M {glue:text}`shift_l2m_at_half:.3f` at $\lambda = 0.5$), and closing it this way
# costs retrieval: image-to-text R@1 falls from {glue:text}`shift_r1_at_0:.3f` unshifted to
# {glue:text}`shift_r1_at_half:.3f` where the means meet. The best R@1 over the range,
# {glue:text}`shift_r1_max:.3f`, is reached at $\lambda =$ {glue:text}`shift_best_lambda:.2f`, close to no shift at
# all, and widening the gap further costs again. Why would a shift reorder anything? Before renormalising, the
# score of caption $j$ for image $x$ becomes $(x - \lambda\Delta)^\top(y_j + \lambda\Delta)
# = x^\top y_j + \lambda x^\top\Delta - \lambda \Delta^\top y_j - \lambda^2\lVert\Delta\rVert^2$, and the term
# $-\lambda\Delta^\top y_j$ differs from caption to caption; the renormalisation then rescales captions unequally
# too. The trained model's retrieval is tuned to its embeddings as they are, gap included. On a MAD model ($k = 2$), with the class prompts moved like
# captions:

# %%
mad_run = imbalance.imbalance_runs(prof, ks=(2,), seeds=(0,), progress=False)[(2, 0)]
mad_acc = temperature.zero_shot_under_shift(mad_run, lambdas)
glue("shift_mad_zero_shot", mad_acc)
glue("shift_mad_acc_at_0", float(mad_acc[lambdas.index(0.0)]))
glue("shift_mad_acc_min", float(min(mad_acc)))
glue("shift_mad_acc_max", float(max(mad_acc)))
glue("shift_mad_l2m", M.l2m(mad_run.eval_image, mad_run.eval_text))
charts.lines(pd.DataFrame({"lambda": lambdas, "zero-shot digit accuracy": mad_acc}), "lambda",
             {"zero-shot digit accuracy": "zero-shot digit accuracy"}, x_title="shift lambda", columns=1,
             title="A MAD model (k = 2) shifted along its gap")

# %% [markdown]
# Unshifted, the MAD model's zero-shot digit accuracy is {glue:text}`shift_mad_acc_at_0:.3f`; over the range it
# stays between {glue:text}`shift_mad_acc_min:.3f` and {glue:text}`shift_mad_acc_max:.3f`, slightly lower as the gap
# closes. Its gap is small (L2M {glue:text}`shift_mad_l2m:.3f`), so the same $\lambda$ moves its embeddings much
# less than CLIP's. Liang et al. report that such shifts can raise or lower zero-shot accuracy depending on the
# task; on these two models, closing the gap by hand does not help. Schrodi et al. take this further: the gap is
# not a defect the model failed to remove but a consequence of what the captions leave out (the imbalance
# chapters).
#
# ## Exercises
#
# 1. Repeat the MLP experiment without biases. Which activations still produce a cone, and why?
# 2. The cone at initialisation explains a gap at step 0. The temperature runs above all start from the same
#    initialisation (L2M at init in the table). What does that say about the cone as the *cause* of the gap that is
#    left after training?
#
# ```{admonition} Solution 1
# :class: dropdown
# Build the layers with `torch.nn.Linear(..., bias=False)` (copy `cone.mlp_cone`'s loop). ReLU and sigmoid still
# narrow the cone, because their outputs are all non-negative (positive) so every pair of outputs has a positive
# cosine; tanh and a linear network keep the mean cosine near 0, since without a bias nothing is shared by all
# inputs and both maps are odd functions.
# ```
#
# ```{admonition} Solution 2
# :class: dropdown
# `t_table[["logit scale", "l2m at init", "l2m"]]`: the initial gap is the same for every run, but the final gap
# ranges widely with the temperature. The initial cones set where training starts; the training objective and its
# temperature decide how much of the gap remains. The imbalance chapters show another factor that decides it.
# ```
