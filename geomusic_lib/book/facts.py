"""The numbers and sentences the book's prose pages take from the run (never typed): MyST
substitutions such as `{{ run_tracks }}` in the run's `_config.yml`, and the headline and
findings fragments that the intro and the results page include."""
from __future__ import annotations

import numpy as np
import pandas as pd

from geomusic_lib.data.folk_labels import EXCLUSION_REASONS
from geomusic_lib.data.duplicates import shared_between
from geomusic_lib.data.store import RunData, load_run_data
from geomusic_lib.data.uci import N_STATISTICS, load_uci
from geomusic_lib.evaluation.evaluate import best_network, load_metrics
from geomusic_lib.core.fileio import atomic_write_text
from geomusic_lib.book.findings import comparison_findings, floor_of, named_list, pct, with_interval
from geomusic_lib.data.table import distinct_column_count, identical_column_groups
from geomusic_lib.core.rundir import RunDir


def uci_facts() -> dict[str, str]:
    """Facts of the shipped UCI file, counted from it by the loader: tracks, classes, columns, copies."""
    table = load_uci(chromatic=True, collapse_chroma=False)
    features = table.frame[table.feature_names]
    timbre = len(load_uci(chromatic=False).feature_names)
    groups = identical_column_groups(features)
    distinct = distinct_column_count(features)
    size = max((len(g) for g in groups), default=1)
    return {"uci_tracks": f"{len(features):,}", "uci_classes": str(table.frame["label"].nunique()),
            "uci_columns": str(features.shape[1]),
            "uci_timbre_columns": str(timbre), "uci_chroma_columns": str(features.shape[1] - timbre),
            "uci_distinct_columns": str(distinct), "uci_identical_groups": str(len(groups)),
            "uci_group_size": str(size), "uci_identical_pairs": str(sum(len(g) * (len(g) - 1) // 2 for g in groups)),
            "uci_statistics": str(N_STATISTICS), "uci_timbre_descriptors": str(timbre // N_STATISTICS),
            "uci_file_descriptors": str(features.shape[1] // N_STATISTICS),
            "uci_collapsed_grid": f"{N_STATISTICS} × {distinct // N_STATISTICS}"}


def run_facts(run: RunDir, data: RunData) -> dict[str, str]:
    """Facts of the run that built the book: its data, split, floors and smallest test classes."""
    split, frame = data.splits[0], data.table.frame
    labels = frame["label"].astype(str)
    test_sizes = labels.iloc[split.test].value_counts().reindex(labels.unique(), fill_value=0)
    floor = floor_of(data)
    return {"run_name": run.name, "run_source": data.table.source, "run_tracks": f"{len(frame):,}",
            "run_classes": str(floor.n_classes), "run_features": str(len(data.table.feature_names)),
            "run_test_tracks": f"{len(split.test):,}", "run_test_share": pct(len(split.test) / len(frame), 0),
            "run_min_test_support": str(int(test_sizes.min())),
            "run_min_test_classes": named_list(sorted(test_sizes[test_sizes == test_sizes.min()].index)),
            "run_chance": pct(floor.chance), "run_majority": pct(floor.majority),
            "run_majority_class": floor.majority_class}


#: how the intro names each network family
NETWORK_NAMES = {"fcnn": "a fully connected network", "tabm": "TabM (an ensemble-in-one MLP)", "cnn": "a CNN",
                 "rnn": "a recurrent network", "attention": "an attention model"}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def network_facts(metrics: pd.DataFrame) -> dict[str, str]:
    """How many neural networks this run trained, and which: the intro says it from the run."""
    trained = metrics.loc[metrics["kind"] == "model", "model"].drop_duplicates().tolist() if len(metrics) else []
    order = [n for n in NETWORK_NAMES if n in trained] + [n for n in trained if n not in NETWORK_NAMES]
    count = NUMBER_WORDS[len(order)] if len(order) < len(NUMBER_WORDS) else str(len(order))
    names = [NETWORK_NAMES.get(n, n) for n in order]
    listed = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + (names[-1] if names else "")
    return {"run_networks": count, "run_network_list": listed or "none trained in this run",
            "run_networks_noun": "neural network" if len(order) == 1 else "neural networks"}


def headline_markdown(run: RunDir, data: RunData, metrics: pd.DataFrame) -> str:
    """The intro's opening: the run's best test accuracy as a large figure, and one sentence of result."""
    floor = floor_of(data)
    ranked = metrics[metrics["model"] != "majority"].sort_values("accuracy", ascending=False)
    if ranked.empty:
        return ""
    top = ranked.iloc[0]
    return (f"```{{admonition}} This run: {pct(top['accuracy'], 0)} of held-out tracks placed in the right class\n"
            f":class: tip\n**{top['model']}** names the right one of {floor.n_classes} classes for "
            f"{with_interval(top)} of the {floor.n_test} test tracks of run `{run.name}` "
            f"(`{data.table.source}` data): chance is {pct(floor.chance)} and always answering the largest class "
            f"scores {pct(floor.majority)}. The [results page](results.md) has every model with its interval.\n```\n")


def results_findings_markdown(run: RunDir, data: RunData, metrics: pd.DataFrame) -> str:
    """07's findings, for the results page."""
    try:
        best, _ = best_network(run)
        per_class = run.read_per_class(best)
    except (FileNotFoundError, ValueError):
        best, per_class = None, None
    return comparison_findings(metrics, floor_of(data), best, per_class) + "\n"


def folk_counts_markdown(run: RunDir, data: RunData) -> str:
    """The folk page's corpus counts, from this run's loader report; a note for a run on other data."""
    report = data.table.notes.get("report") if data.table.source == "folk" else None
    if not report:
        return ("```{note}\nThis run (`" + run.name + "`) reads `" + data.table.source + "` data, so it has no counts "
                "of the Essen collection. `make book PARAMS=params/folk.yaml` (countries) or "
                "`PARAMS=params/folk_china.yaml` (Chinese provinces) writes them here.\n```\n")
    classes, small = report["classes"], report["small_classes"]
    labelled = report["tunes_labelled"]
    top, top_n = max(classes.items(), key=lambda kv: kv[1])
    left_out = "; ".join(f"{EXCLUSION_REASONS.get(k, k)}: {v:,}" for k, v in report["excluded"].items())
    lines = [f"Counted by this run (`{run.name}`) from the copy of the collection it read:", "",
             f"- **{report['tunes_read']:,} tunes** in {len(report['files'])} files; **{labelled:,} tunes in "
             f"{len(classes)} classes** kept: " + ", ".join(f"{k} {v:,}" for k, v in classes.items()) + ".",
             f"- The largest class, {top}, holds {pct(top_n / labelled, 0)} of the kept tunes.",
             f"- Left out, by reason: {left_out}." if left_out else "- No tune was left out.",
             f"- {report['groups']:,} variant groups (the largest holds {report['largest_group']} tunes); "
             f"{report['tunes_in_multi_tune_groups']:,} tunes share a group with another."]
    if small:
        lines.append(f"- Classes below the minimum: {sum(small.values()):,} tunes in {len(small)} classes "
                     f"(" + ", ".join(f"{k} {v}" for k, v in list(small.items())[:5]) +
                     (", …" if len(small) > 5 else "") + ").")
    return "\n".join(lines) + "\n"


def write_book_facts(run: RunDir) -> dict[str, str]:
    """Write the headline and findings fragments and return the prose pages' substitutions, which the
    run's `_config.yml` carries (the run's data and metrics are read once for all three)."""
    data, metrics = load_run_data(run), load_metrics(run)
    atomic_write_text(run.book_generated / "headline.md", headline_markdown(run, data, metrics))
    atomic_write_text(run.book_generated / "findings.md", results_findings_markdown(run, data, metrics))
    atomic_write_text(run.book_generated / "folk_counts.md", folk_counts_markdown(run, data))
    atomic_write_text(run.book_generated / "run_split.md", split_markdown(run, data))
    return {**uci_facts(), **run_facts(run, data), **network_facts(metrics)}


def split_markdown(run: RunDir, data: RunData) -> str:
    """The data page's account of this run's split: what grouped it, identical feature vectors, and
    what the saved splits share across their sides (0 artists and 0 vectors when grouped)."""
    notes, frame, names = data.table.notes, data.table.frame, data.table.feature_names
    grouping = notes.get("group_note") or ("The split is not grouped by artist: this source names no artists, "
                                           "so each track is its own group.")
    if data.table.source == "folk":
        grouping = f"The split is grouped by tune variant ({notes.get('group_note', '')})."
    duplicates = (notes.get("duplicates") or {}).get("note", "Identical feature vectors are not checked "
                                                              "before the features exist (this source's features come later).")
    lines = [f"Run `{run.name}` reads `{data.table.source}` data: {len(frame):,} tracks.", "",
             f"- **Grouping.** {grouping}", f"- **Identical feature vectors.** {duplicates}"]
    for split in data.splits[:3]:
        seen = shared_between(frame, names, np.r_[split.train, split.val], split.test)
        kind = "variant groups" if data.table.source == "folk" else "artists"
        lines.append(f"- {split.name.capitalize()}: {seen['artists']} {kind} and {seen['vectors']} identical "
                     "feature vectors are on both sides of the test split.")
    if len(data.splits) > 3:
        lines.append(f"- (and {len(data.splits) - 3} more folds, checked in 01)")
    return "\n".join(lines) + "\n"
