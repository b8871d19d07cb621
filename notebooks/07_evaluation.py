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
# # 07 · Evaluation: models against baselines, on the map
#
# ## Overview
# - fit the classic baselines on exactly the same splits as the networks;
# - combine networks and baselines into an ensemble fitted on held-out rows;
# - compare every model and baseline with 95 % bootstrap confidence intervals;
# - see whether mistakes stay in the neighbourhood: confusions in geographic order, and
#   errors in kilometres;
# - map which countries are recognised, and check whether the probabilities can be
#   trusted (calibration).
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [03](03_fcnn.ipynb)–[06](06_attention.ipynb) | necessary | each writes `models/<model>/predictions.parquet` |
# | Bootstrap confidence intervals | helpful | percentile intervals over test tracks |
# | Calibration | helpful | a well-calibrated 70 % is right 70 % of the time |
#
# **Time to run**: under a minute for UCI (the gradient-boosting baseline dominates).

# %% [markdown]
# ## Imports

# %%
from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import comparison_findings, floor_of, shown, weighting_protocol
from geomusic_lib.data import load_run_data
from geomusic_lib.evaluation import best_network, evaluate_run, prediction_files
from geomusic_lib.pipeline import open_stage, stages
from geomusic_lib.predict import read_predictions
from geomusic_lib.training import tune, weights_table

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)

# %%
params, run = open_stage(params_file, run_name, show=["models", "baselines", "evaluate"])

# %% [markdown]
# ## Baselines on the same splits
# The baselines in `params.baselines` (by default the majority class as the floor,
# logistic regression, a random forest, histogram gradient boosting and an RBF
# support-vector machine; `knn` is also available), fitted on the training and
# validation rows of the same splits the networks used. For melodies (`data.source: folk`),
# `ngram` is an event model {cite:p}`hillewaere2009global`: a logistic regression on TF-IDF
# counts of 1- to 4-grams of melodic events (interval, scale degree, duration, metrical
# accent; `baseline_settings.ngram` chooses them), not on the global features.

# %%
data = load_run_data(run)
print("baselines:", ", ".join(stages.fit_baselines(params, run, data)))

# %% [markdown]
# ## Tuning
# With `tune.enabled` (as in `params/tuned.yaml`), every network and the random forest and
# histogram gradient boosting were tuned under the same budget of trials on held-out rows
# (`tune.folds` parts of the training rows, each held out once, or the validation rows) before
# they trained (the baselines just now, in the cell above). The table lists, per model, the
# rows trials were scored on, the trials run (pruned ones included), the time they took, the
# best held-out log-loss and the settings the model then trained with.

# %%
tuning = tune.tuning_summary(run)
if tuning.empty:
    print("This run did not tune (tune.enabled: false). `make book PARAMS=params/tuned.yaml` builds the tuned run.")
shown(tuning) if len(tuning) else None

# %% [markdown]
# ## A calibrated ensemble
# Averaging models that err differently is the simplest way to gain accuracy. The
# ensemble's member weights (greedy selection with replacement {cite:p}`caruana2004ensemble`) and
# its temperatures {cite:p}`guo2017calibration` are fitted on **held-out** rows only, then
# applied to the test rows. The weights minimise the run's objective,
# `evaluate.ensemble_objective`: by default the log-loss, or the balanced log-loss when
# `train.class_weights` weighs classes for every model. If no mixture beats the best
# member on those rows, the ensemble is that member alone. Every member wrote its held-out and
# test probabilities as it trained, and the ensemble reads those files only. Temperature
# scaling also matters for the distance-aware decision.
#
# **Out-of-fold rows.** With `train.bagging.folds` k > 1 (by default 5 for a table of at most
# 5,000 tracks), every model trains k times, each time leaving one part of the training rows
# out, so each training row has a probability from a model that never saw it; the ensemble is
# fitted on all those out-of-fold rows. With k = 1 (a larger table)
# the held-out rows are the small validation split (a baseline's from a second fit on the
# training rows only; the networks early-stopped on these rows, so they look slightly better
# there than they are). The printout below says which rows this run used.

# %%
ensembles = stages.fit_ensemble(params, run, data)  # one per split: weights; T = final temperature

# %% [markdown]
# The table gives each member's weight, its temperature and its score under the objective
# on those held-out rows (lower is better), and the ensemble's score last. A member with
# weight 0 did not improve the mixture. A final temperature `T` below 1 sharpens the mixed
# probabilities (averaging flattens them), above 1 softens them.

# %%
shown(weights_table(ensembles)) if ensembles else None

# %%
classes = run.read_classes()
predictions = {name: read_predictions(path) for name, path in prediction_files(run).items()}
print(", ".join(predictions))

# %% [markdown]
# ## The comparison table
# `evaluate_run` scores every `predictions.parquet` of the run and writes
# `eval/metrics.csv`, the table the [results page](../results.md) shows. Each metric has
# a 95 % bootstrap interval (`_ci_low`, `_ci_high`).

# %%
metrics = evaluate_run(run, params)
shown(metrics[["model", "kind", "accuracy", "balanced_accuracy", "top5_accuracy", "macro_f1", "median_km", "ece"]])

# %% [markdown]
# **What to look for:** bars whose intervals overlap are not distinguishable on this test
# set. The majority-class bar is the floor. The second chart, top-5 accuracy, shows how
# often the right country is at least among the five strongest candidates.

# %%
plots.model_comparison(metrics, "accuracy").show()

# %%
plots.model_comparison(metrics, "top5_accuracy").show()

# %% [markdown]
# ## Are the mistakes geographically sensible?
# The confusion matrix of the best network (the lowest validation loss: chosen without
# looking at the test split), with countries ordered by region and
# longitude. **What to look for:** blocks along the diagonal mean that mistakes stay
# within a region (Mali confused with Senegal rather than with Japan).

# %%
best, _ = best_network(run)
print(f"best network by validation loss: {best}")
plots.confusion_matrix_figure(predictions[best], classes, decision=params.evaluate.decision).show()

# %% [markdown]
# The same question in kilometres: the share of tracks placed within *d* km of their
# true place. A curve that rises early means near misses rather than wild guesses.

# %%
plots.distance_error_cdf(predictions, classes, decision=params.evaluate.decision).show()

# %% [markdown]
# ## Which countries or provinces are recognised?
# Recall per class for the best network: a country map, or points at the class
# coordinates when the labels are provinces or regions. **What to look for:** places with
# distinctive instruments or scales (for example in South-East Asia or West Africa)
# against places whose music resembles their neighbours'. Small classes have few
# test tracks: hover to see how many.

# %%
per_class = run.read_per_class(best)
plots.accuracy_map(per_class, model=best).show()

# %% [markdown]
# ## Can the probabilities be trusted?
# A reliability diagram bins tracks by the model's top-1 probability and plots how often
# it was right. **What to look for:** points below the diagonal are over-confident;
# the expected calibration error (ECE, in the table) summarises the gap. A constant
# predictor such as the majority baseline is trivially well calibrated (its ECE is near
# 0), and bootstrap resampling biases ECE upwards, so its interval can sit mostly above
# the estimate.

# %%
plots.reliability_diagram({m: predictions[m] for m in [*params.models, "ensemble"] if m in predictions},
                          n_bins=params.evaluate.calibration_bins).show()

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(comparison_findings(metrics, floor_of(data), best, per_class) + "\n- " + weighting_protocol(run)))

# %% [markdown]
# ## Summary
# - `runs/<run_name>/eval/metrics.csv` holds every headline metric with its interval;
#   per-class tables are in `eval/per_class/`.
# - Compare models by their intervals, not their point estimates.
# - Distance errors and the geographic confusion matrix show *how* wrong a model is.
#
# ## What's next
# [08 · Interpretability](08_interpretability.ipynb) asks what the models rely on.
#
# ## References
# - {cite:t}`efron1993bootstrap` (bootstrap intervals)
# - {cite:t}`guo2017calibration` (temperature scaling)
# - {cite:t}`pedregosa2011sklearn` (the baselines)
# - {cite:t}`hillewaere2009global` (the n-gram event model, for melodies)
