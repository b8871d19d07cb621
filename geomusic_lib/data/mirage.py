"""MIRAGE-MetaCorpus loader: v1 (`<entity>_<source>_<field>`) or legacy flat column names.

Reads only the columns it needs (pyarrow, cached as parquet: `mirage_read`), filters on metadata reliability, and collapses
radio events to one row per track labelled by majority vote (that table is cached too, keyed on every loader setting).
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geomusic_lib.data.io import DataError, check_file
from geomusic_lib.data.labels import drop_small_classes, majority_vote, normalise_text, purity_report
from geomusic_lib.data.mirage_read import cache_file, default_cache_dir, read_columns, read_frame_cache, write_frame_cache
from geomusic_lib.data.table import TrackTable
from geomusic_lib.core.params import MirageParams

RELIABILITY = "event_ma_metadatareliability"
ID_COLUMNS = ["track_sp_id", "artist_sp_id", "artist_sp_name", "track_sp_name", "artist_wd_name", "track_wd_name",
              "artist_wd_qid", "station_rg_id", "location_rg_id"]
STATION_COORDS = ("location_rg_latitude", "location_rg_longitude")
MIRAGE_NOTE = (
    "MIRAGE labels: station target = the country (region, continent) of the radio station that played the "
    "track; artist target = the artist's country in Wikidata. A track played in several places gets the "
    "majority label of its events; label purity says how often its events agree."
)


def export_mapping() -> dict[str, str]:
    """Legacy flat name → v1 name (both lower case), from the maintainers' MIRAGE_exportvariables.csv."""
    path = resources.files("geomusic_lib.data") / "mirage_exportvariables.csv"
    with path.open("r", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    return {r["old_fields"].strip().lower(): r["new_fields"].strip().lower() for r in rows}


def canonical_names(columns: list[str]) -> dict[str, str]:
    """Map each raw column to its v1 lower-case name (first occurrence wins)."""
    mapping, out, seen = export_mapping(), {}, set()
    for raw in columns:
        name = raw.strip().lower()
        name = mapping.get(name, name)
        if name not in seen:
            out[raw], seen = name, seen | {name}
    return out


def label_column(params: MirageParams, available: set[str] | None = None) -> str:
    """The country column of the chosen target (Radio Garden's when a legacy file lacks Natural Earth's)."""
    if params.target == "artist":
        return "artist_wd_country"
    wanted = f"location_{params.country_source}_country"
    other = "location_rg_country" if params.country_source == "ne" else "location_ne_country"
    if available is not None and wanted not in available and other in available:
        warnings.warn(f"'{wanted}' is not in this export; using '{other}' for the station country.")
        return other
    return wanted


def _wanted(canonical: set[str], params: MirageParams, extra: list[str]) -> set[str]:
    want = {label_column(params), "location_rg_country", "location_ne_country", RELIABILITY, *STATION_COORDS, *ID_COLUMNS, *extra,
            "location_ne_region", "location_ne_continent", "artist_wd_coordinates"}
    want |= {c for c in canonical if c.startswith("track_sp_")}
    return want & canonical


def _columns_to_read(path: Path, params: MirageParams, extra_columns: list[str]) -> tuple[dict[str, str], list[str], str]:
    """(raw → v1 name, raw columns to read, label column) from the header; clear errors for a wrong file."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8").columns.tolist()
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 (byte {err.start}). Re-download MIRAGE.csv or convert it to UTF-8.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty. Re-download MIRAGE.csv.") from None
    names = canonical_names(header)
    label = label_column(params, set(names.values()))
    if label not in names.values():
        raise DataError(f"{path}: missing the label column '{label}' (legacy name '{_legacy_name(label)}'). "
                        "Check data.mirage.target / country_source, or that this is a MIRAGE export.")
    if params.min_reliability > 0 and RELIABILITY not in names.values():
        raise DataError(f"{path}: missing column '{RELIABILITY}' (legacy 'metadata_editdist'). "
                        "Set data.mirage.min_reliability: 0 to use every event without filtering.")
    keep = _wanted(set(names.values()), params, extra_columns)
    return names, [raw for raw, name in names.items() if name in keep], label


def read_mirage_events(path: str | Path, params: MirageParams, extra_columns: list[str] | None = None) -> pd.DataFrame:
    """Read the needed columns of MIRAGE.csv (v1 or legacy; pyarrow, parquet cache), filtering on reliability."""
    path = check_file(path, "MIRAGE export")
    names, usecols, label = _columns_to_read(path, params, extra_columns or [])
    table, cached = read_columns(path, usecols, _numeric(names, usecols), params.max_events, _cache_dir(params))
    table = table.rename_columns([names[c] for c in table.column_names])
    total = table.num_rows
    table = _filter_reliability(table, params.min_reliability)
    events = table.to_pandas()  # repeated strings (countries, artists) share one object each
    events.attrs.update(path=str(path), events_read=total, events_reliable=len(events), label_column=label,
                        from_cache=cached)
    return _fix_coordinates(events, path)


def _numeric(names: dict[str, str], usecols: list[str]) -> dict[str, float]:
    """Raw columns to parse as numbers: reliability and coordinates always, `track_sp_*` values when most parse."""
    always = {RELIABILITY, *STATION_COORDS}
    text = {"track_sp_id", "track_sp_name", "track_sp_genre", "track_sp_timbre"}
    return {raw: 0.0 if names[raw] in always else 0.5 for raw in usecols
            if names[raw] in always or (names[raw].startswith("track_sp_") and names[raw] not in text)}


def _cache_dir(params: MirageParams) -> Path | None:
    if not params.cache:
        return None
    return Path(params.cache_dir) if params.cache_dir is not None else default_cache_dir()


def _legacy_name(v1: str) -> str:
    inverse = {new: old for old, new in export_mapping().items() if old != new}
    return inverse.get(v1, v1)


def _filter_reliability(table: pa.Table, minimum: float) -> pa.Table:
    if minimum <= 0 or RELIABILITY not in table.column_names:
        return table
    return table.filter(pc.fill_null(pc.greater_equal(table[RELIABILITY], minimum), False))


def _fix_coordinates(events: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Parse station coordinates; swap them back if latitude and longitude were exported swapped."""
    lat_col, lon_col = STATION_COORDS
    if lat_col not in events or lon_col not in events:
        return events
    lat = pd.to_numeric(events[lat_col], errors="coerce")
    lon = pd.to_numeric(events[lon_col], errors="coerce")
    if len(lat) and (lat.abs() > 90).mean() > 0.01 and (lon.abs() <= 90).all():
        warnings.warn(f"{path}: '{lat_col}' has values beyond ±90°, so latitude and longitude look swapped; swapping them back.")
        lat, lon = lon, lat
    events[lat_col], events[lon_col] = lat, lon
    return events


def parse_point(text: object) -> tuple[float, float]:
    """Wikidata `Point(lon lat)` → (lat, lon); NaNs when absent or unparsable."""
    match = re.search(r"(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)", str(text)) if isinstance(text, str) else None
    return (float(match.group(2)), float(match.group(1))) if match else (np.nan, np.nan)


def map_unique(values: pd.Series, fn) -> pd.Series:
    """`values.map(fn)` computed once per distinct value (artists and titles repeat across events)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([fn(u) for u in uniques] + [""], dtype=object)  # code -1 (missing) → ""
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def _text(events: pd.DataFrame, name: str) -> pd.Series:
    return events[name].fillna("").astype(str) if name in events else pd.Series("", index=events.index, dtype=object)


def track_keys(events: pd.DataFrame) -> pd.Series:
    """`track_sp_id` where present, else the normalised artist + title; empty when neither exists."""
    keys = map_unique(_text(events, "track_sp_id"), str.strip)
    need = keys == ""
    if need.any():  # names only where the Spotify id is missing
        rows = events[need]
        artist = map_unique(_text(rows, "artist_sp_name").where(_text(rows, "artist_sp_name") != "",
                                                                _text(rows, "artist_wd_name")), normalise_text)
        title = map_unique(_text(rows, "track_sp_name").where(_text(rows, "track_sp_name") != "",
                                                              _text(rows, "track_wd_name")), normalise_text)
        keys[need] = ("at:" + artist + "|" + title).where((artist != "") & (title != ""), "")
    return keys


def artist_groups(events: pd.DataFrame) -> pd.Series:
    """Artist identity for grouped splits: Spotify artist id, else Wikidata QID, else the normalised name."""
    group = pd.Series("", index=events.index, dtype=object)
    for name, fn in (("artist_sp_id", str.strip), ("artist_wd_qid", str.strip),
                     ("artist_sp_name", normalise_text), ("artist_wd_name", normalise_text)):
        need = group == ""
        if name in events and need.any():
            group[need] = map_unique(_text(events[need], name), fn)
    return group


def event_labels(events: pd.DataFrame, params: MirageParams) -> pd.Series:
    """Each event's label at the requested level (country, region or continent)."""
    country = events[events.attrs.get("label_column", label_column(params))].astype("string").str.strip()
    if params.level == "country":
        return country
    source = f"location_ne_{params.level}"
    if params.target == "station" and source in events and events[source].notna().any():
        return events[source].astype("string").str.strip()
    from geomusic_lib.data.geo import lookup_country  # names from the shipped UN M49 table

    def coarsen(name: object) -> object:
        info = lookup_country(name) if isinstance(name, str) else None
        return getattr(info, params.level) if info else pd.NA

    labels = country.map(coarsen).astype("string")
    unknown = sorted(set(country[labels.isna() & country.notna()]))
    if unknown:
        warnings.warn(f"{events.attrs.get('path')}: {len(unknown)} name(s) in '{events.attrs.get('label_column')}' "
                      f"have no {params.level} in geomusic_lib/data/countries.csv (e.g. {unknown[:5]}); their events are "
                      "left out. Add aliases to geomusic_lib/data/country_aliases.csv to keep them.")
    return labels


def collapse_events(usable: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(majority vote per track, one row per track with its attributes), on integer codes for speed.

    Group, lat and lon come from one event of the majority label (as a pair); other attributes are
    the first non-empty value among those events.
    """
    track_codes, track_names = pd.factorize(usable["track_id"])
    label_codes, label_names = pd.factorize(usable["label"], sort=True)  # sorted: ties go to the first name
    coded = pd.DataFrame({"track_id": track_codes, "label": label_codes}, index=usable.index)
    voted = majority_vote(coded)
    is_majority = pd.Series(label_codes, index=usable.index) == voted.set_index("track_id")["label"].reindex(track_codes).to_numpy()
    majority = usable[is_majority.to_numpy()].assign(track_id=track_codes[is_majority.to_numpy()])
    place = majority.drop_duplicates("track_id").set_index("track_id")[["group", "lat", "lon"]]  # one event's, as a pair
    first = majority.drop(columns=["label", "group", "lat", "lon"]).groupby("track_id", sort=False).first()
    tracks = voted.join(place, on="track_id").join(first, on="track_id")
    voted = voted.assign(track_id=np.asarray(track_names, dtype=object)[voted["track_id"]],
                         label=np.asarray(label_names, dtype=object)[voted["label"]])
    tracks["track_id"], tracks["label"] = voted["track_id"].to_numpy(), voted["label"].to_numpy()
    tracks["group"] = tracks["group"].replace("", pd.NA).astype("string")
    return voted, tracks


def tracks_cache_file(params: MirageParams, extra_columns: list[str] | None = None) -> Path | None:
    """The per-track cache of these loader settings: keyed on the events cache key (file, columns), every
    loader setting and the code and tables the collapse uses (an edit to them is a new key); None when off."""
    cache_dir = _cache_dir(params)
    if cache_dir is None:
        return None
    path = check_file(params.path, "MIRAGE export")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the load shows them (or the cache's copy)
        names, usecols, _ = _columns_to_read(path, params, extra_columns or [])
    here = Path(__file__).parent
    code = hashlib.sha1(b"".join((here / f).read_bytes() for f in (
        "mirage.py", "labels.py", "geo.py", "countries.csv", "country_aliases.csv", "mirage_exportvariables.csv")))
    settings = params.model_dump(mode="json", exclude={"path", "cache", "cache_dir"})
    key = [*usecols, json.dumps(_numeric(names, usecols), sort_keys=True), json.dumps(settings, sort_keys=True),
           code.hexdigest()]
    return cache_file(path, key, params.max_events, cache_dir, kind="tracks")


def load_mirage_tracks(params: MirageParams, extra_columns: list[str] | None = None) -> TrackTable:
    """MIRAGE events → one labelled row per track, with label purity and station/artist coordinates;
    from the per-track cache when these settings were loaded before (its warnings are shown again)."""
    target = tracks_cache_file(params, extra_columns)
    hit = read_frame_cache(target) if target is not None else None
    if hit is not None:
        frame, notes = hit
        for message in notes.pop("warnings", []):
            warnings.warn(message)
        return TrackTable(frame, [], source="mirage", notes=notes)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = collapse_tracks(params, extra_columns)
    for w in caught:  # shown now, and again on a cache hit
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if target is not None:
        shown = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        write_frame_cache(target, table.frame, {**table.notes, "warnings": shown})
    return table


def collapse_tracks(params: MirageParams, extra_columns: list[str] | None = None) -> TrackTable:
    """Read the events and collapse them: one labelled row per track (no per-track cache)."""
    events = read_mirage_events(params.path, params, extra_columns)
    path = params.path
    events["track_id"] = track_keys(events)
    events["label"] = event_labels(events, params)
    events["group"] = artist_groups(events)
    if params.target == "artist" and "artist_wd_coordinates" in events:
        coords = events["artist_wd_coordinates"].map(parse_point)
        events["lat"], events["lon"] = coords.str[0], coords.str[1]
    else:
        events["lat"] = events.get(STATION_COORDS[0], np.nan)
        events["lon"] = events.get(STATION_COORDS[1], np.nan)
    usable = events[(events["track_id"] != "") & events["label"].notna() & (events["label"] != "")]
    if usable.empty:
        raise DataError(f"{path}: no event has both a track (track_sp_id or artist + title) and a label in "
                        f"'{events.attrs['label_column']}' after the reliability filter (≥ {params.min_reliability}). "
                        "Lower data.mirage.min_reliability or check the export.")
    voted, tracks = collapse_events(usable)
    tracks = drop_small_classes(tracks, params.min_tracks_per_class, source=str(path), column=events.attrs["label_column"])
    report = {
        "events_read": events.attrs.get("events_read"), "events_reliable": int(len(events)),
        "events_without_track_or_label": int(len(events) - len(usable)),
        **purity_report(voted), "tracks_kept": int(len(tracks)), "classes_kept": int(tracks["label"].nunique()),
        "classes_dropped": int(voted["label"].nunique() - tracks["label"].nunique()),
    }
    front = ["track_id", "label", "group", "lat", "lon"]
    tracks = tracks[front + [c for c in tracks.columns if c not in front]].reset_index(drop=True)
    notes = {"label_note": MIRAGE_NOTE, "target": params.target, "level": params.level, "grouped_by": "artist",
             "group_note": "The split is grouped by artist (Spotify artist id, else Wikidata QID, else the "
                           "normalised artist name); a track without an artist is its own group.",
             "label_column": events.attrs["label_column"], "report": report}
    return TrackTable(tracks, [], source="mirage", notes=notes)
