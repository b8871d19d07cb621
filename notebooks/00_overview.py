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
# # 00 · Overview: placing music on the map
#
# Can a model hear where a piece of music comes from? This book trains neural networks
# (the families named in the params' `models:`), classic baselines and an ensemble of both to predict the country of a track from its audio
# features, measures how far off they are (in classes *and* in kilometres), and asks
# what they listen to.
#
# ## Overview
# - what the book answers and in which order the notebooks answer it;
# - how one params file drives a whole run, and where each stage writes its outputs;
# - which settings, library versions and commit produced the pages you are reading.
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | Multi-class classification | necessary | accuracy, top-k accuracy, confusion matrices |
# | Python and pandas | helpful | the code cells are short calls into `geomusic_lib` |
# | PyTorch | helpful | only to read the model code; the notebooks never write a training loop |
#
# **Time to run**: a few seconds.

# %% [markdown]
# ## Imports

# %%
from IPython.display import Markdown, display

from geomusic_lib.book import plan_findings, STAGES
from geomusic_lib.core import read_manifest
from geomusic_lib.pipeline import open_stage

# %% [markdown]
# ## Parameters
# The notebook's own cell tagged `parameters` holds defaults for running it by hand; papermill
# injects the values of a batch run in a cell after it. The book shows only the values this
# run used (the injected cell) and hides the defaults.

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)

# %% [markdown]
# `open_stage` reads the params file, applies `run_name` and shows the effective
# settings as a table: every default filled in, nothing hidden. Relative paths in the params file are
# resolved against the repository root, so they mean the same thing wherever the notebook
# runs. It also returns the run directory, `run`, which knows where every file of the run lives.

# %%
params, run = open_stage(params_file, run_name)

# %% [markdown]
# ## The question, stage by stage
# Each notebook does one stage and writes its outputs to `runs/<run_name>/`; the next
# notebook reads them from there, so any notebook can be re-run on its own.
#
# | notebook | stage | writes |
# |---|---|---|
# | 01 data prep | load tracks and labels, fix the splits | `data/` |
# | 02 feature extraction | features per track (already in the file for UCI) | `data/table.parquet`, `features/` (fetched or computed features only) |
# | 03–06 | one model each: FCNN, CNN, RNN, attention | `models/<model>/` |
# | 07 evaluation | baselines, ensemble, metrics with confidence intervals, maps | `models/<baseline>/`, `models/ensemble/`, `eval/` |
# | 08 interpretability | SHAP, attention by region, t-SNE | nothing (figures in the notebook) |
# | 09 predict | top-5 guesses for held-out tracks of a few countries | nothing (figures in the notebook) |
#
# The orchestrator runs them in three groups; the model notebooks of the middle group
# only depend on the first and can run in parallel (`--jobs`):

# %%
for number, stage in enumerate(STAGES, start=1):
    print(f"group {number}: {', '.join(stage)}")

# %% [markdown]
# ## What produced this run
# `runs/<run_name>/manifest.json` records the params, the library versions and the git
# commit, so a run directory can be traced back to its code.

# %%
manifest = read_manifest(run.path)  # written by the orchestrator, or by open_stage for a run by hand
print("git:", manifest["git"])
print("accelerator:", manifest["accelerator"])
print({name: version for name, version in manifest["versions"].items() if version})

# %% [markdown]
# ## What this run is set to do

# %% tags=["remove-input"]
display(Markdown(plan_findings(params)))

# %% [markdown]
# ## Summary
# - One params file describes one run; the effective settings are in the table above.
# - Stages talk only through files in `runs/<run_name>/`.
# - The book's numbers and figures are outputs of this run, never typed by hand.
#
# ## What's next
# [01 · Data preparation](01_data_prep.ipynb) loads the tracks, explains what a label
# means, and fixes the train/validation/test splits.
#
# ## References
# - {cite:t}`zhou2014predicting` (the UCI data)
# - {cite:t}`nguyen2025mirage` (MIRAGE)
