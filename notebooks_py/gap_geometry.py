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
# # Gap geometry: where images and captions live in CLIP's space
#
# CLIP maps an image and its caption to unit vectors in one shared space and trains them to point the same way.
# Yet the two sets of vectors do not mix: image embeddings gather in one region of the sphere, caption
# embeddings in another. Liang et al. {cite:p}`liang2022mind` named this the **modality gap** (their Sec. 1,
# Fig. 1b); Schrodi et al. {cite:p}`schrodi2025twoeffects` traced it, together with CLIP's object bias, to one cause
# (their abstract). This chapter looks at
# the gap in a real pretrained CLIP and measures it in several ways.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - show the modality gap in a picture and say what that picture can and cannot prove;
# - compute L2M, L2I and the relative modality gap (RMG), and explain why RMG is needed beside L2M;
# - describe the *cone effect* and why it makes a randomly initialised model show a gap too;
# - test whether two embedding sets are linearly separable, and compare how two modalities organise the same data.
# ```
#
# **Data.** This chapter uses embeddings that Liang et al. published with their code (the
# `Figure_1_Modality_Gap/features_*.npy` files of their repository; `data/liang2022-embeddings/SOURCE.md`): 500
# MS-COCO image-caption pairs encoded by OpenAI's CLIP ViT-B/16 (their `repr_clip.ipynb` loads ViT-B/16), the same architecture with random weights, and three other
# contrastive models (ConVIRT on medical images and reports, VideoCLIP, CLASP on protein sequences), each with its
# random twin (the `_random` rows in the tables below). Row *i* of the image side and row *i* of the text side are a
# matched pair.

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto": paper on a GPU
profile = "auto"
model = "clip"  # the shipped embeddings to look at closely

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import display

import gaplab
from gaplab import metrics
from gaplab.book import charts, check_claim, glue
from gaplab.book.papers import glue_paper_numbers
from gaplab.data.embeddings import EMBEDDING_MODELS, embedding_info, load_embeddings
from gaplab.experiments.real_embeddings import gap_table
from gaplab.metrics.geometry import joint_pca

prof = gaplab.resolve_profile(profile)
charts.setup()
img, txt = load_embeddings(model)
print(
    f"profile: {prof.name}; model: {embedding_info(model).model}; "
    f"{img.shape[0]} pairs of {img.shape[1]}-d embeddings"
)

# %% [markdown]
# ## Seeing the gap
#
# A picture first. We project all 1000 normalised embeddings (500 images, 500 captions) onto the two directions of
# largest joint variance (principal component analysis) and join some matched pairs with a grey line.

# %%
img_2d, txt_2d, explained = joint_pca(img, txt)
glue("pc1_share", float(explained[0]))
glue("pc12_share", float(explained[:2].sum()))
charts.pair_projection(
    img_2d,
    txt_2d,
    title=f"{embedding_info(model).model}: images and captions, "
    "first two principal components",
)

# %% [markdown]
# The images and captions form two separate clouds, and the lines between matched pairs all run in about the same
# direction. The first principal component alone explains {glue:text}`pc1_share:.1%` of the joint variance: the
# largest single source of variation among these 1000 vectors is *which modality a vector came from*, not what it
# shows. A 2-D projection can still mislead (the two components keep {glue:text}`pc12_share:.1%` of the variance,
# the rest is out of view), so we measure the gap in the full space.
#
# ## Measuring the gap
#
# All measures below work on L2-normalised embeddings $x_i$ (images) and $y_i$ (texts), $i = 1..N$.
#
# - **L2M**, Liang et al.'s gap (their Sec. 4.2): the distance between the modality means,
#   $\mathrm{L2M} = \lVert \bar x - \bar y \rVert_2$ with $\bar x = \frac1N\sum_i x_i$. It lies in $[0, 2]$.
# - **L2I**: the mean distance between matched pairs, $\frac1N \sum_i \lVert x_i - y_i \rVert_2$.
# - **RMG**, Schrodi et al.'s relative modality gap, as their code computes it (`compute_rmg` in
#   `analysis/gap_precompute.py`). With $d(u, v) = (1 - \cos(u, v))/2$, let
#   $m$ be the mean $d$ over matched pairs (at least $10^{-3}$) and $d_{\mathrm{img}}$, $d_{\mathrm{txt}}$ the mean
#   $d$ over pairs of distinct samples within each modality. Then
#   $\mathrm{RMG} = \dfrac{m}{m + (d_{\mathrm{img}} + d_{\mathrm{txt}})/2}$.
#   L2M can be small simply because all embeddings crowd together; RMG compares the distance between matched
#   pairs with the spread inside each modality, so it is comparable across models.
#
# gaplab computes all three in $O(Nd)$: for unit rows, $\sum_{i\neq j} \langle x_i, x_j\rangle =
# \lVert \sum_i x_i \rVert^2 - N$, so no $N \times N$ matrix is needed.

# %%
table = gap_table(seed=0, neighbour_k=prof.neighbour_k)
shown = ["N", "L2M", "L2I", "RMG", "I->T R@1", "T->I R@1"]
display(
    table[shown]
    .style.format(precision=3)
    .set_caption("Gap measures of the shipped embeddings")
)

# %%
row, rnd = table.loc[model], table.loc[f"{model}_random"]
glue("clip_l2m", row["L2M"])
glue("clip_random_l2m", rnd["L2M"])
glue("clip_rmg", row["RMG"])
glue("clip_l2i", row["L2I"])
glue("clip_random_rmg", rnd["RMG"])
glue("clip_i2t_r1", row["I->T R@1"])
glue_paper_numbers("liang-gap-clip")  # the paper's value, from data/paper-numbers
charts.model_comparison(
    table.reset_index(),
    "L2M",
    title="L2M: distance between the modality means",
    domain=(0, 2),
) & charts.model_comparison(
    table.reset_index(), "RMG", title="RMG: relative modality gap", domain=(0, 1)
)

# %% [markdown]
# For the pretrained CLIP, the means of the two modalities lie {glue:text}`clip_l2m:.3f` apart (L2M on the book's
# 500 shipped pairs, CLIP ViT-B/16). Liang et al. report {glue:text}`paper_liang_gap_clip:.2f` (their Sec. 4.2) on
# 5,000 MS-COCO validation pairs of CLIP ViT-B/32, the model their Sec. 5.2 names when it starts from that same
# gap (see {doc}`../book/paper_numbers`). Model and sample both differ, so the two values need not agree. RMG is
# {glue:text}`clip_rmg:.3f`: matched pairs are far apart compared with the spread inside each modality. Retrieval still works (image-to-text R@1 {glue:text}`clip_i2t_r1:.3f` among 500
# captions): a gap does not stop the model from ranking the right caption first, because ranking only needs the
# right caption to be *closer than the others*.
#
# The same architecture with random weights already has an even larger gap (L2M {glue:text}`clip_random_l2m:.3f`,
# RMG {glue:text}`clip_random_rmg:.3f`). Liang et al. explain this with the *cone effect* (their Sec. 2, Fig. 2).
#
# ## The cone effect
#
# In 512 dimensions two independent random directions have a cosine near 0 (standard deviation about
# $1/\sqrt{512} \approx 0.044$). A randomly initialised deep network does not spread its outputs like that: it maps
# all inputs into a narrow cone. The mean cosine between distinct embeddings of one modality measures how narrow.

# %%
cone = table[["mean cos (image)", "mean cos (text)"]]
display(
    cone.style.format(precision=3).set_caption(
        "Mean cosine between distinct embeddings of one modality"
    )
)
random_rows = table[table["weights"] == "random init"]
cone_min_random = float(
    random_rows[["mean cos (image)", "mean cos (text)"]].min().min()
)
glue("cone_min_random", cone_min_random)
glue("clip_random_cos_img", rnd["mean cos (image)"])
glue("clip_random_cos_txt", rnd["mean cos (text)"])

# %% [markdown]
# Every random-init encoder here puts its outputs in a narrow cone: the smallest mean cosine among them is
# {glue:text}`cone_min_random:.2f`, far above the near-zero value of random directions (for CLIP's random twin,
# {glue:text}`clip_random_cos_img:.2f` for images and {glue:text}`clip_random_cos_txt:.2f` for texts). Two separately
# initialised encoders point their cones in different directions, so the two modalities start apart (Liang et
# al., Sec. 2.3, Fig. 2c). Liang et al. argue that contrastive training with a low temperature then preserves this
# initial gap (Sec. 4); Schrodi et al. name the information imbalance between images and captions as the driving
# factor (their abstract). Later chapters test both.
#
# ## Linear separability
#
# If a gap is real, one hyperplane should split images from captions. We fit a logistic regression on 80% of the
# pairs and test it on the other 20%, the split of Fahim et al.'s evaluator (`get_linear_seperability` in their
# `src/evaluator.py`); a pair's image and caption always fall in the same split.

# %%
sep = table[["linear separability"]]
display(
    sep.style.format(precision=3).set_caption(
        "Held-out accuracy of a linear image-vs-text classifier"
    )
)
glue("clip_linear_separability", row["linear separability"])

# %% [markdown]
# A linear classifier tells CLIP's image embeddings from its caption embeddings with held-out accuracy
# {glue:text}`clip_linear_separability:.3f`. The two modalities occupy linearly separable regions of the sphere.
#
# ## Do the two modalities organise the data alike?
#
# Closeness across modalities is one question; structure within each modality is another. For each pair we take the
# 10 nearest neighbours of the image among the images and of the caption among the captions, and count how many
# neighbours the two lists share. If both modalities organised the samples alike, the share would be near 1; two
# unrelated organisations share about $k/(N-1)$.

# %%
overlap = table[["neighbour overlap", "overlap by chance"]]
display(
    overlap.style.format(precision=3).set_caption(
        f"Shared share of the {prof.neighbour_k} nearest neighbours"
    )
)
glue("clip_neighbour_overlap", row["neighbour overlap"])
glue("overlap_chance", row["overlap by chance"])

# %% [markdown]
# For CLIP the two neighbour lists share {glue:text}`clip_neighbour_overlap:.2f` of their members: far more than
# chance ({glue:text}`overlap_chance:.3f`), yet far from identical. An image's neighbourhood is shaped by what the
# image shows (layout, colours, background); a caption's by what the caption *says*, which is usually much less.
# That difference in information content is the thread of this book.
#
# ## What this chapter reproduces

# %% tags=["hide-input"]
check_claim(
    "A pretrained CLIP shows a modality gap (Liang et al. 2022, Sec. 1, Fig. 1b)",
    row["L2M"] > 0.5 and row["linear separability"] >= 0.95,
    f"L2M = {row['L2M']:.3f}, linear separability = {row['linear separability']:.3f}",
    prof,
)
check_claim(
    "Random-init encoders map their inputs into a narrow cone "
    "(Liang et al. 2022, Sec. 2.1)",
    cone_min_random > 0.25,
    "smallest within-modality mean cosine among random-init models = "
    f"{cone_min_random:.3f}",
    prof,
)
check_claim(
    "The gap is present already at random initialisation (Liang et al. 2022, Fig. 1c)",
    rnd["L2M"] > 0.5,
    f"L2M of CLIP's random twin = {rnd['L2M']:.3f}",
    prof,
)

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: gap_geometry-ex1
#
# Set `model = "convirt"` in the parameters cell and run the chapter again. How do its gap and its cone compare
# with CLIP's? Why might a medical model's text side be so spread out (mean cosine near 0.13)?
# ```
#
# ```{solution} gap_geometry-ex1
# :label: gap_geometry-sol1
# :class: dropdown
#
# `gap_table()` already holds the answer: ConVIRT's L2M is about as large as CLIP's, but its text side is barely a
# cone (mean cosine about 0.13) while its image side is a very narrow one (about 0.76). Medical reports differ in
# many details, while chest X-rays look much alike; retrieval among 500 such pairs is near chance.
# ```

# %% [markdown]
# ```{exercise}
# :label: gap_geometry-ex2
#
# RMG clamps the matched distance $m$ at $10^{-3}$. Construct two embedding sets where, without the clamp, RMG
# would be 0 however the samples are spread, and compute RMG with `gaplab.metrics.rmg`.
# ```
#
# ```{solution} gap_geometry-ex2
# :label: gap_geometry-sol2
# :class: dropdown
#
# Take identical sets, `x = y = rng.normal(size=(50, 8))`. Every matched distance is 0, so without the clamp RMG
# would be 0/(0 + spread) = 0 whatever the spread. With the clamp, `metrics.rmg(x, x)` is
# 0.001 / (0.001 + d), a small positive number that still shrinks as the samples spread out.
# ```

# %% [markdown]
# ```{exercise}
# :label: gap_geometry-ex3
#
# Shift every caption embedding by the mean difference $\bar x - \bar y$ and renormalise. What happens to L2M
# to RMG and to R@1?
# ```
#
# ```{solution} gap_geometry-ex3
# :label: gap_geometry-sol3
# :class: dropdown
#
# With `x`, `y` normalised, `y2 = y + (x.mean(0) - y.mean(0))`, renormalised. L2M nearly vanishes (about 0.007),
# but RMG stays near 0.41, because matched pairs are still far apart compared with the spread within each modality,
# and R@1 falls (image-to-text from 0.55 to about 0.39): renormalising moves each caption by a different amount and
# reorders them. Closing the gap by a shift is not free; Liang et al. study such shifts (their Sec. 4.2 and
# Sec. 5).
# ```
