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
# # 03 · Tabular networks: the FCNN and TabM
#
# ## Overview
# - train a fully connected network (FCNN) that reads the features as one flat vector;
# - train TabM, an MLP that holds several weight-sharing members and embeds each feature
#   piecewise-linearly, one of the strongest default networks for tables in recent benchmarks;
# - optionally tune both on held-out rows first (`tune.enabled`, see `params/tuned.yaml`);
# - watch their learning curves and read their test scores, with 95 % bootstrap intervals.
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [01](01_data_prep.ipynb) and [02](02_feature_extraction.ipynb) | necessary | the run's tracks, splits and features |
# | Fully connected networks, dropout | helpful | the FCNN and its options are in `geomusic_lib/models/fcnn.py` |
# | Ensembles, embeddings of numeric features | helpful | TabM {cite:p}`gorishniy2025tabm`, embeddings {cite:p}`gorishniy2022embeddings` |
#
# **Time to run**: about a minute on a laptop CPU for UCI; tuning (off by default) adds a few
# minutes per model; longer on MIRAGE (GPU).

# %% [markdown]
# ## Imports

# %%
import pandas as pd
from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import headline_table, network_findings, show_model_source
from geomusic_lib.evaluation import evaluate_predictions, load_history
from geomusic_lib.pipeline import open_stage, stages
from geomusic_lib.predict import read_predictions
from geomusic_lib.training import tune

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)
model_name: str = "fcnn"  # the network this notebook trains (a key of params.model)
tabm_name: str = "tabm"  # the second network of this notebook (a key of params.model)

# %%
params, run = open_stage(params_file, run_name, show=["device", "model", "train", "train_per_model", "tune"])
names = [m for m in (model_name, tabm_name) if m in params.models]  # the networks of this notebook the run trains
print("training:", ", ".join(names))

# %% [markdown]
# ## The FCNN
# The FCNN reads each track as one vector of features. By default it first scales each
# feature by the median and inter-quartile range of the training rows and clips it smoothly
# (`model.fcnn.robust_clip`), embeds it piecewise-linearly (`model.fcnn.embedding`), then
# passes it through a few fully connected layers (`model.fcnn.hidden`), each with batch
# normalisation, ReLU and dropout; these are two ingredients of RealMLP, kept because they
# helped on validation rows (`benchmarks/results/fcnn_ingredients.md`). It ignores any
# structure among the features: the order of the columns means nothing to it. That makes it the neural counterpart of the logistic-regression and
# tree baselines of notebook 07.
#
# The code below is the library's own module for this model, shown as it is (the book
# holds no copy of it): a `Config` dataclass with its defaults, the layers, and
# `embed` (the representation used in [08](08_interpretability.ipynb)) and `forward`.

# %%
show_model_source(model_name)

# %% [markdown]
# ## TabM
# TabM {cite:p}`gorishniy2025tabm` is one MLP that behaves like an ensemble of `k` MLPs
# (`model.tabm.k`): the members share their weight matrices and differ only in small
# per-member scaling vectors (BatchEnsemble), so the ensemble costs little more than one
# network. Each member is trained on its own loss, and the prediction is the mean of the
# members' probabilities. Before the MLP, each feature is embedded piecewise-linearly
# {cite:p}`gorishniy2022embeddings`: its value is located among quantile bins of the training
# rows, which lets the network bend its response to one feature the way a tree's splits do.
# The optimiser settings are the paper's defaults (AdamW, learning rate 0.002, weight decay
# 0.0003, batch 256); the network is the paper's default at half the members and width (16 × 256,
# with 32 bins and 8-dimensional embeddings), so that it trains in about a minute on a laptop CPU.
# The bin edges are part of the checkpoint, so the predictor needs nothing else.

# %%
show_model_source(tabm_name)

# %% [markdown]
# ## Tuning (when `tune.enabled`)
# With `tune.enabled: true` (as in `params/tuned.yaml`) each network is tuned before it trains:
# Optuna's TPE sampler proposes settings, each trial trains on the training rows and is scored
# by its best validation loss, and trials whose validation loss lags the median at the same
# epoch are pruned. The study is stored in `runs/<run_name>/tuning/<model>/study.db` (or in
# `tune.storage`: a journal file or a PostgreSQL server that several `geomusic tune --worker`
# processes share), so an interrupted tuning resumes without repeating trials. Test rows are
# never used. With tuning off (the default), this cell only says so.

# %%
tuned = stages.tune_models(params, run, names)  # empty when tuning is off
if len(tuned):
    display(tuned)
    for name in names:
        display(tune.trials_table(run, name).head(30))

# %% [markdown]
# ## Train
# The trainer (`geomusic_lib.training.trainer`) uses AdamW, a learning-rate schedule (`train.scheduler`),
# gradient clipping, cross-entropy (class-weighted when `train.class_weights` is on) and
# early stopping on the validation split; it saves a checkpoint every epoch, so an interrupted run resumes where it
# stopped. Normalisation statistics (and TabM's bins) come from the training rows only. With
# tuning on, each network trains with its best settings.

# %%
results = {name: stages.train_network(params, run, name) for name in names}

# %% [markdown]
# ## Learning curves
# **What to look for:** validation loss that turns up while training loss keeps falling
# is over-fitting; early stopping keeps the checkpoint of the best validation epoch.
# Curves that are still falling at the last epoch mean the model could train longer.
# TabM's training loss is its members' mean loss, so it sits above the loss of their average.

# %%
history = {name: load_history(run.model_dir(name)) for name in results}
plots.learning_curves(history, title="Learning curves: " + " and ".join(results)).show()

# %% [markdown]
# ## Test scores
# Top-k accuracy counts a track as right when its country is among the model's k most
# probable; the distance errors are great-circle kilometres between the predicted and
# the true place. The intervals are 95 % bootstrap intervals over test tracks. The
# comparison with the other models and the baselines is in [07](07_evaluation.ipynb).

# %%
scores = {name: evaluate_predictions(read_predictions(result.predictions), run.read_classes(),
                                     bootstrap=params.evaluate.bootstrap, seed=params.seed)
          for name, result in results.items()}
pd.concat({name: headline_table(metrics) for name, metrics in scores.items()})

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(network_findings(run, scores)))

# %% [markdown]
# ## Summary
# - The checkpoints, `history.csv` and `predictions.parquet` of each model are in
#   `runs/<run_name>/models/fcnn/` and `runs/<run_name>/models/tabm/`.
#
# ## What's next
# [04 · CNN](04_cnn.ipynb) reads the same features as a small image.
#
# ## References
# - {cite:t}`paszke2019pytorch` (PyTorch)
# - {cite:t}`gorishniy2025tabm` (TabM); {cite:t}`gorishniy2022embeddings` (embeddings); {cite:t}`akiba2019optuna` (Optuna)
