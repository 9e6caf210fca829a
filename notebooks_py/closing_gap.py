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
# # Closing the gap, and how each side is organised
#
# If the gap comes from what captions leave out, two questions follow. First, does closing the gap help zero-shot
# classification? Schrodi et al. {cite:p}`schrodi2025twoeffects` say in their abstract that there are
# "indications that closing the gap indeed leads to improvements". Their script `analysis/gap_ideal_words.py`,
# which the authors' README maps to their Table 5, measures this with "ideal words" on two attribute-object data
# sets (MIT-States, UT-Zappos), for attributes and objects separately. The numbers of Table 5 could not be read
# for the book (see {doc}`../book/paper_numbers`), so this chapter can follow what the script computes, not
# compare with what the table shows. The book adds a question of its own: do attributes, which captions name less
# often than objects, gain more than the object? Second, images and captions need not arrange the classes alike:
# the two sides are trained only to match pairs, not to agree on which classes are neighbours. The abstract says
# the two embedding spaces are "differently organized"; the authors' README maps their test of it,
# `analysis/gap_neighborhood_test.py`, to their Table 2. This chapter runs both tests on the MAD models of the
# imbalance chapter, one per number $k$ of attributes in each caption, and says where the book's protocol follows
# the authors' code and where it differs.
#
# ```{admonition} Learning objectives
# :class: tip
# After this chapter you can
# - build ideal words from compositional captions, and say what subtracting their shared component $u_0$ or
#   adding the mean gap vector does;
# - tell the authors' dot-product rule from the usual cosine rule, and why adding one vector to every class changes
#   one and not the other;
# - run the organisation test, read a normalised Kendall-tau distance, and put it in scale with controls;
# - explain why the authors' script's Kendall number is not the distance between the two rankings.
# ```

# %% tags=["parameters"]
# "smoke" (seconds), "cpu" (the book build), "paper" (GPU); "auto" picks paper on a GPU
profile = "auto"

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
from IPython.display import display

import gaplab
from gaplab.book import charts, check_claim, glue, glue_row
from gaplab.experiments import closing, imbalance, organisation

prof = gaplab.resolve_profile(profile)
charts.setup()
seeds = tuple(range(prof.imbalance_seeds))
print(f"profile: {prof.name}; seeds per k: {len(seeds)}")

# %% [markdown]
# The runs are the imbalance chapter's grid (six values of $k$, {glue:text}`closing_seeds` seeds each); they come
# from the run cache when that chapter has been built, and are trained otherwise.

# %%
runs = imbalance.imbalance_runs(prof, seeds=seeds, progress=False)
glue("closing_seeds", len(seeds))

# %% [markdown]
# ## Closing the gap with ideal words
#
# Zero-shot classification compares an image with one text vector per class. The authors' script compares two
# kinds of text vector; this section builds the MAD analogue of each on every run of the grid. The object is the
# digit, the attributes are the five other factors (thickness, swelling, fracture, scale, colour).
#
# - **plain prompt** (the script's "real words"): one caption per class. The script uses "an image of a
#   {attribute} object" and "image of a {object}". MAD captions are class words joined by "-", with no template
#   words, so the book's plain prompt is the class word alone, read as a one-word caption: "red" for the colour
#   red, "3" for the digit 3. Like the script's templates it is a caption the model was not trained on (except the
#   digits at $k = 0$). Image and prompt are normalised; an image goes to the class of largest cosine.
# - **ideal words** (after Trager et al. 2023, as in the script): the script embeds every composition "an image of
#   a {attribute} {object}."; an attribute's ideal word is the mean of the normalised embeddings over all objects,
#   an object's the mean over all attributes. MAD's compositions are the two-word captions
#   "⟨attribute word⟩-⟨digit⟩", attribute first as in the template: each of the 16 attribute words of the five
#   attribute factors with each of the 10 digits, 160 captions. A colour's ideal word is the mean over the ten
#   digits, a digit's the mean over all 16 attribute words. Ideal words stay unnormalised, and an image goes to
#   the class with the largest dot product (the script's rule).
# - **closing the gap**: the script then subtracts $u_0$, the mean over all compositions (one vector, shared by
#   attributes and objects; here the mean of the 160), or adds the mean gap vector $\Delta$ (mean training image
#   minus the mean embedding of all plain prompts), or both. Each adds one vector to every class vector, which
#   under the dot rule adds the same number to every class's score: "ideal words", "ideal words $-\,u_0$",
#   "ideal words + gap" and "ideal words $-\,u_0$ + gap" predict alike (up to exact ties). The script prints the
#   accuracy of all four anyway. Closing the gap shows in the other number it prints for each: the mean cosine
#   between *ideal images* and ideal words. Ideal images are the same means on the image side, over normalised
#   training images (the mean image of each attribute value and of each digit), and $u_{0,\mathrm{img}}$ their
#   overall mean, removed from the ideal images wherever $u_0$ is removed from the ideal words.
#
# Two rows are the book's own. The **prompt ensemble** is the zero-shot rule of the other chapters: cosine with
# the normalised mean of 64 captions drawn as in training, each containing the class word. **Prompt ensemble, gap
# subtracted** removes the held-out pairs' mean gap vector from every image before the cosine; under the cosine
# rule such a shift can change predictions.
#
# Where the book follows `analysis/gap_ideal_words.py`: one plain prompt per class and the cosine rule; ideal
# words as unnormalised means of normalised composition embeddings over all compositions, and the dot rule; one
# $u_0$ over all compositions; ideal images, $u_{0,\mathrm{img}}$ and $\Delta$ from training images; the four
# ways of closing the gap and a cosine for each. Where it differs, and why:
#
# - words, not templates: MAD has no "an image of a ..."; the bare class word is the nearest plain prompt, and
#   "⟨attribute⟩-⟨digit⟩" the nearest composition;
# - two-word compositions, while the models were trained on captions of $k + 1$ words (the digit and $k$
#   attributes in random order). The script's composition also pairs one attribute with one object, and a
#   two-word caption is the same for every $k$, so the ideal words of all runs are built alike;
# - accuracy is measured on each run's held-out images (the script uses the data sets' test split), and the ideal
#   images and $\Delta$ come from the first {glue:text}`closing_n_ideal` images of the run's own training set,
#   generated again as the trainer generates it, not from all of it. That is the book's choice, to keep the
#   section cheap on two CPU cores; every class mean still averages many images (a tenth of them per digit, half
#   of them for a swollen or an unswollen glyph);
# - the script casts "ideal words minus $u_0$" to 16-bit floats; the book keeps 64-bit ones, which can only
#   break exact ties differently.
#
# The shipped embeddings of real models (`data/liang2022-embeddings`) come without a text encoder, so no
# composition can be embedded for them: the construction is not run on real models here (with weights at hand,
# `python -m gaplab report --closing` runs it on a real attribute data set).

# %%
n_ideal_images = 2000  # training images behind the ideal images and the gap vector
close = closing.closing_over_runs(runs, n_images=n_ideal_images)
close_k = closing.closing_summary(close)
glue("closing_n_ideal", min(n_ideal_images, prof.mad_n_train))
shown = [
    "plain prompt",
    "ideal words",
    "prompt ensemble",
    "prompt ensemble, gap subtracted",
]
cols = ["k"] + [f"{role} {v}" for role in ("object", "attribute") for v in shown]
display(close_k[cols].style.format("{:.3f}", subset=cols[1:]).hide(axis="index"))

# %%
# under the dot rule the four ideal-word rows should agree image for image;
# count the rows where they do not
differ = sum(
    int((close[v] != close["ideal words"]).sum()) for v in closing.DOT_VARIANTS
)
glue("closing_dot_differ", differ)
print(
    "rows of `close` where a way of closing the gap changes the dot-rule "
    f"accuracy: {differ}"
)

# %%
long = close.melt(
    id_vars=["k", "seed", "role"],
    value_vars=shown,
    var_name="class vectors",
    value_name="accuracy",
)
per_k = long.groupby(["k", "role", "class vectors"], as_index=False)["accuracy"].mean()
wide = per_k.pivot_table(
    index=["k", "class vectors"], columns="role", values="accuracy"
).reset_index()
charts.lines(
    wide,
    "k",
    {"object": "digit accuracy", "attribute": "mean attribute accuracy"},
    series="class vectors",
    x_title="attributes per caption (k)",
    columns=2,
    title="Zero-shot accuracy: plain prompt, ideal words, prompt ensemble",
)

# %%
ks = [int(k) for k in close_k["k"]]
named = close_k[close_k["k"] >= 1]  # at k = 0 no caption names an attribute
for role in ("object", "attribute"):
    glue_row(
        f"closing_{role}",
        {
            "acc_before": close_k[f"{role} plain prompt"],
            "acc_after": close_k[f"{role} ideal words - u0"],
            "acc_ensemble": close_k[f"{role} prompt ensemble"],
            "gain_mean": named[f"{role} gain"].mean(),
        },
    )
attr_gain, obj_gain = named["attribute gain"].mean(), named["object gain"].mean()
better = int((named["attribute gain"] > named["object gain"]).sum())
glue_row("closing", {"ks": ks, "attr_wins": better, "named_ks": len(named)})
print(
    f"k >= 1: mean gain attributes {attr_gain:+.3f}, digit {obj_gain:+.3f}; "
    f"attributes gain more at {better} of {len(named)} k"
)

# %%
# one gain per run (k >= 1, each seed) and role: above 0?
# and the attributes' above the digit's?
test = closing.gain_test(close)
p_attr, p_obj, p_more = test["p_attr"], test["p_obj"], test["p_more"]
holds = p_attr < 0.05 and p_obj < 0.05
glue_row(
    "closing",
    {
        "runs": test["runs"],
        "p_attr": p_attr,
        "p_obj": p_obj,
        "p_more": p_more,
        "verdict": "holds" if holds else "does not hold",
        "more": "more" if p_more < 0.05 else "not significantly more",
    },
)

# %% [markdown]
# Over the models whose captions name attributes at all ($k \ge 1$), ideal words (with or without $u_0$ and
# $\Delta$) change the mean attribute accuracy against the plain prompt by
# {glue:text}`closing_attribute_gain_mean:+.3f` and the digit accuracy by
# {glue:text}`closing_object_gain_mean:+.3f`; the four ways of closing the gap differ in accuracy in
# {glue:text}`closing_dot_differ` rows of the table, as the dot rule says they must not. Tested over the
# {glue:text}`closing_runs` runs (one-sided $t$-tests), the attribute gain is above zero with $p =$
# {glue:text}`closing_p_attr:.3f` and the digit's with $p =$ {glue:text}`closing_p_obj:.3f`: the authors'
# contrast, ideal words against one plain prompt for attributes and for objects,
# {glue:text}`closing_verdict` on these models at the 5% level. The book's own question, whether attributes
# gain more than the digit, gets $p =$ {glue:text}`closing_p_more:.3f`: they gain
# {glue:text}`closing_more` (the attributes come off better at {glue:text}`closing_attr_wins` of
# {glue:text}`closing_named_ks` values of $k$). At $k = 0$ the attribute rows measure words the model never read
# (every caption is a digit), so they are shown but left out of the test.
#
# Since $u_0$ and $\Delta$ cannot move a dot-rule prediction, whatever the ideal words gain in accuracy comes from
# the ideal words themselves: a class word averaged over its compositions with every value of the other factor,
# and compared by dot product, so that its length counts. That is the book's reading of the script's numbers,
# not a statement of the paper.

# %% tags=["hide-input"]
evidence = (
    f"mean gain of ideal words - u0 over the plain prompt, k = 1..5: attributes "
    f"{attr_gain:+.3f}, digit {obj_gain:+.3f}; one-sided t over {test['runs']} runs: "
    f"attributes > 0 p = {p_attr:.3f}, digit > 0 p = {p_obj:.3f} (attributes > digit, "
    f"the book's own question: p = {p_more:.3f})"
)
check_claim(
    "Closing the gap with ideal words minus u0 (Schrodi et al.'s "
    "analysis/gap_ideal_words.py) gives higher zero-shot accuracy than one "
    "plain prompt per class, for the attributes and for the object (their "
    "abstract: 'indications that closing the gap indeed leads to improvements')",
    holds,
    evidence,
    prof,
)

# %% [markdown]
# Where closing the gap does show is in how the two sides line up. The table gives, per $k$, the mean cosine
# between a held-out image and its class's plain prompt (the script's "real words" line), and between ideal images
# and ideal words as built, with both $u_0$'s removed, with $\Delta$ added, and with both.

# %%
cos_cols = ["k"] + [
    f"{role} {c}" for role in ("object", "attribute") for c in closing.COSINES
]
display(
    close_k[cos_cols].style.format("{:.3f}", subset=cos_cols[1:]).hide(axis="index")
)
cos_long = close.melt(
    id_vars=["k", "seed", "role"],
    value_vars=list(closing.COSINES),
    var_name="cosine",
    value_name="value",
)
cos_wide = (
    cos_long.groupby(["k", "role", "cosine"], as_index=False)["value"]
    .mean()
    .pivot_table(index=["k", "cosine"], columns="role", values="value")
    .reset_index()
)
charts.lines(
    cos_wide,
    "k",
    {"object": "digit", "attribute": "attributes (mean)"},
    series="cosine",
    x_title="attributes per caption (k)",
    columns=2,
    title="Cosine of ideal images with ideal words (and of images with plain prompts)",
)
# means over the runs whose captions name attributes
align = close[close["k"] >= 1].groupby("role")[list(closing.COSINES)].mean()
short = {
    "cos plain prompt": "plain",
    "cos ideal words": "ideal",
    "cos ideal words - u0": "minus_u0",
    "cos ideal words + gap": "gap",
    "cos ideal words - u0 + gap": "minus_u0_gap",
}
for role, tag in (("attribute", "attr"), ("object", "obj")):
    glue_row(
        f"closing_cos_{tag}",
        {name: align.loc[role, col] for col, name in short.items()},
    )
    glue(
        f"closing_align_{tag}",
        "closer"
        if align.loc[role, "cos ideal words - u0"] > align.loc[role, "cos ideal words"]
        else "further apart",
    )

# %% [markdown]
# Over the runs with $k \ge 1$, an attribute value's ideal image and ideal word have a mean cosine of
# {glue:text}`closing_cos_attr_ideal:.3f` as built, {glue:text}`closing_cos_attr_minus_u0:.3f` with $u_0$ removed
# on both sides, {glue:text}`closing_cos_attr_gap:.3f` with $\Delta$ added and
# {glue:text}`closing_cos_attr_minus_u0_gap:.3f` with both; for the digits {glue:text}`closing_cos_obj_ideal:.3f`,
# {glue:text}`closing_cos_obj_minus_u0:.3f`, {glue:text}`closing_cos_obj_gap:.3f` and
# {glue:text}`closing_cos_obj_minus_u0_gap:.3f`. Removing $u_0$ leaves the attributes' ideal images and words
# {glue:text}`closing_align_attr` than before, the digits' {glue:text}`closing_align_obj`. A single held-out image
# and its plain prompt are much less alike (cosine {glue:text}`closing_cos_attr_plain:.3f` for attributes,
# {glue:text}`closing_cos_obj_plain:.3f` for digits): means over many images and many captions cancel much of what
# is particular to one image or one caption. The script prints these cosines for MIT-States and UT-Zappos, but
# with Table 5 unread the book cannot say what they were.

# %% [markdown]
# ## Do images and captions arrange the classes alike?
#
# For each class $c$, rank all classes twice: by how similar their images are to $c$'s (the mean cosine over all
# image pairs, one from each class) and by how similar their class prompts are to $c$'s. The **normalised
# Kendall-tau distance** between the two rankings is the share of class pairs they order differently: 0 for the same
# order, 1 for reversed, 0.5 on average for unrelated orders; Kendall's $\tau = 1 - 2 \times$ distance. The test is
# the mean over classes. It asks whether the two modalities share a *geometry*, which matching pairs does not
# require.
#
# Where the book follows `analysis/gap_neighborhood_test.py`: the image-side similarity (mean over all pairs, each
# image with itself included on the diagonal), every class ranked in its own row, and the mean over classes. Where
# it differs: the script hands each row's *rank vector* to a distance function that reads its arguments as
# *orders*, so it computes the distance between the two inverse permutations. That number changes when the classes
# are renumbered and need not be 1 for reversed rankings (the tests show both). The book reports the standard
# distance, and the script's number beside it. Two controls put the distance in scale: the same side of two runs
# that differ only in their seed (how stable is each side's own arrangement?), and the image labels shuffled (an
# image side with no class structure at all).

# %%
org = organisation.organisation_over_runs(runs)
# every profile trains at least two seeds per k: the first two are compared
seed_rows = pd.concat(
    [organisation.seed_agreement(runs[(k, seeds[0])], runs[(k, seeds[1])]) for k in ks],
    ignore_index=True,
)
org_k = organisation.organisation_summary(org, seed_rows)
display(
    org_k.style.format(
        "{:.3f}", subset=[c for c in org_k.columns if c not in ("k", "role")]
    ).hide(axis="index")
)

# %%
show = {
    "distance": "image vs text",
    "shuffled labels": "shuffled image labels",
    "image vs image": "image vs image (two seeds)",
    "text vs text": "text vs text (two seeds)",
}
tidy = org_k.melt(
    id_vars=["k", "role"],
    value_vars=list(show),
    var_name="comparison",
    value_name="Kendall distance",
)
tidy["comparison"] = tidy["comparison"].map(show)
wide = tidy.pivot_table(
    index=["k", "comparison"], columns="role", values="Kendall distance"
).reset_index()
charts.lines(
    wide,
    "k",
    {"object": "digit classes", "attribute": "attribute values (mean)"},
    series="comparison",
    x_title="attributes per caption (k)",
    columns=2,
    title="How differently the classes are ranked",
)

# %%
digits = org_k[org_k["role"] == "object"].set_index("k")
attrs = org_k[org_k["role"] == "attribute"].set_index("k")
glue_row(
    "organisation",
    {
        "kendall_tau": digits["tau"],
        "distance": digits["distance"],
        "script_distance": digits["script distance"],
        "shuffled": digits["shuffled labels"],
        "distance_mean": digits["distance"].mean(),
        "script_mean": digits["script distance"].mean(),
        "shuffled_mean": digits["shuffled labels"].mean(),
        "script_shuffled_mean": digits["script, shuffled labels"].mean(),
        "kendall_tau_attributes": attrs["tau"],
        "attr_distance_mean": attrs["distance"].mean(),
        "tau_attr_k0": attrs.loc[0, "tau"],
        "tau_attr_k5": attrs.loc[5, "tau"],
        "seed_image_mean": digits["image vs image"].mean(),
        "seed_text_mean": digits["text vs text"].mean(),
    },
)
display(digits.round(3))

# %% [markdown]
# On the digit classes, the image side and the text side order the other digits differently for a share of
# {glue:text}`organisation_distance_mean:.3f` of the pairs on average over $k$ (attributes:
# {glue:text}`organisation_attr_distance_mean:.3f`). With the image labels shuffled the distance is
# {glue:text}`organisation_shuffled_mean:.3f`, the level of no shared order (below 0.5 because each class's own
# entry still comes first in both rankings); the same side of two seeds differs by
# {glue:text}`organisation_seed_image_mean:.3f` (images) and {glue:text}`organisation_seed_text_mean:.3f`
# (captions). On the attribute values the two sides agree more where the captions name more attributes: the mean
# $\tau$ over attributes is {glue:text}`organisation_tau_attr_k0:.2f` at $k = 0$ and
# {glue:text}`organisation_tau_attr_k5:.2f` at $k = 5$.
#
# The count of the authors' script (`analysis/gap_neighborhood_test.py`), applied to the same rankings, gives
# {glue:text}`organisation_script_mean:.3f`, and {glue:text}`organisation_script_shuffled_mean:.3f` with shuffled
# labels: by its count the models look nearly as disordered as noise, while the standard distance puts them close
# to agreement. A third-party note (a project document on GitHub, not the paper) puts the value of the paper's
# Table 2 near 0.5; the book could not check that, as Table 2 could not be read (see
# {doc}`../book/paper_numbers`). A number near 0.5 from a script whose distance depends on how the classes are
# numbered says less than it seems.

# %% tags=["hide-input"]
img_txt = float(digits["distance"].mean())
stable = max(
    float(digits["image vs image"].mean()), float(digits["text vs text"].mean())
)
check_claim(
    "Images and captions arrange the classes differently (Schrodi et al. 2025, "
    "abstract: 'differently organized'; their analysis/gap_neighborhood_test.py, "
    "which their README maps to Table 2): the image-text ranking distance of the "
    "digit classes exceeds what two seeds of either side differ by",
    img_txt > stable,
    f"mean over k: image vs text {img_txt:.3f}; two seeds, images "
    f"{float(digits['image vs image'].mean()):.3f}, "
    f"captions {float(digits['text vs text'].mean()):.3f}; "
    f"shuffled labels {float(digits['shuffled labels'].mean()):.3f}",
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
    "closing_gap",
    [
        "closing_object_gain_mean",
        "closing_attribute_gain_mean",
        "closing_p_attr",
        "closing_p_obj",
        "closing_p_more",
        "closing_verdict",
        "closing_cos_attr_ideal",
        "closing_cos_attr_minus_u0",
        "organisation_distance_mean",
        "organisation_kendall_tau",
    ],
    build=prof.name,
)

# %%
measures = {
    "closing_object_gain_mean": "object accuracy gain",
    "closing_attribute_gain_mean": "attribute accuracy gain",
    "organisation_distance_mean": "organisation distance",
}
charts.scale_trend(ladder.trend("closing_gap", measures, build=prof.name))

# %% [markdown]
# ## Exercises

# %% [markdown]
# ```{exercise}
# :label: closing_gap-ex1
#
# The script `analysis/gap_ideal_words.py` also prints "ideal words minus u0 & mean gap vector". Show that under
# its dot-product rule, adding one vector to every class vector cannot change a prediction. Then build those class
# vectors yourself for the colour values of the $k = 2$, seed 0 run: ideal words and $u_0$ from
# `closing.ideal_words_by_factor`, the mean gap vector as the mean training image (`closing.training_images`)
# minus the mean of all plain prompts (`closing.plain_prompts` of every factor), and measure their accuracy with
# `gaplab.metrics.closing.dot_accuracy`. Why does the same shift change predictions under the cosine rule?
# ```
#
# ```{solution} closing_gap-ex1
# :label: closing_gap-sol1
# :class: dropdown
#
# For an image $x$ and class vectors $w_c$, the score $x^\top(w_c + g) = x^\top w_c + x^\top g$: the added term is
# the same for every class, so the largest score stays with the same class. In code:
# `run = runs[(2, 0)]`, `words, u0 = closing.ideal_words_by_factor(run.model)`,
# `train, _ = closing.training_images(run)`,
# `plain = np.concatenate([closing.plain_prompts(run.model, f) for f in FACTORS])`,
# `g = train.mean(0) - plain.mean(0)`, `labels = run.eval_factors["color"]`, then
# `dot_accuracy(run.eval_image, words["color"] - u0 + g, labels)`: it equals the table's "ideal words - u0" (and
# "ideal words") for that run and factor. Under the cosine rule each class vector is renormalised
# after the shift, by a different length per class, so the added term no longer cancels.
# ```

# %% [markdown]
# ```{exercise}
# :label: closing_gap-ex2
#
# Run the organisation test on the colour values of the $k = 2$, seed 0 run with `include_self=False` (rank only
# the *other* classes). What is the distance, and does leaving the class itself out move it up or down?
# ```
#
# ```{solution} closing_gap-ex2
# :label: closing_gap-sol2
# :class: dropdown
#
# `organisation.organisation_by_factor(runs[(2, 0)], factors=["color"], include_self=False)`. With the class in its
# own row, it is usually first in both rankings (a prompt is identical to itself; images are usually most like
# images of their own class), and every pair that involves it is then concordant. Dropping those sure agreements
# raises the distance. "Usually": on the image side the class's own entry is the squared length of its mean
# embedding, which for a diffuse class can fall below its product with a tighter class's mean.
# ```
