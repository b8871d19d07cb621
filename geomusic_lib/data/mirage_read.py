"""Reading the needed columns of a large MIRAGE export fast: pyarrow's multithreaded CSV reader
with `include_columns`, numbers parsed in Arrow, and a parquet cache of those columns keyed on
the file (path, size, modification time) and the column set, so a second run skips the CSV.
A second cache (`write_frame_cache` / `read_frame_cache`) keeps the collapsed per-track table
with its notes, so a rerun with the same loader settings also skips the majority vote.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from geomusic_lib.data.io import DataError
from geomusic_lib.core.fileio import atomic_write_with

CACHE_VERSION = 1
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def default_cache_dir() -> Path:
    """`$GEOMUSIC_CACHE/mirage`, else `~/.cache/geomusic/mirage`."""
    root = os.environ.get("GEOMUSIC_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "geomusic") / "mirage"


def cache_file(path: Path, columns: list[str], max_events: int | None, cache_dir: Path, kind: str = "") -> Path:
    """The parquet cache of `columns` of `path`: a new name whenever the file or the column set changes
    (`kind` names a derived table, e.g. "tracks", whose `columns` also carry its settings)."""
    stat = path.stat()
    key = json.dumps([CACHE_VERSION, str(path.resolve()), stat.st_size, stat.st_mtime_ns, sorted(columns), max_events])
    return cache_dir / f"{path.stem}{'-' + kind if kind else ''}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.parquet"


def write_frame_cache(target: Path, frame: pd.DataFrame, notes: dict) -> None:
    """`frame` as parquet at `target`, with `notes` (JSON) in the file's metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**table.schema.metadata, b"geomusic": json.dumps(notes).encode()})
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(target, lambda tmp: pq.write_table(table, tmp))


def read_frame_cache(target: Path) -> tuple[pd.DataFrame, dict] | None:
    """(frame, notes) written by `write_frame_cache`; None when absent or unreadable (a broken file is removed)."""
    if not target.is_file():
        return None
    try:
        table = pq.read_table(target)
        notes = json.loads(table.schema.metadata[b"geomusic"])
    except (OSError, pa.ArrowInvalid, KeyError, TypeError, ValueError):
        target.unlink(missing_ok=True)
        return None
    return table.to_pandas(), notes


def _read_csv(path: Path, columns: list[str], max_events: int | None) -> pa.Table:
    """Stream the CSV (all columns as strings, empty and NA markers → null), stopping at `max_events`."""
    convert = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns},
                                   strings_can_be_null=True)
    batches, rows = [], 0
    try:
        with pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=16 << 20), convert_options=convert,
                            parse_options=pacsv.ParseOptions(newlines_in_values=True)) as reader:
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if max_events is not None and rows >= max_events:
                    break
            schema = reader.schema
    except pa.ArrowInvalid as err:
        if "UTF8" in str(err) or "utf8" in str(err).lower():
            raise DataError(f"{path}: not valid UTF-8 ({err}). Re-download MIRAGE.csv or convert it to UTF-8.") from None
        raise DataError(f"{path}: cannot parse the CSV ({err}). Check that it is a comma-separated MIRAGE export.") from None
    table = pa.Table.from_batches(batches, schema=schema)
    return table.slice(0, max_events) if max_events is not None else table


def parse_numbers(table: pa.Table, numeric: dict[str, float]) -> pa.Table:
    """Each column of `numeric` as float64 (non-numbers → null) when at least that share of its values parse."""
    for name, min_share in numeric.items():
        if name not in table.column_names:
            continue
        column = table[name]
        ok = pc.fill_null(pc.match_substring_regex(column, NUMBER), False)
        present = column.length() - column.null_count
        if present and pc.sum(ok).as_py() / present < min_share:
            continue
        numbers = pc.cast(pc.if_else(ok, pc.utf8_trim_whitespace(column), pa.scalar(None, pa.string())), pa.float64())
        table = table.set_column(table.column_names.index(name), name, numbers)
    return table


def read_columns(path: Path, columns: list[str], numeric: dict[str, float], max_events: int | None = None,
                 cache_dir: Path | None = None) -> tuple[pa.Table, bool]:
    """`columns` of the CSV at `path` (numbers parsed: `parse_numbers`), from the parquet cache when it
    has them (then True); a fresh read writes the cache when `cache_dir` is given."""
    key = [*columns, json.dumps(numeric, sort_keys=True)]
    target = cache_file(path, key, max_events, cache_dir) if cache_dir is not None else None
    if target is not None and target.is_file():
        try:
            return pq.read_table(target), True
        except (OSError, pa.ArrowInvalid):
            target.unlink(missing_ok=True)  # a broken cache is rebuilt
    table = parse_numbers(_read_csv(path, columns, max_events), numeric)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_with(target, lambda tmp: pq.write_table(table, tmp))
    return table, False
