"""A synthetic MIRAGE-MetaCorpus v1 export at full scale, to measure how the book scales.

Real parts: the column names (every exported variable of `MIRAGE_exportvariables.csv`, v1
names in lower case), the 10,000 stations of `mirage_stations_listed_2023.csv` with their
cities, countries and coordinates (`mirage-mc-v1.locs.json`), and Natural Earth style
country / region / continent names from `geomusic_lib/data/countries.csv`.

Synthetic parts (seeded):
* events per station: log-normal weights (σ = 1.2), so big stations play far more; the US
  holds ~16 % of the real stations and so about that share of events;
* artists and tracks: ~0.415 distinct tracks per event (415K tracks per 1M events, as in
  MIRAGE), ~4 tracks per artist; every track is played once, the remaining events follow a
  Zipf law over tracks (s = 0.7) and tracks over artists (s = 1.0);
* each artist has a home country (drawn by event share); 80 % of its tracks' events are on
  stations of that country, 20 % anywhere, so the station-majority label is mostly the home;
* `event_ma_metadatareliability` = 1 - Beta(1, 12): about 72 % of events pass the 0.90 filter;
* 13 audio-feature columns under the v1 names (`track_sp_danceability`, energy, key, loudness,
  mode, speechiness, acousticness, instrumentalness, liveness, valence, tempo,
  `track_sp_duration` = duration_ms, `track_sp_beatsperbar` = time_signature). **The real
  export does NOT have them** (the maintainers mark them not exported); they are a stand-in so
  the `columns` feature source has something to read. Dependence on the country is weak and
  known: each feature's z-score is N(offset[home country, feature], 1) with offsets drawn
  N(0, EFFECT²), EFFECT = 0.5, before mapping to the feature's usual range.
Other exported columns get plausible filler (ids, names, empty Wikidata fields for most rows).

    python benchmarks/make_mirage_synthetic.py --events 1000000 --seed 0 --out benchmarks/out/mirage_1M.csv

Without `../shared/data/mirage` (a fresh clone) the stations come from the committed sample
`tests/fixtures/mirage/stations_sample.csv` (`--write-fixture` rebuilds it).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "mirage"
FIXTURE = REPO / "tests" / "fixtures" / "mirage" / "stations_sample.csv"
TRACKS_PER_EVENT, TRACKS_PER_ARTIST, LOCAL_SHARE, EFFECT = 0.415, 4.0, 0.8, 0.5
AUDIO = ["track_sp_danceability", "track_sp_energy", "track_sp_key", "track_sp_loudness", "track_sp_mode",
         "track_sp_speechiness", "track_sp_acousticness", "track_sp_instrumentalness", "track_sp_liveness",
         "track_sp_valence", "track_sp_tempo", "track_sp_duration", "track_sp_beatsperbar"]
STATION_COLUMNS = {"station_id": "station_rg_id", "station": "station_rg_name", "url": "station_rg_url",
                   "station_name": "station_se_name", "station_genre": "station_ar_genre",
                   "station_url": "station_se_websiteurl", "city_id": "location_rg_id",
                   "utcOffset": "location_rg_utcoffset", "city": "location_rg_city", "country": "location_rg_country",
                   "lat": "location_rg_latitude", "long": "location_rg_longitude"}


def export_columns() -> list[str]:
    """The exported v1 names (lower case, first occurrence) plus the 13 synthetic audio columns."""
    path = REPO / "geomusic_lib" / "data" / "mirage_exportvariables.csv"
    table = pd.read_csv(path, encoding="utf-8-sig")
    names = table.loc[table["export?"].str.strip() == "Y", "new_fields"].str.strip().str.lower()
    return list(dict.fromkeys(names)) + AUDIO


def read_real_stations(shared: Path = SHARED) -> pd.DataFrame:
    """The 10,000 real stations joined to their cities (one row per station_id)."""
    with open(shared / "mirage_stations_listed_2023.csv", encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    # two rows carry unescaped quotes in their description: keep their first six fields
    rows = [r if len(r) == len(header) else r[:6] + [""] * (len(header) - 6) for r in rows]
    stations = pd.DataFrame(rows, columns=header)
    cities = pd.DataFrame(json.loads((shared / "mirage-mc-v1.locs.json").read_text(encoding="utf-8")))
    joined = stations.drop_duplicates("station_id").merge(cities[["city_id", "city", "country", "lat", "long"]],
                                                          on="city_id", how="inner")
    return joined[list(STATION_COLUMNS)].rename(columns=STATION_COLUMNS)


def load_stations(shared: Path = SHARED) -> tuple[pd.DataFrame, str]:
    """Stations with Natural Earth country / region / continent; the real list, else the fixture."""
    if (shared / "mirage_stations_listed_2023.csv").is_file():
        stations, source = read_real_stations(shared), f"{shared}/mirage_stations_listed_2023.csv"
    elif FIXTURE.is_file():
        stations, source = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False), str(FIXTURE)
    else:
        raise SystemExit(f"No station list: neither {shared}/mirage_stations_listed_2023.csv nor {FIXTURE} exists.")
    from geomusic_lib.data import lookup_country

    info = {c: lookup_country(c) for c in stations["location_rg_country"].unique()}
    for column, field in (("location_ne_country", "country"), ("location_ne_region", "region"),
                          ("location_ne_continent", "continent"), ("location_ne_countrya3", "iso3")):
        stations[column] = stations["location_rg_country"].map(
            lambda c, f=field: getattr(info[c], f) if info[c] else (c if f == "country" else ""))
    return stations.reset_index(drop=True), source


def write_fixture(seed: int, n: int = 1500) -> None:
    """A seeded sample of real stations for tests on a fresh clone (no ../shared)."""
    stations = read_real_stations().sample(n=n, random_state=seed).sort_values("station_rg_id")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    stations.to_csv(FIXTURE, index=False)
    print(f"wrote {FIXTURE} ({len(stations)} stations)")


def zipf_weights(n: int, s: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf weights 1/rank^s over n items in a random order (sum 1)."""
    w = 1.0 / np.arange(1, n + 1) ** s
    return rng.permutation(w / w.sum())


def _catalogue(n_events: int, country_share: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Artists (home country) and tracks (artist), plus each event's track."""
    n_tracks = max(1, round(TRACKS_PER_EVENT * n_events))
    n_artists = max(1, round(n_tracks / TRACKS_PER_ARTIST))
    home = rng.choice(len(country_share), size=n_artists, p=country_share)
    track_artist = rng.choice(n_artists, size=n_tracks, p=zipf_weights(n_artists, 1.0, rng))
    extra = rng.choice(n_tracks, size=n_events - n_tracks, p=zipf_weights(n_tracks, 0.7, rng))
    event_track = rng.permutation(np.concatenate([np.arange(n_tracks), extra]))
    return {"home": home, "track_artist": track_artist, "event_track": event_track}


def _event_stations(event_country: np.ndarray, stations: pd.DataFrame, codes: np.ndarray,
                    weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A station per event: local (its artist's home country) with LOCAL_SHARE, else anywhere; by weight."""
    order = np.argsort(codes, kind="stable")
    cum = np.cumsum(weight[order])
    starts = np.concatenate([[0.0], cum])[np.searchsorted(codes[order], np.arange(codes.max() + 1))]
    ends = cum[np.searchsorted(codes[order], np.arange(codes.max() + 1), side="right") - 1]
    local = rng.random(len(event_country)) < LOCAL_SHARE
    lo = np.where(local, starts[event_country], 0.0)
    hi = np.where(local, ends[event_country], cum[-1])
    pick = np.searchsorted(cum, lo + rng.random(len(lo)) * (hi - lo), side="right")
    return order[np.minimum(pick, len(order) - 1)]


def audio_features(home: np.ndarray, n_countries: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """13 Spotify-like features per track; z-scores shifted by a per-country offset (EFFECT)."""
    offsets = rng.normal(0.0, EFFECT, size=(n_countries, len(AUDIO)))
    z = offsets[home] + rng.normal(size=(len(home), len(AUDIO)))
    p = 1.0 / (1.0 + np.exp(-z))  # (0, 1)
    cols = dict(zip(AUDIO, z.T))
    out = {name: np.round(p[:, i], 4) for i, name in enumerate(AUDIO)
           if name in {"track_sp_danceability", "track_sp_energy", "track_sp_valence", "track_sp_acousticness"}}
    out["track_sp_speechiness"] = np.round(p[:, AUDIO.index("track_sp_speechiness")] ** 3, 4)
    out["track_sp_instrumentalness"] = np.round(p[:, AUDIO.index("track_sp_instrumentalness")] ** 4, 4)
    out["track_sp_liveness"] = np.round(0.05 + 0.9 * p[:, AUDIO.index("track_sp_liveness")] ** 2, 4)
    out["track_sp_loudness"] = np.round(-8.0 + 3.5 * cols["track_sp_loudness"], 3)
    out["track_sp_tempo"] = np.round(120.0 + 28.0 * cols["track_sp_tempo"], 3)
    out["track_sp_duration"] = np.round(np.exp(12.3 + 0.35 * cols["track_sp_duration"])).astype(np.int64)
    out["track_sp_key"] = np.floor(p[:, AUDIO.index("track_sp_key")] * 12).astype(np.int64)
    out["track_sp_mode"] = (cols["track_sp_mode"] > 0).astype(np.int64)
    out["track_sp_beatsperbar"] = np.select([cols["track_sp_beatsperbar"] < -1.6, cols["track_sp_beatsperbar"] > 1.8],
                                            [3, 5], 4).astype(np.int64)
    return {name: out[name] for name in AUDIO}


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{22 - len(prefix)}x}" for i in range(n)], dtype=object)


def _artist_columns(n_artists: int, home_names: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-artist fields: Spotify id/name for all, Wikidata fields for ~60 % (empty otherwise)."""
    wd = rng.random(n_artists) < 0.6
    names = np.array([f"Artist {i}" for i in range(n_artists)], dtype=object)
    return {"artist_sp_id": _ids("ar", n_artists), "artist_sp_name": names,
            "artist_wd_qid": np.where(wd, np.array([f"Q{1_000_000 + i}" for i in range(n_artists)], dtype=object), ""),
            "artist_wd_name": np.where(wd, names, ""), "artist_wd_country": np.where(wd, home_names, ""),
            "artist_wd_type": np.where(wd, rng.choice(np.array(["human", "band"], dtype=object), n_artists), ""),
            "artist_wd_startyear": np.where(wd, rng.integers(1950, 2022, n_artists).astype(str).astype(object), "")}


def _take(values, index: np.ndarray) -> pa.Array:
    """Per-entity values (numpy) repeated per event through `index`, as an Arrow array."""
    return pa.array(values).take(pa.array(index))


def _event_columns(n: int, rng: np.random.Generator) -> dict[str, pa.Array]:
    """Per-event fields: id, time, reliability and stream properties."""
    seconds = rng.integers(0, 30 * 86400, n) + np.datetime64("2023-03-01T00:00:00").astype("datetime64[s]").astype(np.int64)
    return {"event_ma_id": pa.array(np.char.add("ev", np.arange(n).astype(str)).astype(object)),
            "event_ma_timestation": pa.array(seconds.astype("datetime64[s]").astype(str).astype(object)),
            "event_ma_metadatareliability": pa.array(np.round(1.0 - rng.beta(1.0, 12.0, n), 3)),
            "event_se_codec": _take(np.array(["mp3", "aac"], dtype=object), rng.integers(0, 2, n)),
            "event_se_bitrate": _take(np.array([64, 128, 192, 320]), rng.integers(0, 4, n)),
            "event_se_framerate": pa.array(np.full(n, 44100)), "event_se_channels": pa.array(np.full(n, 2)),
            "event_rg_version": pa.array(np.full(n, 1))}


def build_events(n_events: int, seed: int, stations: pd.DataFrame) -> pa.Table:
    """The synthetic export as an Arrow table (every exported column, in the variable list's order)."""
    rng = np.random.default_rng(seed)
    weight = rng.lognormal(0.0, 1.2, len(stations))
    codes, countries = pd.factorize(stations["location_ne_country"], sort=True)
    share = np.bincount(codes, weights=weight) / weight.sum()
    cat = _catalogue(n_events, share, rng)
    artist = cat["track_artist"][cat["event_track"]]
    station = _event_stations(cat["home"][artist], stations, codes, weight, rng)
    columns = {c: _take(stations[c].to_numpy(object), station) for c in stations.columns}
    for c in ("location_rg_latitude", "location_rg_longitude", "location_rg_utcoffset"):
        columns[c] = _take(stations[c].astype(float).to_numpy(), station)
    columns.update(_event_columns(n_events, rng))
    per_artist = _artist_columns(len(cat["home"]), np.asarray(countries, dtype=object)[cat["home"]], rng)
    columns.update({c: _take(v, artist) for c, v in per_artist.items()})
    n_tracks = len(cat["track_artist"])
    titles = np.array([f"Song {i}" for i in range(n_tracks)], dtype=object)
    per_track = {"track_sp_id": _ids("tr", n_tracks), "track_sp_name": titles,
                 **audio_features(cat["home"][cat["track_artist"]], len(countries), rng)}
    columns.update({c: _take(v, cat["event_track"]) for c, v in per_track.items()})
    columns["event_se_description"] = pa.compute.binary_join_element_wise(
        columns["artist_sp_name"], columns["track_sp_name"], " - ")
    names = export_columns()
    return pa.table({c: columns.get(c, pa.nulls(n_events, pa.string())) for c in names})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="CSV to write (default benchmarks/out/mirage_synthetic_<events>.csv)")
    ap.add_argument("--shared", type=Path, default=SHARED, help="folder with the real station and city files")
    ap.add_argument("--write-fixture", action="store_true", help="rebuild tests/fixtures/mirage/stations_sample.csv")
    args = ap.parse_args(argv)
    if args.write_fixture:
        return write_fixture(args.seed)
    start = time.perf_counter()
    stations, source = load_stations(args.shared)
    table = build_events(args.events, args.seed, stations)
    out = args.out or REPO / "benchmarks" / "out" / f"mirage_synthetic_{args.events}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pacsv.write_csv(table, tmp)
    tmp.replace(out)
    tracks = len(pa.compute.unique(table["track_sp_id"]))
    print(f"{out}: {table.num_rows:,} events, {tracks:,} tracks, {table.num_columns} columns, "
          f"{out.stat().st_size / 1e6:.0f} MB, stations from {source}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
