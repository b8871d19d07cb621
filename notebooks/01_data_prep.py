# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: kernelspec,jupytext,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Data preparation: tracks, labels and fixed splits
#
# ## Overview
# - load the dataset named in the params file (the embedded UCI set by default);
# - understand what a label means for that dataset, before trusting any score;
# - look at how many tracks each class has and where the classes lie on the map;
# - fix the train/validation/test splits once, for every model and baseline.
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [The data](../data.md) | necessary | label semantics and licences |
# | Stratified and grouped splits | helpful | scikit-learn's `StratifiedGroupKFold` |
#
# **Time to run**: seconds for UCI; minutes for the full MIRAGE export.

# %% [markdown]
# ## Imports

# %%
import json

import numpy as np
from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import data_findings
from geomusic_lib.data import shared_between, typical_tune_view
from geomusic_lib.pipeline import open_stage, stages

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)

# %%
params, run = open_stage(params_file, run_name, show=["run_name", "seed", "data", "split"])

# %% [markdown]
# ## Load, label and split
# `stages.prepare_data` loads the source in `data.source`, makes the splits, and writes
# `runs/<run_name>/data/`: the tracks, the class table, the splits and a `meta.json`
# that records the label semantics.

# %%
table, splits = stages.prepare_data(params, run)
print(f"{len(table.frame)} tracks, {table.frame['label'].nunique()} classes, "
      f"{len(table.feature_names)} features (source: {table.source})")

# %% [markdown]
# ### What a label means
# Read this note before the scores. For UCI the labels are coordinates of capital
# cities; the **country names are derived by geomusic from those coordinates** and are
# not part of the dataset. For MIRAGE the label is where the track was *broadcast* (or
# the artist's country), chosen by `data.mirage.target`. For the folk melodies it is the
# tune's origin field mapped to a modern country or a Chinese province. For a table of
# your own it is the value in `data.table.label_column`, and it means what your file says.

# %%
for key, note in table.notes.items():
    if key not in ("report", "duplicates", "group_note", "grouped_by"):
        print(f"{key}: {note}")
if table.notes.get("report"):  # filtering and deduplication counts (MIRAGE, folk)
    print(json.dumps(table.notes["report"], indent=2))

# %% [markdown]
# ## How many tracks per class?
# **What to look for:** the imbalance. The smallest classes have only a handful of
# test tracks, so their per-class scores will be noisy. Where `train.class_weights` is on
# (by default for the RNN and attention models, via `train_per_model`), the training loss
# weighs classes in inverse proportion to their size so the large ones do not dominate.

# %%
plots.class_sizes_figure(table.frame["label"]).show()

# %% [markdown]
# ## Where are the classes?
# Each dot is a class, placed at its coordinates (for UCI: the capital city), sized
# by its number of tracks. **What to look for:** the coverage. Whole regions are
# missing, so "where does this come from" really means "which of *these* places".

# %%
plots.class_map_figure(run.read_classes()).show()

# %% [markdown]
# ## The splits
# One split (or one per fold) is fixed here and used by every model and baseline, so
# their scores are comparable. Splits are stratified by class and **grouped by artist
# where artists are known**: an artist's tracks never sit on both sides. Rows with
# identical feature vectors (one recording listed twice, perhaps under two countries)
# are one group too, unless `data.duplicates` says otherwise. The check below counts,
# for this run, the artists and the feature vectors found on both sides. When artists
# are unknown (UCI has no artist column), each track is its own group, so tracks by
# one artist may sit on both sides.

# %%
print(table.notes.get("group_note") or "The split is not grouped by artist: the source names no artists.")
if "duplicates" in table.notes:
    print(table.notes["duplicates"]["note"])
for split in splits:
    seen = shared_between(table.frame, table.feature_names, np.r_[split.train, split.val], split.test)
    print(f"{split.name}: train {len(split.train)}, validation {len(split.val)}, test {len(split.test)} tracks; "
          f"on both sides of the test split: {seen['artists']} artists, {seen['vectors']} identical feature vectors")
    assert seen["artists"] == 0, "an artist is on both sides of the split"
    assert seen["vectors"] == 0 or params.data.duplicates == "keep", "a feature vector is on both sides"

# %% [markdown]
# ## One tune as the models read it
# On melodies (`data.source: folk`), the models read one tune in three ways. The global-feature
# models (FCNN, TabM, the trees) see summary numbers of the whole tune (02). The `ngram`
# baseline sees symbols, one per sounding note for each melodic viewpoint: the interval from the
# previous note, the scale degree above the tune's tonic, the duration and its ratio to the previous
# one, the contour and the metric weight. It counts n-grams of those symbols. The sequence networks
# read every step, rests included, as the frames of 02. With `inputs: viewpoints` (or `both`), they
# embed the token codes in the `tok_*` columns, which quantise the same viewpoints (0 = none). No
# viewpoint reads absolute pitch, so a transposed tune reads the same. Below: a training tune of
# median length, its first 24 steps, and the n-grams the baseline counts in it (the run's
# `baseline_settings.ngram`).

# %%
view = typical_tune_view(table.frame, splits[0].train, params.baseline_settings.get("ngram", {}))
if view is None:
    print(f"data.source {params.data.source}: no melodies, so no tune to show (the folk runs show one here)")
else:
    print(view.caption)
    display(view.steps.head(24))
    plots.tune_figure(view).show()
    display(view.ngrams)

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(data_findings(table.frame, splits[0], table.notes)))

# %% [markdown]
# ## Summary
# - The run's tracks, classes, splits and label notes are in `runs/<run_name>/data/`.
# - Labels are proxies (capital-city coordinates for UCI, broadcast location for MIRAGE).
# - Every later stage uses exactly these splits.
#
# ## What's next
# [02 · Feature extraction](02_feature_extraction.ipynb) looks at the features each
# track is described by.
#
# ## References
# - {cite:t}`zhou2014predicting` (the UCI data)
# - {cite:t}`pedregosa2011sklearn` (`StratifiedGroupKFold`)
