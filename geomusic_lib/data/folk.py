"""The `folk` source: the Essen Folksong Collection as shipped inside the `music21` package.

The ABC files are read from the installed package (never copied). music21 parses each file once
into note events, cached as one parquet per source file outside `runs/`, in parallel, so a
killed parse resumes file by file and later loads take seconds. Labels (country or Chinese
province) and variant groups come from `geomusic_lib.data.folk_labels`.

The corpus's terms (music21's `corpus/essenFolksong/license.txt`): its legal status is unclear;
permission was given for non-commercial distribution and use in music21.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError
from geomusic_lib.core.progress import progress_bar

if TYPE_CHECKING:
    from geomusic_lib.data.table import TrackTable
    from geomusic_lib.core.params import FolkParams

#: Bump when the note-event columns or their meaning change: old cache files are then ignored.
PARSER_VERSION = 1
ESSEN_SUBDIR = Path("corpus") / "essenFolksong"
#: One row per note or rest: tune, position, onset (quarter notes from the start), position in the
#: bar (quarter notes, pickup padding included), bar length, MIDI pitch (NaN for a rest),
#: duration (quarter notes), metrical accent weight (music21's beat strength, NaN where unknown).
EVENT_COLUMNS = ["x", "onset", "bar_offset", "bar_length", "midi", "duration", "beat_strength"]
HEADER_FIELDS = {"T": "title", "O": "origin", "K": "key", "M": "metre", "N": "esac_id"}
_TONIC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11, "h": 11}


class FolkError(DataError):
    """The Essen corpus or its cache cannot be read; the message names the file and the fix."""


# --------------------------------------------------------------------------- files and headers
def essen_dir(corpus_dir: str | Path | None = None) -> Path:
    """The folder of Essen `.abc` files: `corpus_dir`, else the one inside the installed music21."""
    if corpus_dir is not None:
        folder = Path(corpus_dir)
    else:
        spec = importlib.util.find_spec("music21")
        if spec is None or not spec.submodule_search_locations:
            raise FolkError("data.source: folk needs music21 (the Essen corpus ships inside it). "
                            "Install it with `pip install -e '.[folk]'` (or `make install`).")
        folder = Path(list(spec.submodule_search_locations)[0]) / ESSEN_SUBDIR
    if not folder.is_dir() or not any(folder.glob("*.abc")):
        raise FolkError(f"{folder}: no Essen .abc files found. Reinstall music21 or fix data.folk.corpus_dir.")
    return folder


def essen_files(folder: Path, stems: list[str] | None = None) -> list[Path]:
    """The `.abc` files of the collection (all, or the named stems such as `han1`)."""
    available = {p.stem: p for p in sorted(folder.glob("*.abc"))}
    if not stems:
        return list(available.values())
    unknown = [s for s in stems if s not in available]
    if unknown:
        raise FolkError(f"data.folk.files: {unknown} not in {folder}; choose from {sorted(available)}.")
    return [available[s] for s in stems]


def read_abc_headers(path: Path) -> pd.DataFrame:
    """One row per tune from the ABC header lines (X, first T, O, K, M, first N), without music21."""
    rows: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(r"^([A-Za-z]):\s?(.*)$", line)
        if not match:
            continue
        field, value = match.group(1), match.group(2).strip()
        if field == "X":
            current = {"x": int(re.sub(r"\D", "", value) or -1)}
            rows.append(current)
        elif current is not None and field in HEADER_FIELDS and HEADER_FIELDS[field] not in current:
            current[HEADER_FIELDS[field]] = value
    frame = pd.DataFrame(rows, columns=["x", *HEADER_FIELDS.values()])
    frame["title"] = frame["title"].map(repair_dos_letters, na_action="ignore")
    frame.insert(0, "source_file", path.stem)
    return frame


def repair_dos_letters(text: str) -> str:
    """Titles written in DOS code page 850 and carried into UTF-8 byte for byte: `Sch\x94nes` → `Schönes`.
    Only C1 control characters (U+0080–U+009F, never text) are re-read as code page 850."""
    return re.sub("[\x80-\x9f]", lambda m: m.group().encode("latin-1").decode("cp850"), text)


def tonic_pitch_class(key: object) -> float:
    """Pitch class (C = 0) of an ABC `K:` tonic such as `G`, `Bb`, `F#`, `Es` or `H`; NaN if unreadable."""
    match = re.match(r"^\s*([A-Ha-h])(#|b|s|es|is)?", str(key or ""))
    if not match:
        return float("nan")
    letter, accidental = match.group(1).lower(), match.group(2) or ""
    shift = {"#": 1, "is": 1, "b": -1, "s": -1, "es": -1}.get(accidental, 0)
    return float((_TONIC[letter] + shift) % 12)


def metre_parts(metre: object) -> tuple[float, float]:
    """Numerator and denominator of an `M:` field (`6/8` → (6, 8)); NaN, NaN for `none` or free metre."""
    match = re.match(r"^\s*(\d+)\s*/\s*(\d+)", str(metre or ""))
    return (float(match.group(1)), float(match.group(2))) if match else (float("nan"), float("nan"))


# --------------------------------------------------------------------------- music21 parse
def _no_beams():
    """Skip music21's beaming during ABC import: beams are notation only (same notes and bars),
    and beaming is about half of the parse time."""
    from unittest import mock

    from music21 import stream

    return mock.patch.object(stream.Stream, "makeBeams", lambda self, *args, **kwargs: None)


_ACCENTS: dict[tuple[str, float], float] = {}


def _accent(ts: Any, position: float) -> float:
    """music21's beat strength (accent weight) at `position` in a bar of `ts`, memoised per metre:
    computing it is a quarter of the parse time otherwise."""
    key = (ts.ratioString, position)
    if key not in _ACCENTS:
        try:
            _ACCENTS[key] = float(ts.getAccentWeight(position, forcePositionMatch=True, permitMeterModulus=False))
        except Exception:  # music21 raises several types for positions off its metrical grid
            _ACCENTS[key] = float("nan")
    return _ACCENTS[key]


def _tune_events(score: Any) -> list[tuple[float, ...]]:
    """Note and rest events of one tune: ties merged, grace notes dropped."""
    from music21 import chord, meter, stream

    part = score.parts[0] if score.parts else score
    measures = list(part.getElementsByClass(stream.Measure)) or [part]
    events: list[list[float]] = []  # onset, position in bar, bar length, midi, duration, accent
    ts = None
    for m in measures:
        ts = next((e for e in m.elements if isinstance(e, meter.TimeSignature) and e.offset == 0), ts)
        start = float(m.offset) if m is not part else 0.0
        pad = float(getattr(m, "paddingLeft", 0.0) or 0.0)
        bar_length = float(ts.barDuration.quarterLength) if ts is not None else float("nan")
        for n in m.notesAndRests:
            duration = float(n.quarterLength)
            if duration <= 0:
                continue
            midi = float("nan") if n.isRest else float((max(n.pitches) if isinstance(n, chord.Chord) else n.pitch).midi)
            tie = getattr(n, "tie", None)
            if tie is not None and tie.type in ("stop", "continue") and events and events[-1][3] == midi:
                events[-1][4] += duration
                continue
            position = float(n.offset) + pad
            accent = _accent(ts, position) if ts is not None else float("nan")
            events.append([start + float(n.offset), position, bar_length, midi, duration, accent])
    return [tuple(e) for e in events]


def parse_abc_events(path: Path) -> pd.DataFrame:
    """All tunes of one ABC file parsed by music21 into note events (`EVENT_COLUMNS`)."""
    from music21 import converter

    with _no_beams():
        opus = converter.parseFile(path, format="abc", forceSource=True, storePickle=False)
    scores = list(opus.scores) if hasattr(opus, "scores") and len(opus.scores) else [opus]
    frames = []
    for score in scores:
        number = getattr(score.metadata, "number", None) if score.metadata is not None else None
        events = _tune_events(score)
        if number is None or not events:
            continue
        block = pd.DataFrame(events, columns=EVENT_COLUMNS[1:])
        block.insert(0, "x", int(re.sub(r"\D", "", str(number)) or -1))
        frames.append(block)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in EVENT_COLUMNS}).astype({"x": "int64"})
    out = pd.concat(frames, ignore_index=True)
    return out.astype({"x": "int64", **{c: "float32" for c in EVENT_COLUMNS[1:]}})


# --------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """`$GEOMUSIC_CACHE/folk`, else `$XDG_CACHE_HOME/geomusic/folk`, else `~/.cache/geomusic/folk`."""
    if os.environ.get("GEOMUSIC_CACHE"):
        return Path(os.environ["GEOMUSIC_CACHE"]) / "folk"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "geomusic" / "folk"


def cache_path(path: Path, cache_dir: Path) -> Path:
    """Cache file of one ABC file: keyed by its content, the music21 version and `PARSER_VERSION`."""
    from importlib.metadata import version

    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    return cache_dir / f"m21-{version('music21')}-v{PARSER_VERSION}" / f"{path.stem}-{digest}.parquet"


def _parse_to_cache(path: Path, target: Path) -> tuple[str, int, float]:
    """Worker: parse one file and write its events atomically (a kill leaves no half file)."""
    start = time.perf_counter()
    events = parse_abc_events(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    events.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return path.stem, int(events["x"].nunique()), time.perf_counter() - start


def parse_to_cache(files: list[Path], cache_dir: Path, workers: int | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Parse every file without a cache entry, in parallel; returns counts and seconds."""
    targets = {p: cache_path(p, cache_dir) for p in files}
    todo = sorted((p for p, t in targets.items() if not t.is_file()), key=lambda p: -p.stat().st_size)
    report = {"files": len(files), "parsed_files": len(todo), "parsed_tunes": 0, "parse_seconds": 0.0}
    if not todo:
        return report
    n_workers = min(len(todo), workers or os.cpu_count() or 1)
    tunes = {p: len(read_abc_headers(p)) for p in todo}
    start = time.perf_counter()
    bar = progress_bar(total=sum(tunes.values()), desc=f"parsing Essen ({n_workers} workers)", unit="tune",
                       enabled=progress)
    if n_workers == 1:  # in this process: no start-up cost, and scripts need no __main__ guard
        for p in todo:
            report["parsed_tunes"] += _parse_to_cache(p, targets[p])[1]
            bar.update(tunes[p])
        bar.close()
        report["parse_seconds"] = round(time.perf_counter() - start, 1)
        return report
    with ProcessPoolExecutor(n_workers, mp_context=get_context("spawn")) as pool:
        jobs = {pool.submit(_parse_to_cache, p, targets[p]): p for p in todo}
        for job in as_completed(jobs):
            try:
                _, n, _ = job.result()
            except BrokenProcessPool as err:
                raise FolkError(f"{jobs[job]}: a parser process died (killed, out of memory, or started from a script "
                                "without `if __name__ == '__main__':`). Rerun: finished files are cached.") from err
            except Exception as err:
                raise FolkError(f"{jobs[job]}: music21 could not parse it ({type(err).__name__}: {err}). "
                                "Leave it out with data.folk.files.") from err
            report["parsed_tunes"] += n
            bar.update(tunes[jobs[job]])
    bar.close()
    report["parse_seconds"] = round(time.perf_counter() - start, 1)
    return report


def load_events(files: list[Path], cache_dir: str | Path | None = None, workers: int | None = None,
                progress: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Note events of all `files` (`source_file` + `EVENT_COLUMNS`), parsing only what is not cached."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    report = parse_to_cache(files, cache_dir, workers, progress)
    start = time.perf_counter()
    parts = []
    for p in files:
        frame = pd.read_parquet(cache_path(p, cache_dir))
        parts.append(frame.assign(source_file=p.stem))
    events = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["source_file", *EVENT_COLUMNS])
    report["load_seconds"] = round(time.perf_counter() - start, 2)
    report["cache_dir"] = str(cache_dir)
    return events, report


#: Per-tune note arrays in the track table (what the `notes` feature source reads).
NOTE_ARRAYS = ["onset", "bar_offset", "bar_length", "midi", "duration", "beat_strength"]


def clean_beat_strength(beat_strength: np.ndarray, bar_offset: np.ndarray) -> np.ndarray:
    """music21 gives NaN beat strengths where a tune has no metre or a note lies off the metrical
    grid: use 1 on a bar line and 0.25 elsewhere there."""
    out = np.asarray(beat_strength, dtype=np.float32).copy()
    bad = ~np.isfinite(out)
    out[bad] = np.where(np.asarray(bar_offset)[bad] == 0, 1.0, 0.25)
    return out


def tune_arrays(events: pd.DataFrame) -> pd.DataFrame:
    """One row per `(source_file, x)` with each of `NOTE_ARRAYS` as a float32 array (onset order)."""
    ordered = events.sort_values(["source_file", "x", "onset"], kind="stable").reset_index(drop=True)
    keys = ordered[["source_file", "x"]]
    starts = np.flatnonzero((keys != keys.shift()).any(axis=1).to_numpy())
    bounds = np.append(starts, len(ordered))
    out = keys.iloc[starts].reset_index(drop=True)
    for column in NOTE_ARRAYS:
        values = ordered[column].to_numpy(dtype=np.float32)
        if column == "beat_strength":
            values = clean_beat_strength(values, ordered["bar_offset"].to_numpy())
        out[f"notes_{column}"] = [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return out


# --------------------------------------------------------------------------- the track table
def load_folk_tracks(params: "FolkParams", progress: bool = True) -> "TrackTable":
    """The `folk` source: one row per labelled tune (`track_id` = `<file>:<X>`), grouped by variant,
    with its note arrays (`notes_*`, for the `notes` feature source) and a report in `notes`."""
    from geomusic_lib.data.folk_labels import incipit_key, label_coordinates, label_tunes, normalise_title, variant_groups
    from geomusic_lib.data.table import TrackTable

    files = essen_files(essen_dir(params.corpus_dir), params.files)
    headers = pd.concat([read_abc_headers(p) for p in files], ignore_index=True)
    events, report = load_events(files, params.cache_dir, params.workers, progress)
    tunes = headers.merge(tune_arrays(events), on=["source_file", "x"], how="left")
    sounding = tunes["notes_midi"].map(lambda m: int(np.isfinite(m).sum()) if isinstance(m, np.ndarray) else 0)
    tunes = label_tunes(tunes, params.level)
    tunes.loc[(tunes["excluded"] == "") & (sounding < params.min_notes), "excluded"] = "too_few_notes"
    # groups over every tune, labelled or not, so variants are joined through any file
    incipits = pd.Series([incipit_key(m, d, params.incipit_notes) if isinstance(m, np.ndarray) else ""
                          for m, d in zip(tunes["notes_midi"], tunes["notes_duration"])], index=tunes.index)
    tunes["group"] = [f"variant:{g}" for g in variant_groups(tunes["title"].map(normalise_title), incipits)]
    kept = tunes[tunes["excluded"] == ""]
    counts = kept["label"].value_counts()
    small = counts[counts < params.min_tracks_per_class]
    tunes.loc[tunes["label"].isin(small.index) & (tunes["excluded"] == ""), "excluded"] = "small_class"
    kept = tunes[tunes["excluded"] == ""].reset_index(drop=True)
    if kept["label"].nunique() < 2:
        raise FolkError(f"data.folk: {kept['label'].nunique()} class(es) with at least {params.min_tracks_per_class} "
                        f"tunes in files {[p.stem for p in files]}. Add files or lower data.folk.min_tracks_per_class.")
    lat, lon = label_coordinates(kept["label"], params.level)
    frame = pd.DataFrame({"track_id": kept["source_file"] + ":" + kept["x"].astype(str), "label": kept["label"],
                          "group": kept["group"].astype("string"), "lat": lat, "lon": lon})
    keep_cols = ["source_file", "x", "esac_id", "title", "origin", "country", "province", "key", "metre"]
    frame = pd.concat([frame, kept[keep_cols].rename(columns={"key": "abc_key", "metre": "abc_metre"}),
                       kept[[f"notes_{c}" for c in NOTE_ARRAYS]]], axis=1)
    frame["tonic_pc"] = kept["key"].map(tonic_pitch_class)
    if frame["tonic_pc"].isna().any():
        bad = frame.loc[frame["tonic_pc"].isna(), "track_id"].iloc[0]
        raise FolkError(f"{bad}: its K: field {kept['key'][frame['tonic_pc'].isna()].iloc[0]!r} names no tonic. "
                        "Fix tonic_pitch_class for this spelling.")
    notes = folk_report(tunes, kept, report, params, [p.stem for p in files], small)
    return TrackTable(frame, [], source="folk", notes=notes)


def folk_report(tunes: pd.DataFrame, kept: pd.DataFrame, parse: dict[str, Any], params: "FolkParams",
                stems: list[str], small: pd.Series) -> dict[str, Any]:
    """What the data page reports: tunes read, labelled, left out (by reason), groups, classes, timing."""
    excluded = tunes.loc[tunes["excluded"] != "", "excluded"].value_counts()
    groups = kept["group"].value_counts()
    cross = kept.groupby("group")["source_file"].nunique()
    return {
        "label_note": (f"Essen Folksong Collection (music21), level {params.level}: origin (O:) fields mapped "
                       "to modern countries through folk_origin_aliases.csv" +
                       (", Chinese provinces through china_provinces.csv (capital coordinates)"
                        if params.level == "china_province" else "") +
                       "; Lothringen counts as France; ambiguous and historical-state origins are left out."),
        "grouped_by": "tune variant",
        "group_note": "groups join tune variants: tunes sharing a normalised title or an incipit "
                      f"({params.incipit_notes} intervals) never sit on both sides of a split",
        "terms": "Essen Folksong Collection: legal status unclear; permission for non-commercial distribution "
                 "and use in music21 (music21/corpus/essenFolksong/license.txt). Never copy tunes out of it.",
        "report": {
            "files": stems, "tunes_read": int(len(tunes)), "tunes_labelled": int(len(kept)),
            "excluded": {k: int(v) for k, v in excluded.items()},
            "small_classes": {str(k): int(v) for k, v in small.items()},
            "classes": {str(k): int(v) for k, v in kept["label"].value_counts().items()},
            "groups": int(len(groups)), "largest_group": int(groups.max()),
            "groups_spanning_files": int((cross > 1).sum()),
            "tunes_in_multi_tune_groups": int(groups[groups > 1].sum()),
            "parse": parse,
        },
    }
