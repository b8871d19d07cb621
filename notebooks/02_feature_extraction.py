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
# # 02 · Feature extraction: how each track is described
#
# ## Overview
# - where this run's features come from, and what they can and cannot say;
# - for UCI: the MARSYAS descriptors, the chroma columns that are copies of one value, and the
#   grid the CNN and sequence models read, and why **that grid's second axis is not time**;
# - Spotify's deprecation of its audio-feature endpoints, and its terms;
# - for the other sources: how many tracks got features (coverage).
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [01 · Data preparation](01_data_prep.ipynb) | necessary | writes `runs/<run_name>/data/` |
# | [Spotify audio features](../data.md#spotify-audio-features) | helpful | why the Spotify source is off by default |
# | MFCCs and chroma | helpful | the timbre and pitch-class descriptors below |
#
# **Time to run**: seconds for features already in the file; hours for the Spotify API
# or for audio analysis of a large corpus (cached and resumable).

# %% [markdown]
# ## Imports

# %%
import json

from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import feature_findings
from geomusic_lib.data import load_run_data
from geomusic_lib.features import SPOTIFY_NOTICE
from geomusic_lib.pipeline import open_stage, stages

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)

# %%
params, run = open_stage(params_file, run_name, show=["data", "features"])

# %% [markdown]
# ## Spotify: deprecated, and not for training
# The project first planned to use Spotify's audio features. The library prints this
# notice wherever the Spotify source could be used:

# %%
print(SPOTIFY_NOTICE)

# %% [markdown]
# ## Where this run's features come from
# UCI tracks (and a table with feature columns) arrive **with** their features, written
# by 01 into `data/table.parquet`. Every other source extracts them now into
# `runs/<run_name>/features/` and joins them to the tracks; the coverage report says how
# many tracks got features and why the others did not.

# %%
summary = stages.extract_features(params, run)
print(json.dumps(summary, indent=2))

# %%
data = load_run_data(run)
table = data.table
print(f"{len(table.frame)} tracks with {len(table.feature_names)} features; grid shape: {table.grid_shape}")

# %% [markdown]
# ## The UCI features: MARSYAS descriptors on a grid
# The UCI authors described each track with the MARSYAS toolkit: *timbral* descriptors
# (zero-crossing rate, spectral centroid, roll-off and flux, and 13 MFCCs) and *chroma*.
# Each descriptor is summarised over the **whole track** by four statistics (means and
# standard deviations over texture windows), already standardised; [the features
# page](../features.md) says what every column measures.
#
# **The chroma columns are copies.** In the file, the 12 chroma columns of each statistic
# are identical for every track: one value repeated, not a pitch-class profile. geomusic
# keeps one chroma column per statistic (`data.uci.collapse_chroma`, on by default); the
# note printed below says what this run did, and the findings at the end of the page count
# the copies that remain.
#
# The CNN, RNN and attention notebooks read these numbers as a grid: rows of statistics by
# columns of descriptors (its shape is printed above), and the sequence models step along
# the descriptors. **That axis is not time.** It is an order of descriptors, so an
# attention weight on step 12 means "the 12th descriptor", never "the 12th second".
#
# **What to look for** in the figure: how one country's average differs from the
# average of all tracks, descriptor by descriptor (in standard deviations): the MFCC
# columns show a characteristic timbre. The last column is the single chroma value, one
# number per statistic, so it cannot show a scale.

# %%
print(table.notes.get("chroma_note", "No chroma note: this source has no UCI chroma columns."))
if table.grid_shape:  # the first of `predict.countries` that is a class of this run
    plots.class_profile_heatmap(table, params.predict.countries).show()
else:
    print("These features have no grid: the models read them as a vector (FCNN) or one step per feature.")

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(feature_findings(table.frame[table.feature_names], table.notes.get("chroma_note"))))

# %% [markdown]
# ## Summary
# - The features of every track are now in `runs/<run_name>/data/table.parquet`.
# - UCI features summarise whole tracks; the grid's descriptor axis is not time.
# - Spotify's audio-feature endpoints are closed to new apps and its terms forbid
#   training models on them; use features already in your file or your own audio.
#
# ## What's next
# [03 · FCNN](03_fcnn.ipynb) trains the first model on these features.
#
# ## References
# - {cite:t}`tzanetakis2002musical` (MARSYAS)
# - {cite:t}`zhou2014predicting` (the UCI data)
