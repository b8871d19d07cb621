"""Dataset dispatch and the `runs/<name>/data/` files that later stages read."""
from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geomusic_lib.data.duplicates import apply_duplicate_policy
from geomusic_lib.data.io import DataError
from geomusic_lib.data.splits import Split, load_splits, make_splits, save_splits, split_gaps, with_gaps_logged
from geomusic_lib.data.table import BASE_COLUMNS, TrackTable, load_table
from geomusic_lib.data.uci import load_uci
from geomusic_lib.core.fileio import atomic_write_csv, atomic_write_json, atomic_write_parquet, atomic_write_with
from geomusic_lib.core.params import MirageParams, Params, TABLE_DOCS
from geomusic_lib.core.rundir import RunDir


@dataclass
class RunData:
    """What a model stage needs: the model-ready table, the fixed splits and the class table."""

    table: TrackTable
    splits: list[Split]
    classes: pd.DataFrame


def load_dataset(params: Params) -> TrackTable:
    """Load the source named in `params.data` (features included for uci and table sources)."""
    data = params.data
    if data.source == "uci":
        table = load_uci(chromatic=data.uci.chromatic, collapse_chroma=data.uci.collapse_chroma)
    elif data.source == "table":
        t = data.table
        if t.path is None:
            raise DataError("params: data.table.path is empty. Point it at your CSV or parquet file of features "
                            f"({TABLE_DOCS}).")
        table = load_table(params.resolve(t.path), t.label_column, t.feature_columns or None, t.group_column, t.lat_column,
                           t.lon_column, t.id_column, t.min_tracks_per_class, t.encoding, sep=t.sep, decimal=t.decimal)
        table = _shown_as_written(table, str(params.resolve(t.path)), str(t.path))
    elif data.source == "folk":
        from geomusic_lib.data.folk import load_folk_tracks
        table = load_folk_tracks(data.folk)
    else:
        from geomusic_lib.data.mirage import load_mirage_tracks
        table = load_mirage_tracks(_mirage_params(params), extra_columns=params.features.metadata_fields)
    if data.max_tracks and len(table.frame) > data.max_tracks:
        table.frame = table.frame.sample(n=data.max_tracks, random_state=params.seed).sort_index().reset_index(drop=True)
    if table.feature_names:
        table.frame, table.notes["duplicates"] = apply_duplicate_policy(table.frame, table.feature_names, data.duplicates)
    return table


def _shown_as_written(table: TrackTable, resolved: str, written: str) -> TrackTable:
    """The table's source and notes with the path as the params file wrote it (no home folder on a page)."""
    table.source = f"table:{written}"
    table.notes = {k: v.replace(resolved, written) if isinstance(v, str) else v for k, v in table.notes.items()}
    return table


def _mirage_params(params: Params) -> MirageParams:
    """`data.mirage` with its paths resolved against the params file."""
    mirage = params.data.mirage
    return mirage.model_copy(update={"path": params.resolve(mirage.path),
                                     "cache_dir": params.resolve(mirage.cache_dir) if mirage.cache_dir else None})


def run_splits(table: TrackTable, params: Params) -> list[Split]:
    """The run's splits: `make_splits` with identical feature vectors joined under `data.duplicates: group`;
    for MIRAGE with its cache on, kept beside the per-track cache (`split_cache_file`) and read from there."""
    joined = table.feature_names if params.data.duplicates == "group" else ()
    target = split_cache_file(params, joined)
    cached = read_split_cache(target, table.frame) if target is not None else None
    if cached is not None:
        return with_gaps_logged(table.frame, cached)
    splits = make_splits(table.frame, params.split, params.seed, identical_features=joined)
    if target is not None:
        write_split_cache(target, table.frame, splits)
    return splits


def split_cache_file(params: Params, joined: Sequence[str] = ()) -> Path | None:
    """The split cache of a MIRAGE run: the per-track cache's name (`tracks_cache_file`: file, loader
    settings, loader code) plus a key of what else makes the split: `split`, `seed`, `max_tracks`,
    `duplicates` and the joined features, the split code and sklearn's version. None when the cache is off."""
    if params.data.source != "mirage" or not params.data.mirage.cache:
        return None
    import sklearn

    from geomusic_lib.data.mirage import tracks_cache_file
    tracks = tracks_cache_file(_mirage_params(params), params.features.metadata_fields)
    here = Path(__file__).parent
    code = hashlib.sha1(b"".join((here / f).read_bytes() for f in ("splits.py", "duplicates.py"))).hexdigest()
    key = json.dumps([tracks.name, params.split.model_dump(mode="json"), params.seed, params.data.max_tracks,
                      params.data.duplicates, list(joined), code, sklearn.__version__], sort_keys=True)
    return tracks.with_name(f"{tracks.stem}-split-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz")


def _track_ids_digest(frame: pd.DataFrame) -> str:
    return hashlib.sha1("\x1f".join(frame["track_id"].astype(str).tolist()).encode()).hexdigest()


def write_split_cache(target: Path, frame: pd.DataFrame, splits: list[Split]) -> None:
    """`splits` as row positions (npz), with a digest of the frame's track ids to check them against."""
    arrays = {f"{i}_{part}": getattr(s, part) for i, s in enumerate(splits) for part in ("train", "val", "test")}
    arrays.update(folds=np.array([s.fold for s in splits]), tracks=np.array(_track_ids_digest(frame)))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(target, write)


def read_split_cache(target: Path, frame: pd.DataFrame) -> list[Split] | None:
    """The splits `write_split_cache` stored for this frame; None when absent, unreadable (then removed) or
    made for other track ids."""
    if not target.is_file():
        return None
    try:
        with np.load(target) as stored:
            if str(stored["tracks"]) != _track_ids_digest(frame):
                return None
            return [Split(int(fold), *(stored[f"{i}_{part}"] for part in ("train", "val", "test")))
                    for i, fold in enumerate(stored["folds"])]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        target.unlink(missing_ok=True)
        return None


def build_class_table(frame: pd.DataFrame, level: str = "auto") -> pd.DataFrame:
    """`class, lat, lon, region, continent, n_tracks` in label-encoder (sorted) order.

    `level="auto"` treats labels that are region or continent names as such; `china_province` gives each
    province its region of China (`china_provinces.csv`) and the continent Asia.
    """
    from geomusic_lib.data import geo

    if level == "auto":
        regions, continents = set(geo.country_table()["region"]), set(geo.CONTINENTS)
        labels = set(frame["label"])
        level = "continent" if labels <= continents else "region" if labels <= regions else "country"
    centroids = geo.class_centroids(frame["label"], frame["lat"], frame["lon"]).set_index("class")
    rows = []
    for name in sorted(frame["label"].unique()):
        region = continent = ""
        if level == "country":
            info = geo.lookup_country(name)
            region, continent = (info.region, info.continent) if info else ("", "")
        elif level == "region":
            region, continent = name, _continent_of_region(name)
        elif level == "china_province":
            region, continent = _province_regions().get(name, ""), "Asia"
        else:
            region = continent = name
        lat, lon = centroids.loc[name, ["lat", "lon"]] if name in centroids.index else (np.nan, np.nan)
        rows.append({"class": name, "lat": lat, "lon": lon, "region": region, "continent": continent,
                     "n_tracks": int((frame["label"] == name).sum())})
    return pd.DataFrame(rows)


def _province_regions() -> dict[str, str]:
    from geomusic_lib.data.folk_labels import china_provinces

    table = china_provinces()
    return dict(zip(table["province"], table["region"]))


def _continent_of_region(region: str) -> str:
    """The continent most countries of a UN M49 region lie on ("" for an unknown region)."""
    from geomusic_lib.data import geo

    table = geo.country_table()
    continents = table.loc[table["region"] == region, "continent"]
    return str(continents.mode().iloc[0]) if len(continents) else ""


def prepare_run_data(params: Params, run: RunDir) -> tuple[TrackTable, list[Split]]:
    """Load, split and write `data/` of the run: tracks, classes, splits, meta (and table when features exist)."""
    table = load_dataset(params)
    splits = run_splits(table, params)
    gaps = split_gaps(table.frame, splits)
    if gaps:
        table.notes["split_gaps"] = gaps
    atomic_write_parquet(table.frame, run.tracks, index=False)
    level = {"mirage": params.data.mirage.level, "folk": params.data.folk.level}.get(params.data.source, "auto")
    atomic_write_csv(build_class_table(table.frame, level), run.classes)
    save_splits(splits, table.frame, run.splits)
    write_meta(table, run.meta)
    if table.feature_names:
        atomic_write_parquet(table.frame, run.table, index=False)
    return table, splits


def read_meta(run: RunDir) -> dict:
    """`data/meta.json`: source, feature names, notes, grid shape and counts."""
    if not run.meta.is_file():
        raise DataError(f"{run.meta}: not found. Run notebook 01_data_prep for run '{run.name}' first, e.g. "
                        f"geomusic run --params <params file> --run-name {run.name} --only 01 --no-book")
    return json.loads(run.meta.read_text(encoding="utf-8"))


def attach_features(run: RunDir, features: pd.DataFrame, notes: dict | None = None) -> TrackTable:
    """Join extracted features (indexed by track_id) to the run's tracks and write `data/table.parquet`."""
    tracks = pd.read_parquet(run.tracks)
    meta = read_meta(run)
    names = [str(c) for c in features.columns]
    base = tracks[BASE_COLUMNS]
    merged = base.join(features.set_axis(names, axis=1), on="track_id", how="inner")
    if merged.empty:
        raise DataError(f"{run.tracks}: no track has features. Check the feature source's coverage report.")
    table = TrackTable(merged.reset_index(drop=True), names, source=meta["source"],
                       notes={**meta.get("notes", {}), **(notes or {})}, grid_shape=None)
    atomic_write_parquet(table.frame, run.table, index=False)
    write_meta(table, run.meta)
    return table


def write_meta(table: TrackTable, path: Path) -> None:
    meta = {"source": table.source, "feature_names": table.feature_names, "notes": table.notes,
            "grid_shape": list(table.grid_shape) if table.grid_shape else None,
            "n_tracks": int(len(table.frame)), "n_classes": int(table.frame["label"].nunique())}
    atomic_write_json(path, meta)


def load_run_data(run: RunDir | str | Path) -> RunData:
    """Read `data/table.parquet`, `meta.json`, `splits.json` and `classes.csv` of a run."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    if not run.table.is_file():
        raise DataError(f"{run.table}: not found. Run notebooks 01_data_prep and 02_feature_extraction for run "
                        f"'{run.name}' first, e.g. geomusic run --params <params file> "
                        f"--run-name {run.name} --only 01,02 --no-book")
    meta = read_meta(run)
    frame = pd.read_parquet(run.table)
    table = TrackTable(frame, meta["feature_names"], meta["source"], meta.get("notes", {}),
                       tuple(meta["grid_shape"]) if meta.get("grid_shape") else None)
    classes = run.read_classes()
    present = set(frame["label"])
    classes = classes[classes["class"].isin(present)].reset_index(drop=True)
    return RunData(table, load_splits(run.splits, frame), classes)
