"""Label building: one row per track by majority vote, label purity, and class filtering."""
from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError

logger = logging.getLogger(__name__)

MIN_TRACKS_TO_SPLIT = 3  # a class needs one track each in train, validation and test


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


def filter_small_classes(frame: pd.DataFrame, min_tracks: int, source: str,
                         column: str = "label") -> tuple[pd.DataFrame, str | None]:
    """Keep classes with at least max(`min_tracks`, 3) tracks; the note (None if none) names those dropped.

    Three is the floor because a smaller class cannot appear in train, validation and test.
    """
    floor = max(min_tracks, MIN_TRACKS_TO_SPLIT)
    counts = frame["label"].value_counts()
    keep = counts[counts >= floor].index
    fix = ("Use more data" if min_tracks <= MIN_TRACKS_TO_SPLIT
           else "Lower min_tracks_per_class (3 is the least a split allows) or use more data")
    if len(keep) == 0:
        raise DataError(
            f"{source}: no class in column '{column}' has at least {floor} tracks "
            f"(largest has {int(counts.max()) if len(counts) else 0}). {fix}."
        )
    if len(keep) < 2:
        raise DataError(
            f"{source}: only one class ({keep[0]!r}) in column '{column}' has at least {floor} tracks; "
            f"classification needs two or more. {fix}."
        )
    small = counts[counts < floor]
    if small.empty:
        return frame.reset_index(drop=True), None
    shown = ", ".join(f"{name!r} ({n})" for name, n in small.head(10).items())
    note = (f"{source}: dropped {len(small)} class(es) of column '{column}' with fewer than {floor} tracks "
            f"({int(small.sum())} track(s)): {shown}{' …' if len(small) > 10 else ''}. "
            f"A class needs at least {MIN_TRACKS_TO_SPLIT} tracks to appear in train, validation and test"
            + (f"; min_tracks_per_class is {min_tracks}." if min_tracks > MIN_TRACKS_TO_SPLIT else "."))
    return frame[frame["label"].isin(keep)].reset_index(drop=True), note


def drop_small_classes(frame: pd.DataFrame, min_tracks: int, source: str, column: str = "label") -> pd.DataFrame:
    """`filter_small_classes`, with its note logged as a warning; fail clearly if fewer than two classes remain."""
    kept, note = filter_small_classes(frame, min_tracks, source, column)
    if note:
        logger.warning(note)
    return kept
