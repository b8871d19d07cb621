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
# # 05 · RNN: a bidirectional LSTM over the descriptors
#
# ## Overview
# - train a bidirectional LSTM that reads the features as a sequence;
# - watch its learning curves for over- and under-fitting;
# - read its test scores, with 95 % bootstrap confidence intervals.
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [01](01_data_prep.ipynb) and [02](02_feature_extraction.ipynb) | necessary | the run's tracks, splits and features |
# | Recurrent networks, LSTM | helpful | `geomusic_lib/models/rnn.py` |
#
# **Time to run**: seconds to a minute on a laptop CPU for UCI; longer on MIRAGE (GPU).

# %% [markdown]
# ## Imports

# %%
from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import headline_table, network_findings, show_model_source
from geomusic_lib.evaluation import evaluate_predictions, load_history
from geomusic_lib.pipeline import open_stage, stages
from geomusic_lib.predict import read_predictions

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)
model_name: str = "rnn"  # the network this notebook trains (a key of params.model)

# %%
params, run = open_stage(params_file, run_name, show=["device", "model", "train", "train_per_model"])

# %% [markdown]
# ## The model
# The RNN is a bidirectional LSTM. On UCI, `model.rnn.view: auto` (the default) picks the
# grid: it steps along the descriptors, with the 4 statistics of each descriptor as the input at
# that step (on a table without a grid, `auto` reads one feature per step), and classifies from its final states and the masked mean of its outputs. The "sequence" is an order of
# descriptors, **not time**; with frame features (`features.source: audio`) the same
# model reads real time steps, masked where a track is shorter than the longest one.
#
# The code below is the library's own module for this model, shown as it is (the book
# holds no copy of it): a `Config` dataclass with its defaults, the layers, and
# `embed` (the representation used in [08](08_interpretability.ipynb)) and `forward`.

# %%
show_model_source(model_name)

# %% [markdown]
# ## Train
# The trainer (`geomusic_lib.training.trainer`) uses AdamW, a learning-rate schedule (`train.scheduler`),
# gradient clipping, cross-entropy (class-weighted when `train.class_weights` is on) and
# early stopping on the validation split; it saves a checkpoint every epoch, so an interrupted run resumes where it
# stopped. Normalisation statistics come from the training rows only.

# %%
result = stages.train_network(params, run, model_name)

# %% [markdown]
# ## Learning curves
# **What to look for:** validation loss that turns up while training loss keeps falling
# is over-fitting; early stopping keeps the checkpoint of the best validation epoch.
# Curves that are still falling at the last epoch mean the model could train longer.

# %%
history = load_history(run.model_dir(model_name))
plots.learning_curves({model_name: history}, title=f"Learning curves: {model_name}").show()

# %% [markdown]
# ## Test scores
# Top-k accuracy counts a track as right when its country is among the model's k most
# probable; the distance errors are great-circle kilometres between the predicted and
# the true place. The intervals are 95 % bootstrap intervals over test tracks. The
# comparison with the other models and the baselines is in [07](07_evaluation.ipynb).

# %%
metrics = evaluate_predictions(read_predictions(result.predictions), run.read_classes(),
                               bootstrap=params.evaluate.bootstrap, seed=params.seed)
headline_table(metrics)

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(network_findings(run, {model_name: metrics})))

# %% [markdown]
# ## Summary
# - The checkpoints, `history.csv` and `predictions.parquet` of this model are in
#   `runs/<run_name>/models/rnn/`.
#
# ## What's next
# [06 · Attention](06_attention.ipynb) adds an attention layer that says which steps matter.
#
# ## References
# - {cite:t}`hochreiter1997lstm` (LSTM)
