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
# # 08 · Interpretability: what do the models listen to?
#
# ## Overview
# - SHAP values of the best network and of a tree baseline: which features move the
#   predicted probabilities, overall and for the most recognisable countries;
# - attention weights of the attention model, averaged by the true region of a track;
# - a t-SNE map of the best network's internal representation of held-out tracks.
#
# ## Prerequisites
# | concept | importance | notes |
# |---|---|---|
# | [07 · Evaluation](07_evaluation.ipynb) | necessary | picks the best network and the distinctive countries |
# | SHAP values | helpful | contributions to a prediction that sum to its difference from the average |
# | t-SNE | helpful | distances between clusters in the map are not meaningful |
#
# **Time to run**: under a minute for UCI with the default sample sizes (`interpret.*`).

# %% [markdown]
# ## Imports

# %%
import numpy as np
from IPython.display import Markdown, display

from geomusic_lib import plots
from geomusic_lib.book import attention_caveat, choose_showcase, interpretation_findings, shown, validation_recall
from geomusic_lib.data import load_run_data
from geomusic_lib.evaluation import best_network, interpret, interpret_sequence, load_metrics
from geomusic_lib.pipeline import open_stage, stages
from geomusic_lib.predict import Predictor
from geomusic_lib.training import fit_baseline

# %% [markdown]
# ## Parameters

# %% tags=["parameters"]
params_file: str = "../params/default.yaml"  # the run's params file, found from notebooks/ or the repository root
run_name: str = "lab"  # run folder under runs/; "lab" keeps hand runs apart from the book's run (the orchestrator sets it)

# %%
params, run = open_stage(params_file, run_name, show=["seed", "interpret"])

# %% [markdown]
# ## The best network and its inputs
# The network with the lowest validation loss among those on a tabular view (chosen
# without looking at the test split), reloaded from its checkpoint alone, and the
# held-out tracks of the first split, shaped and normalised as it was trained.

# %%
data = load_run_data(run)
split, table, ip = data.splits[0], data.table, params.interpret
best, checkpoint = best_network(run, split.fold, tabular=True)  # SHAP needs named input features
predictor = Predictor.from_checkpoint(checkpoint, device=params.device)
batch = predictor.prepare(table.frame[table.feature_names])
region_of = dict(zip(data.classes["class"], data.classes["region"]))
print(f"explaining {best} ({predictor.view} view) on {len(split.test)} test tracks")

# %% [markdown]
# ## SHAP: which features move the predictions?
# SHAP values (GradientExplainer on the class probabilities) for a sample of test
# tracks, against a background sample of training tracks, summed back to one value per
# original feature. **What to look for:** whether the top features are timbral (MFCCs,
# spectral shape) or tonal (chroma; the family sums below answer it); a few dominant
# features suggest a shortcut worth checking.

# %%
bg = interpret.sample_split(split, ip.shap_background, params.seed, part="train")
ex = interpret.sample_split(split, ip.shap_samples, params.seed, part="test")
values = interpret.shap_values_torch(predictor.model, batch.x[bg], batch.x[ex], predictor.feature_names,
                                     predictor.view, predictor.grid_shape, nsamples=ip.shap_nsamples, seed=params.seed)
network_importance = interpret.global_importance(values, predictor.feature_names)
plots.feature_importance_figure(network_importance, title=f"Global feature importance of {best} (mean |SHAP|)").show()

# %% [markdown]
# The same values for the output of the countries the network recognises best on the
# **validation** rows (the `interpret.top_countries` with the highest validation recall
# among those with at least `interpret.min_support` validation tracks; the test rows play
# no part in the choice). **What to look for:** features that matter for one country
# only: candidate acoustic signatures, to be checked by listening.

# %%
showcase = choose_showcase(validation_recall(predictor, table.frame.iloc[split.val], run.features_dir),
                           ip.top_countries, ip.min_support)
print(f"countries: {', '.join(showcase.classes)}: {showcase.how}")
chosen = showcase.validation[showcase.validation["class"].isin(showcase.classes)]
by_class = interpret.per_class_importance(values, predictor.feature_names, predictor.classes, chosen, ip.top_countries)
plots.per_class_importance_figure(by_class).show()

# %% [markdown]
# ### A tree baseline for comparison
# A random forest, fitted on the training and validation rows with the settings of 07
# (`baseline_settings.random_forest`, tuned ones when the run tuned; the network trained on
# the training rows and early-stopped on the validation rows), explained with TreeExplainer. If
# the network and the forest agree on the important features, the signal is in the
# features rather than in one model's quirks.

# %%
x, y = table.features, table.frame["label"].to_numpy()
fit_rows = np.concatenate([split.train, split.val])
settings = stages.effective_params(params, run, ["random_forest"]).baseline_settings_for("random_forest")
forest = fit_baseline("random_forest", params.seed, x[fit_rows], y[fit_rows], settings)  # as in 07: bounded, tuned
tree_rows = interpret.sample_split(split, ip.tree_shap_samples, params.seed, part="test")
forest_importance = interpret.shap_importance_tree(forest, x[tree_rows], table.feature_names)
plots.feature_importance_figure(forest_importance, title="Global feature importance of the random forest (mean |SHAP|)").show()

# %% [markdown]
# ### Timbral or tonal? SHAP by descriptor family
# On UCI each column belongs to a family of descriptors ([the features page](../features.md)):
# zero crossings, spectral shape and MFCCs (timbral) and chroma (tonal). Summing mean |SHAP|
# over a family answers the question above for both models: `share` is the family's part of
# the total, for the network and for the forest; `n_features` is the family's size.

# %%
by_family = None
if table.source == "uci":
    by_family = interpret.importance_by_family(network_importance)
    forest_family = interpret.importance_by_family(forest_importance)
    display(shown(by_family[["family", "n_features", "share"]].merge(
        forest_family[["family", "share"]], on="family", suffixes=(f" {best}", " forest"))))
else:
    print("Descriptor families are defined for the UCI features only.")

# %% [markdown]
# ## Attention by region
# The attention model weighs its steps before classifying. Averaged over the test
# tracks of each true region, the weights show what it attends to. On UCI a step is a
# **descriptor, not a moment in time**: read "which descriptor", not "when".

# %% tags=["remove-input"]
display(Markdown(attention_caveat(load_metrics(run)) or "No attention model in this run."))

# %%
attention = interpret.attention_model(run, split.fold, device=params.device)  # None when the run has none
if attention is not None:
    test_rows = table.frame.iloc[split.test]
    regions = [region_of[c] for c in test_rows["label"]]
    by_region = interpret.track_attention_by_region(attention, test_rows, regions, run.features_dir)
    plots.attention_figure(by_region, title="Mean attention per step, by true region").show()
else:
    print("No attention model in this run: add `attention` to `models:` in the params file.")

# %% [markdown]
# ## Melodies: where the sequence models look
# On a symbolic source (`data.source: folk`, `params/folk.yaml`) a step is a note. For the
# most confident correctly classified **validation** tune of several countries (the test
# rows play no part in the choice), each note of the first bars is coloured by the
# attention model's weight on it, and by the BiLSTM's integrated-gradients attribution
# ({cite:t}`sundararajan2017ig`; SHAP's explainers expect a fixed-width input, integrated
# gradients work under the note mask). Red notes raise the probability of the true
# country, blue ones lower it. **What to look for:** cadences, characteristic intervals
# or rhythms that carry the decision, rather than the first notes alone.

# %%
for model, method in [("attention", "attention"), ("rnn", "integrated_gradients")]:
    melodies = interpret_sequence.melody_showcase(run, data, split, model, method, params.device, ip.top_countries)
    if melodies is None:
        print(f"No melodies for {model}: no note sequences (see params/folk.yaml), no {model} on frames, "
              f"{'a model that embeds viewpoint tokens (no gradient reaches a token), ' if method != 'attention' else ''}"
              "or no validation tune it got right.")
        continue
    label = method.replace("_", " ").replace("attention", "attention weight")
    plots.melody_weight_figure(melodies.melodies, melodies.weights, melodies.titles, label, signed=method != "attention",
                               title=f"{model}: {label} per note, validation tunes").show()

# %% [markdown]
# ## t-SNE of the learnt representation
# The penultimate layer of the best network for held-out tracks, projected to two
# dimensions. **What to look for:** tracks of one region gathering together. t-SNE keeps
# neighbourhoods, not distances: gaps between clusters mean nothing.

# %%
countries = table.frame["label"].iloc[split.test].to_numpy()
embedding = interpret.tsne_embeddings(predictor.model, batch.x[split.test], countries,
                                      [region_of[c] for c in countries],
                                      mask=None if batch.mask is None else batch.mask[split.test],
                                      n=ip.tsne_samples, seed=params.seed, perplexity=ip.tsne_perplexity)
plots.tsne_figure(embedding, title=f"t-SNE of {best} embeddings (held-out tracks)").show()

# %% [markdown]
# ## What this run shows

# %% tags=["remove-input"]
display(Markdown(interpretation_findings(load_metrics(run), best, network_importance, forest_importance, by_family)))

# %% [markdown]
# ## Summary
# - SHAP ranks the features the best network and a random forest rely on.
# - Attention weights show which steps the attention model weighs, by region; on melodies,
#   attention and integrated gradients mark the notes behind a decision.
# - The t-SNE map shows whether the network's representation groups regions.
# - All three are hypotheses about musical cues, to be tested by listening, not findings.
#
# ## What's next
# [09 · Predict](09_predict.ipynb) shows the model's top-5 guesses for individual
# held-out tracks.
#
# ## References
# - {cite:t}`lundberg2017shap` (SHAP)
# - {cite:t}`vandermaaten2008tsne` (t-SNE)
# - {cite:t}`bahdanau2015attention` (additive attention)
# - {cite:t}`sundararajan2017ig` (integrated gradients)
