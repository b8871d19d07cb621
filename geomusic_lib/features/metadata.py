"""The `metadata` source: MIRAGE's Wikidata fields (CC0) as multi-hot features.

These features are *not acoustic*: they describe who plays and in which language, not how
the music sounds. Target proxies (the station's location for a station target, the artist's
country for an artist target) are refused.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from geomusic_lib.features.base import (
    FeatureError, FeatureResult, check_no_target_leak, coverage_summary, is_target_proxy, write_outputs,
)

_SEPARATORS = re.compile(r"\s*[;|,]\s*")


def parse_list(value: object) -> list[str]:
    """A list-valued cell as a list of clean strings: Python lists, "['a', 'b']", 'a; b', 'a|b', 'a, b'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, set, np.ndarray)):
        items = list(value)
    else:
        text = str(value).strip()
        if not text or text.lower() in {"nan", "none", "null", "[]"}:
            return []
        if text[0] in "[(" and text[-1] in "])":
            try:
                parsed = ast.literal_eval(text)
                items = list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
            except (ValueError, SyntaxError):
                items = _SEPARATORS.split(text.strip("[]()"))
        else:
            items = _SEPARATORS.split(text)
    cleaned = (str(i).strip(" \t[]()'\"").lower() for i in items if i is not None)
    return list(dict.fromkeys(i for i in cleaned if i and i not in {"nan", "none"}))


def _slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_") or "empty"


def multi_hot(values: pd.Series, field: str, min_count: int) -> pd.DataFrame:
    """`<field>__<value>` 0/1 columns for values seen in at least `min_count` rows, plus `<field>__known`."""
    lists = values.map(parse_list)
    counts = Counter(v for items in lists for v in items)
    vocab = sorted(v for v, n in counts.items() if n >= min_count)
    columns = {}
    for value in vocab:
        name = f"{field}__{_slug(value)}"
        hit = lists.map(lambda items, v=value: v in items).to_numpy()
        columns[name] = np.maximum(columns.get(name, 0), hit.astype(np.float32))
    columns[f"{field}__known"] = lists.map(bool).to_numpy().astype(np.float32)
    return pd.DataFrame(columns, index=values.index)


def extract_metadata(tracks: pd.DataFrame, fields: list[str], min_count: int, out_dir: Path,
                     target: str) -> FeatureResult:
    """Multi-hot Wikidata features for the listed fields; refuses any field that proxies the target."""
    fields = [f.lower() for f in fields]
    bad = [f for f in fields if is_target_proxy(f, target)]
    if bad:
        raise FeatureError(
            f"features.metadata_fields: {bad} would leak the {target} target (they are the target or a proxy "
            "of it). Remove them from params."
        )
    present = [f for f in fields if f in tracks.columns]
    if not present:
        raise FeatureError(
            f"input tracks: none of features.metadata_fields {fields} is a column. MIRAGE v1 exports name them "
            "e.g. 'artist_wd_genre', 'track_wd_language'; check the input file or the params list."
        )
    parts = [multi_hot(tracks[f], f, min_count) for f in present]
    features = pd.concat(parts, axis=1).astype("float32")
    features.index = pd.Index(tracks["track_id"], name="track_id")
    check_no_target_leak(features.columns, target, "metadata features")
    known = features[[f"{f}__known" for f in present]].to_numpy().any(axis=1)
    status = pd.DataFrame({"track_id": features.index, "status": np.where(known, "cached", "missing")})
    coverage = coverage_summary(status, "metadata", fields=present, missing_fields=sorted(set(fields) - set(present)),
                                feature_columns=len(features.columns), requests=0, acoustic=False)
    write_outputs(features, status, coverage, out_dir)
    return FeatureResult(features, status, coverage, out_dir, notes={"acoustic": False})
