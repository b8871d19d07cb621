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
# # 09 · Predict: top-5 guesses for held-out tracks
#
# ## Overview
# - load the best network (lowest validation loss) from its checkpoint alone, as a user of
#   the library would;
# - predict held-out tracks of the countries it recognises best on the validation rows
#   (chosen without looking at the test rows, or pinned in the params);
# - read the top-5 countries and their probabilities, next to the true country.
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [07 · Evaluation](07_evaluation.ipynb) | necessary | picks the best network |
# | `geomusic predict` | helpful | the same predictor from the command line |
#
# **Time to run**: seconds.

# %% [markdown]
# ## Imports

# %%
from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import (
    choose_showcase, compact_guesses, prediction_findings, showcase_rows, shown, validation_recall,
)
from geomusic_lib.data import load_run_data
from geomusic_lib.evaluation import best_network
from geomusic_lib.pipeline import open_stage
from geomusic_lib.predict import Predictor

# %% [markdown]
# ## Parameters
# `top_k`, `n_countries`, `min_support` and `per_country` come from `predict.*` in the params file;
# `predict.countries` pins the countries instead.

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)

# %%
params, run = open_stage(params_file, run_name, show=["predict"])

# %% [markdown]
# ## The predictor
# `Predictor.from_checkpoint` needs nothing but the checkpoint: the class names and
# coordinates, the feature names, the normalisation and the view all travel in it.

# %%
data = load_run_data(run)
split = data.splits[0]
best, checkpoint = best_network(run, split.fold)
predictor = Predictor.from_checkpoint(checkpoint, device=params.device)
print(f"{best}: {len(predictor.classes)} classes, {predictor.n_features} features, view {predictor.view}")

# %% [markdown]
# ## Held-out tracks of a few countries
# The countries are chosen on the **validation** rows: the `predict.n_countries` classes the
# model gets right most often there, among those with at least `predict.min_support`
# validation tracks. The test rows play no part in the choice. Then up to
# `predict.per_country` test tracks of each: tracks the model never saw in training.

# %%
test, val, pp = data.table.frame.iloc[split.test], data.table.frame.iloc[split.val], params.predict
showcase = choose_showcase(validation_recall(predictor, val, run.features_dir), pp.n_countries, pp.min_support,
                           pinned=pp.countries, present=test["label"].unique())
chosen = showcase_rows(test, showcase.classes, pp.per_country)
print(f"showing {', '.join(showcase.classes) or 'nothing'}: {showcase.how}")
missing = sorted(set(pp.countries) - set(chosen["label"]))
if missing:
    print(f"no held-out tracks (or no class) for: {', '.join(missing)}")

# %% [markdown]
# In the table, `guesses` lists the model's strongest countries in rank order with their
# probabilities; `region` is the world region of the first guess (not necessarily the
# true one); `distance-aware` is the country that minimises the expected great-circle
# error under those probabilities, a hedge that can differ from the first guess when the
# probability mass is spread over distant places.

# %%
result = predictor.predict(predictor.track_inputs(chosen, run.features_dir), top_k=pp.top_k,
                           batch_size=pp.batch_size)
shown(compact_guesses(result, chosen["label"]))

# %% [markdown]
# ## The guesses, track by track
# Each panel is one track; bars are the model's top-5 countries in rank order (the
# strongest at the top), the true country in a different colour when it is among them.
# **What to look for:** confident, correct tracks from distinctive traditions, and where
# the model hesitates, whether the alternatives are neighbours.

# %%
k = min(params.predict.top_k, len(predictor.classes))
plots.top_k_figure(result, chosen["label"].tolist(), title=f"Top-{k} predictions of {best} for held-out tracks").show()

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(prediction_findings(result, chosen["label"], showcase, best)))

# %% [markdown]
# ## Summary
# - The checkpoint alone is enough to predict new tracks.
# - Top-5 lists show how close the model came when it was wrong.
# - The same predictor runs from the shell: `geomusic predict --checkpoint
#   runs/<run_name>/models/<model>/checkpoint_best.pt --input tracks.csv --top-k 5`.
#
# ## What's next
# The [results summary](../results.md) collects this run's metrics;
# [limitations](../limitations.md) says what they cannot support.
#
# ## References
# - {cite:t}`zhou2014predicting` (the UCI data)
