"""Label building: one row per track by majority vote, label purity, and class filtering."""
from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError


def normalise_text(text: object) -> str:
    """Lower-case, accent-free, punctuation-free text for matching artist and title strings."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def majority_vote(events: pd.DataFrame, key: str = "track_id", label: str = "label") -> pd.DataFrame:
    """Collapse events to one row per track: the most frequent label, its purity and event count.

    Ties go to the alphabetically first label so that the result is deterministic.
    """
    counts = events.groupby([key, label], observed=True).size().rename("n").reset_index()
    counts = counts.sort_values([key, "n", label], ascending=[True, False, True])
    total = counts.groupby(key)["n"].transform("sum")
    counts["purity"] = counts["n"] / total
    counts["n_events"] = total
    best = counts.drop_duplicates(key, keep="first")
    return best[[key, label, "purity", "n_events"]].reset_index(drop=True)


def purity_report(voted: pd.DataFrame) -> dict[str, float]:
    """How often the events of one track agree on its label."""
    multi = voted[voted["n_events"] > 1]
    return {
        "tracks": int(len(voted)),
        "tracks_with_several_events": int(len(multi)),
        "mean_purity": float(voted["purity"].mean()) if len(voted) else float("nan"),
        "mean_purity_several_events": float(multi["purity"].mean()) if len(multi) else float("nan"),
        "share_unanimous": float((voted["purity"] == 1.0).mean()) if len(voted) else float("nan"),
    }


def drop_small_classes(frame: pd.DataFrame, min_tracks: int, source: str, column: str = "label") -> pd.DataFrame:
    """Keep classes with at least `min_tracks` tracks; fail clearly if none is left."""
    counts = frame["label"].value_counts()
    keep = counts[counts >= min_tracks].index
    if len(keep) == 0:
        raise DataError(
            f"{source}: no class in column '{column}' has at least {min_tracks} tracks "
            f"(largest has {int(counts.max()) if len(counts) else 0}). Lower min_tracks_per_class or use more data."
        )
    if len(keep) < 2:
        raise DataError(
            f"{source}: only one class ({keep[0]!r}) in column '{column}' has at least {min_tracks} tracks; "
            "classification needs two or more. Lower min_tracks_per_class or use more data."
        )
    return frame[frame["label"].isin(keep)].reset_index(drop=True)
