"""The UCI feature dictionary: complete, shipped unchanged, and consistent with the data it describes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import skew

from geomusic_lib.data import DataError, family_of, feature_dictionary, load_uci, shipped_dictionary


def test_every_column_the_loader_can_produce_has_one_entry():
    names = set(load_uci(collapse_chroma=False).feature_names) | set(load_uci().feature_names)
    table = feature_dictionary()
    assert table["column"].is_unique and set(table["column"]) == names | set(load_uci(False).feature_names)
    assert (table[["family", "group", "statistic", "meaning", "confidence"]] != "").all().all()


def test_the_shipped_csv_is_the_generated_dictionary():
    pd.testing.assert_frame_equal(shipped_dictionary(), feature_dictionary())


def test_families_and_groups_of_columns():
    families = family_of(["s1_timbre01", "s2_timbre03", "s4_timbre17", "s3_chroma", "s1_chroma12"])
    assert families.tolist() == ["zero crossings", "spectral shape", "MFCC", "chroma", "chroma"]
    assert family_of(["s1_timbre05", "s2_chroma"], level="group").tolist() == ["timbral", "tonal"]
    with pytest.raises(DataError, match="danceability"):
        family_of(["s1_timbre01", "danceability"])


def test_duplicates_are_exactly_the_identical_chroma_columns():
    frame = load_uci(collapse_chroma=False).frame
    table = feature_dictionary().set_index("column")
    for column, original in table.loc[table["duplicate_of"] != "", "duplicate_of"].items():
        np.testing.assert_array_equal(frame[column], frame[original])
    kept = [c for c in frame.columns[5:] if table.loc[c, "duplicate_of"] == ""]
    assert len(kept) == 72 and len({tuple(frame[c]) for c in kept}) == 72


def test_the_data_agree_with_the_documented_layout():
    """The evidence the dictionary cites: statistic 1 is a level, 2-4 are spreads; ZCR and centroid
    correlate; MFCC 1 (spectral tilt) falls as the centroid rises."""
    frame = load_uci(False).frame
    mfcc_skew = {s: np.median([skew(frame[f"s{s}_timbre{d:02d}"]) for d in range(6, 18)]) for s in range(1, 5)}
    assert mfcc_skew[1] < 0 < min(mfcc_skew[2], mfcc_skew[3], mfcc_skew[4])
    corr = frame[["s1_timbre01", "s1_timbre02", "s1_timbre06"]].corr().to_numpy()
    assert corr[0, 1] > 0.85 and corr[1, 2] < -0.5


def test_the_features_page_includes_the_dictionary_written_at_build_time():
    from pathlib import Path

    from geomusic_lib.book import feature_dictionary_markdown

    text = feature_dictionary_markdown()
    assert all(f"| {c} |" in text for c in feature_dictionary()["column"])
    assert "| `s<k>_timbre06` | MFCC 1 | MFCC | timbral |" in text
    page = (Path(__file__).resolve().parents[1] / "book" / "features.md").read_text(encoding="utf-8")
    assert "_generated/feature_dictionary.md" in page
