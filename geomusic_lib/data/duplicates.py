"""Rows with identical feature vectors (the same recording charting in several countries, say):
counted, joined into one split group (`data.duplicates: group`), dropped (`drop`) or left alone (`keep`)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

logger = logging.getLogger(__name__)

DuplicatePolicy = Literal["group", "drop", "keep"]
POLICY_TEXT = {
    "group": "rows with identical feature vectors are one group of the split, so they sit on one side "
             "(data.duplicates: group)",
    "drop": "of rows with identical feature vectors only the first is kept (data.duplicates: drop)",
    "keep": "rows with identical feature vectors are split like any other rows, so a test row may have an "
            "identical twin in training (data.duplicates: keep)",
}


def feature_hashes(frame: pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """One 64-bit hash per row of its feature vector (equal vectors, equal hashes)."""
    return pd.util.hash_pandas_object(frame[list(feature_names)], index=False).to_numpy()


def duplicate_counts(frame: pd.DataFrame, feature_names: Sequence[str]) -> dict[str, int]:
    """How many rows share their feature vector with another row, in how many sets, and how many of
    those sets (and rows) mix labels."""
    if not feature_names or frame.empty:
        return {"rows": 0, "sets": 0, "cross_label_rows": 0, "cross_label_sets": 0}
    hashes = pd.Series(feature_hashes(frame, feature_names), index=frame.index)
    size = hashes.map(hashes.value_counts())
    labels_per_set = frame["label"].astype(str).groupby(hashes).nunique()
    mixed = hashes.map(labels_per_set) > 1
    return {"rows": int((size > 1).sum()), "sets": int((hashes[size > 1]).nunique()),
            "cross_label_rows": int(mixed.sum()), "cross_label_sets": int(hashes[mixed].nunique())}


def duplicate_note(counts: dict[str, int], policy: DuplicatePolicy, dropped: int = 0) -> str:
    """One sentence for 01, the findings and the results table: what was found and what was done."""
    if counts["rows"] == 0:
        return "No two rows have identical feature vectors."
    text = (f"{counts['rows']:,} rows share their feature vector with another row ({counts['sets']:,} sets); "
            f"{counts['cross_label_rows']:,} of them, in {counts['cross_label_sets']:,} sets, carry different labels. "
            f"{POLICY_TEXT[policy][0].upper()}{POLICY_TEXT[policy][1:]}")
    return text + (f": {dropped:,} rows dropped." if policy == "drop" else ".")


def apply_duplicate_policy(frame: pd.DataFrame, feature_names: Sequence[str],
                           policy: DuplicatePolicy) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame to split (without later copies under `drop`) and the `duplicates` note of the run."""
    counts = duplicate_counts(frame, feature_names)
    dropped = 0
    if policy == "drop" and counts["rows"]:
        keep = ~pd.Series(feature_hashes(frame, feature_names)).duplicated().to_numpy()
        dropped = int((~keep).sum())
        frame = frame[keep].reset_index(drop=True)
    note = {"policy": policy, **counts, "dropped": dropped, "note": duplicate_note(counts, policy, dropped)}
    if counts["rows"]:
        logger.warning(note["note"])
    return frame, note


def join_identical(groups: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Groups merged wherever two rows share a feature vector (connected components of the
    row-group-vector graph); a merged group takes the smallest name among its members."""
    group_codes, group_names = pd.factorize(pd.Series(groups))
    hash_codes, _ = pd.factorize(pd.Series(hashes))
    n_rows, n_groups = len(groups), len(group_names)
    rows = np.arange(n_rows)
    edges_from = np.concatenate([rows, rows])
    edges_to = np.concatenate([n_rows + group_codes, n_rows + n_groups + hash_codes])
    n_nodes = n_rows + n_groups + int(hash_codes.max(initial=-1)) + 1
    graph = coo_matrix((np.ones(len(edges_from), dtype=np.int8), (edges_from, edges_to)), shape=(n_nodes, n_nodes))
    _, component = connected_components(graph, directed=False)
    names = pd.Series(groups, dtype=str)
    return names.groupby(component[:n_rows]).transform("min").to_numpy(dtype=str)


def shared_between(frame: pd.DataFrame, feature_names: Sequence[str], inside: np.ndarray,
                   outside: np.ndarray) -> dict[str, int]:
    """Artists (known groups) and feature vectors found both in `inside` rows and in `outside` rows."""
    known = frame["group"].astype("string")
    artists = set(known.iloc[inside].dropna()) & set(known.iloc[outside].dropna())
    vectors = 0
    if feature_names:
        hashes = feature_hashes(frame, feature_names)
        vectors = len(set(hashes[inside]) & set(hashes[outside]))
    return {"artists": len(artists), "vectors": vectors}
