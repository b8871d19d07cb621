"""What a run shows, in words written from its own numbers: the "What this run shows" section
that ends each notebook, and the sentences the book's prose pages include.

Every function takes what a stage computed (metrics, per-class tables, the splits) and
returns Markdown; nothing here trains or evaluates, and no number in the text is typed.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from geomusic_lib.data.splits import Split
from geomusic_lib.data.store import RunData, load_run_data
from geomusic_lib.data.table import distinct_column_count, identical_column_groups
from geomusic_lib.data.uci_features import shipped_dictionary
from geomusic_lib.evaluation.metrics import per_class_metrics
from geomusic_lib.predict.predictions import read_predictions
from geomusic_lib.core.rundir import RunDir

if TYPE_CHECKING:
    from geomusic_lib.core.params import Params

MIN_SUPPORT = 2  # a country named as recognised needs at least this many test tracks


@dataclass(frozen=True)
class Floor:
    """The two reference points of a test accuracy: uniform guessing and the majority class."""

    n_classes: int
    chance: float
    majority: float
    majority_class: str
    n_test: int


def floor_of(data: RunData, split_index: int = 0) -> Floor:
    """Chance (1 / number of classes) and the majority floor: the share of test tracks in the
    training rows' most frequent class, which is what the majority baseline scores."""
    split = data.splits[split_index]
    labels = data.table.frame["label"].astype(str).to_numpy()
    train, test = labels[split.train], labels[split.test]
    values, counts = np.unique(train, return_counts=True)
    top = str(values[np.argmax(counts)])
    n_classes = len(np.unique(labels))
    return Floor(n_classes, 1.0 / n_classes, float(np.mean(test == top)) if len(test) else float("nan"), top, len(test))


def pct(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{100 * value:.{digits}f} %"


def with_interval(row: Mapping, metric: str = "accuracy") -> str:
    """`47.6 % (40.6–54.2 %)`: an estimate with its 95 % bootstrap interval when there is one."""
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if low is None or high is None or low != low or high != high:
        return pct(row[metric])
    return f"{pct(row[metric])} ({100 * low:.1f}–{100 * high:.1f} %)"


def intervals_overlap(a: Mapping, b: Mapping, metric: str = "accuracy") -> bool:
    """Whether the two 95 % intervals share any value (then the test set cannot tell them apart)."""
    return max(a[f"{metric}_ci_low"], b[f"{metric}_ci_low"]) <= min(a[f"{metric}_ci_high"], b[f"{metric}_ci_high"])


def against_floor(row: Mapping, floor: Floor, detail: bool = True) -> str:
    """Where an accuracy sits against chance and the majority floor, judged by its interval."""
    low = row.get("accuracy_ci_low", row["accuracy"])
    if low > floor.majority:
        verdict = "above the majority floor even at the low end of its interval"
    elif row["accuracy"] > floor.majority:
        verdict = "above the majority floor, though its interval reaches down to it"
    else:
        verdict = "not above the majority floor"
    if not detail:
        return verdict
    return f"{verdict} ({floors_sentence(floor)})"


def floors_sentence(floor: Floor) -> str:
    return (f"the majority floor is {pct(floor.majority)} (always answering {floor.majority_class}), "
            f"chance {pct(floor.chance)} ({floor.n_classes} classes)")


def named_list(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def countries_sentence(per_class: pd.DataFrame, top: int = 3, min_support: int = MIN_SUPPORT) -> str:
    """The classes a model gets right most often (with enough test tracks) and those it never gets right."""
    frame = per_class.assign(hits=np.rint(per_class["recall"] * per_class["support"]).astype(int))
    supported = frame[frame["support"] >= min_support].sort_values(["recall", "support"], ascending=False,
                                                                 kind="mergesort")
    best = supported[supported["recall"] > 0].head(top)
    never = frame[(frame["support"] > 0) & (frame["hits"] == 0)].sort_values("support", ascending=False)
    parts = []
    if len(best):
        parts.append("right most often for " + ", ".join(
            f"{r['class']} ({r['hits']}/{r['support']})" for _, r in best.iterrows()))
    if len(never):
        parts.append(f"never right for {len(never)} of {int((frame['support'] > 0).sum())} classes "
                     f"({named_list(never['class'].astype(str).tolist())})")
    return "; ".join(parts) if parts else "no class has enough test tracks to name"


def model_findings(scores: Mapping[str, Mapping], per_class: Mapping[str, pd.DataFrame], floor: Floor) -> str:
    """The end of a model notebook: each network's test accuracy against the floors, the
    countries it gets right and wrong, and whether the networks can be told apart."""
    lines = [f"- On these {floor.n_test} test tracks {floors_sentence(floor)}."]
    for name, metrics in scores.items():
        lines.append(f"- **{name}**: {with_interval(metrics)} right, {against_floor(metrics, floor, detail=False)}. "
                     f"Top-5: {with_interval(metrics, 'top5_accuracy')}. "
                     f"It is {countries_sentence(per_class[name])}.")
    names = list(scores)
    if len(names) == 2:
        same = intervals_overlap(scores[names[0]], scores[names[1]])
        lines.append(f"- The intervals of {names[0]} and {names[1]} "
                     + ("overlap: this test set cannot tell them apart." if same else "do not overlap."))
    lines.append("- [07](07_evaluation.ipynb) sets them against every other model and the baselines.")
    return "\n".join(lines)


def comparison_findings(metrics: pd.DataFrame, floor: Floor, best_network: str | None = None,
                        per_class_best: pd.DataFrame | None = None) -> str:
    """The end of 07 and the results page: the top score against the floors, which models the
    test set cannot tell from it, networks against baselines, and the best network's countries."""
    table = metrics[metrics["model"] != "majority"].sort_values("accuracy", ascending=False)
    if table.empty:
        return "- No model has been evaluated yet."
    top = table.iloc[0]
    tied = [m for m, r in table.iloc[1:].set_index("model").iterrows() if intervals_overlap(top, r)]
    apart = [m for m in table["model"].iloc[1:] if m not in tied]
    lines = [f"- The highest test accuracy is **{top['model']}**'s {with_interval(top)}, {against_floor(top, floor)}."]
    lines.append(f"- Its interval overlaps those of {named_list(tied, 10)}: on {floor.n_test} test tracks these "
                 "cannot be told apart." if tied else "- No other model's interval overlaps it.")
    if apart:
        lines.append(f"- Clearly below it: {named_list(apart, 10)}.")
    lines += _kind_lines(table)
    if best_network is not None and per_class_best is not None:
        lines.append(f"- The best network by validation loss, {best_network}, is "
                     f"{countries_sentence(per_class_best)}.")
    if "median_km" in top and top["median_km"] == top["median_km"]:
        mean = f", mean {top['mean_km']:,.0f} km" if "mean_km" in top else ""
        lines.append(f"- {top['model']}'s distance from the true place: median {top['median_km']:,.0f} km{mean} "
                     "(a right class counts as 0 km).")
    return "\n".join(lines)


def _kind_lines(table: pd.DataFrame) -> list[str]:
    """The best network against the best baseline, and the ensemble against its best member."""
    best = {kind: rows.iloc[0] for kind, rows in table.groupby("kind", sort=False)}
    lines = []
    if "model" in best and "baseline" in best:
        net, base = best["model"], best["baseline"]
        relation = "overlap" if intervals_overlap(net, base) else "do not overlap"
        lines.append(f"- Best network {net['model']} {with_interval(net)} against best baseline {base['model']} "
                     f"{with_interval(base)}: the intervals {relation}.")
    if "ensemble" in best:
        ens = best["ensemble"]
        members = table[table["kind"] != "ensemble"].iloc[0]
        gain = ens["accuracy"] - members["accuracy"]
        lines.append(f"- The ensemble is {abs(100 * gain):.1f} points {'above' if gain >= 0 else 'below'} the best "
                     f"single model ({members['model']}).")
    return lines


def data_findings(frame: pd.DataFrame, split: Split, notes: Mapping | None = None) -> str:
    """The end of 01: how many tracks and classes, how the split falls and what grouped it (from the
    source's `notes`), identical feature vectors, the thinnest test classes."""
    labels = frame["label"].astype(str)
    sizes = labels.value_counts()
    test_sizes = labels.iloc[split.test].value_counts().reindex(sizes.index, fill_value=0)
    thinnest = test_sizes[test_sizes == test_sizes.min()].index.tolist()
    n = len(frame)
    spread = (f"every class has {sizes.iloc[0]} tracks" if sizes.iloc[0] == sizes.iloc[-1] else
              f"the largest, {sizes.index[0]}, has {sizes.iloc[0]} tracks; the smallest, {sizes.index[-1]}, "
              f"has {sizes.iloc[-1]}")
    notes = notes or {}
    grouping = [f"- {notes['group_note']}"] if notes.get("group_note") else []
    duplicates = notes.get("duplicates") or {}
    if duplicates.get("rows"):
        grouping.append(f"- {duplicates['note']}")
    return "\n".join([
        f"- {n:,} tracks in {len(sizes)} classes: {spread}.",
        f"- Train / validation / test: {len(split.train):,} / {len(split.val):,} / {len(split.test):,} tracks "
        f"({pct(len(split.test) / n, 0)} held out for the test).",
        *grouping,
        f"- The smallest classes have {test_sizes.min()} test track(s) ({named_list(thinnest)}), so a single "
        "track moves their recall a lot: read per-class scores with that in mind.",
    ])


def feature_findings(features: pd.DataFrame, note: str | None = None) -> str:
    """The end of 02: how many columns the models read, whether some are copies of others, and the
    source's own note on copies it removed (`chroma_note` of UCI)."""
    groups = identical_column_groups(features)
    distinct = distinct_column_count(features)
    lines = [f"- The models read {features.shape[1]} feature columns for {len(features):,} tracks."]
    if groups:
        example = groups[0]
        lines.append(f"- They hold {distinct} distinct columns: {len(groups)} group(s) of identical copies, e.g. "
                     f"{named_list(example, 4)}. A model gains nothing from the copies, and importance is split "
                     "among them.")
    else:
        lines.append("- No column is a copy of another.")
    if note:
        lines.append(f"- {note}")
    return "\n".join(lines)


def network_findings(run: RunDir, scores: Mapping[str, Mapping]) -> str:
    """`model_findings` for networks a notebook just trained and scored (`evaluate_predictions`)."""
    data, classes = load_run_data(run), run.read_classes()
    per_class = {name: per_class_metrics(read_predictions(run.predictions(name)), classes) for name in scores}
    return model_findings(scores, per_class, floor_of(data))


def _row(metrics: pd.DataFrame, model: str) -> pd.Series | None:
    rows = metrics[metrics["model"] == model]
    return rows.iloc[0] if len(rows) else None


def attention_caveat(metrics: pd.DataFrame, model: str = "attention") -> str | None:
    """How the attention model scored against the baselines, so its weights are read for what they are."""
    own = _row(metrics, model)
    if own is None:
        return None
    baselines = metrics[(metrics["kind"] == "baseline") & (metrics["model"] != "majority")]
    above = [b for _, b in baselines.iterrows() if b["accuracy_ci_low"] > own["accuracy_ci_high"]]
    below = baselines[baselines["accuracy"] > own["accuracy"]]["model"].tolist()
    verdict = (f"below {named_list(below)} on its point estimate" if below else "at or above every baseline")
    clear = f"; the intervals of {named_list([b['model'] for b in above])} lie wholly above it" if above else ""
    return (f"- The attention model scored {with_interval(own)} on the test set, {verdict}{clear}. Its weights "
            "show what this model attends to, not what makes a country recognisable.")


def feature_label(name: str) -> str:
    """`s3_timbre04` → `s3_timbre04 (spectral flux, 3: std of texture means)` for UCI columns; other names as they are."""
    described = _uci_descriptions()
    return f"{name} ({described[name]})" if name in described else name


@lru_cache(maxsize=1)
def _uci_descriptions() -> dict[str, str]:
    """Column → "descriptor, statistic" from the shipped UCI dictionary, read once."""
    table = shipped_dictionary()
    return {c: f"{d}, {s}" for c, d, s in zip(table["column"], table["descriptor"], table["statistic"])}


def importance_agreement(network: pd.DataFrame, forest: pd.DataFrame, top: int = 10) -> str:
    """How many of the network's `top` SHAP features are also among the forest's (named by descriptor)."""
    net, tree = network["feature"].head(top).tolist(), set(forest["feature"].head(top))
    shared = [feature_label(f) for f in net if f in tree]
    return (f"- Of the {len(net)} features the network relies on most, {len(shared)} are also among the random "
            f"forest's top {top}" + (f" ({named_list(shared)})." if shared else "."))


def interpretation_findings(metrics: pd.DataFrame, explained: str, network: pd.DataFrame,
                            forest: pd.DataFrame, by_family: pd.DataFrame | None = None) -> str:
    """The end of 08: which network was explained and how well it scored, the SHAP families, whether
    the forest agrees, and the attention model's score."""
    own = _row(metrics, explained)
    lines = [f"- The explained network, {explained}, scored {with_interval(own)} on the test set."
             if own is not None else f"- The explained network is {explained}."]
    if by_family is not None and len(by_family):
        top = by_family.iloc[0]
        share = by_family["share"]
        lines.append(f"- By descriptor family, {top['family']} carries the most SHAP weight "
                     f"({pct(float(share.iloc[0]), 0)}), then " + ", ".join(
                         f"{f} ({pct(float(s), 0)})" for f, s in zip(by_family["family"].iloc[1:4], share.iloc[1:4])) + ".")
    lines.append(importance_agreement(network, forest))
    caveat = attention_caveat(metrics)
    if caveat:
        lines.append(caveat)
    return "\n".join(lines)


def plan_findings(params: "Params") -> str:
    """The end of 00: what this run is set to do, from its params (results come from 07 on)."""
    source = params.data.source
    split = (f"one held-out split ({pct(params.split.train, 0)} / {pct(params.split.val, 0)} / "
             f"{pct(params.split.test, 0)} train / validation / test)" if params.split.strategy == "holdout"
             else f"{params.split.folds}-fold cross-validation")
    return "\n".join([
        f"- Run `{params.run_name}` reads the `{source}` source and trains {len(params.models)} networks "
        f"({', '.join(params.models)}) against {len(params.baselines)} baselines ({', '.join(params.baselines)}), "
        f"on {split}, seed {params.seed}.",
        f"- Every score comes with a {pct(params.evaluate.ci, 0)} bootstrap interval "
        f"({params.evaluate.bootstrap} resamples); tuning is {'on' if params.tune.enabled else 'off'}.",
        "- [07](07_evaluation.ipynb) and the [results page](../results.md) report what it found.",
    ])


def split_protocol(notes: Mapping) -> str:
    """One sentence for a results table: what kept tracks apart in the split, and what happened to
    identical feature vectors (from the run's `meta.json` notes)."""
    if notes.get("grouped_by"):
        grouped = f"grouped by {notes['grouped_by']}"
    elif "group_column" in notes:
        grouped = "not grouped (data.table.group_column: none)"
    else:
        grouped = "not grouped by artist (the source names none)"
    duplicates = notes.get("duplicates") or {}
    if not duplicates:
        return f"The split is {grouped}."
    if not duplicates.get("rows"):
        return f"The split is {grouped}; no two tracks have identical feature vectors."
    done = {"group": "kept on one side", "drop": f"reduced to one ({duplicates.get('dropped', 0):,} dropped)",
            "keep": "split like other rows"}[duplicates["policy"]]
    return (f"The split is {grouped}; {duplicates['rows']:,} tracks with identical feature vectors "
            f"({duplicates.get('cross_label_rows', 0):,} with different labels) are {done} "
            f"(data.duplicates: {duplicates['policy']}).")
