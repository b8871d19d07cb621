"""Reading tabular files with errors that name the file, the column and the fix."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd


class DataError(ValueError):
    """Bad input data: the message names the file, the column and what to do."""


def check_file(path: str | Path, what: str = "data file") -> Path:
    """Return `path` as a Path if it is a non-empty file, else raise a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: {what} not found. Check the path in your params file (or download it first).")
    if not path.is_file():
        raise DataError(f"{path}: expected a file, found a directory.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty. Re-export or re-download it.")
    return path


def read_table_file(path: str | Path, encoding: str = "utf-8", usecols: Iterable[str] | None = None,
                    sep: str = ",", decimal: str = ".") -> pd.DataFrame:
    """Read a CSV or parquet file into a DataFrame, with clear errors for common problems.

    `sep` and `decimal` apply to CSV only (e.g. `;` and `,` for files saved with a European locale).
    """
    path = check_file(path)
    cols = list(usecols) if usecols is not None else None
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path, columns=cols)
        else:
            frame = pd.read_csv(path, encoding=encoding, usecols=cols, low_memory=False, sep=sep, decimal=decimal)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not valid {encoding} text ({err.reason} at byte {err.start}). "
            f"Set the file's encoding in params (e.g. data.table.encoding: latin-1) or re-save it as UTF-8."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no rows or header. Re-export it.") from None
    except ValueError as err:
        if cols is not None and "Usecols" in str(err):
            raise DataError(f"{path}: {err}. Check the column names in your params file.") from None
        raise
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows. Export it again with its rows.")
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[str], path: str | Path, hint: str = "") -> None:
    """Raise a DataError listing every required column missing from `frame`."""
    missing = [c for c in columns if c and c not in frame.columns]
    if missing:
        shown = ", ".join(list(frame.columns)[:12])
        raise DataError(
            f"{path}: missing required column(s) {missing}. Found: {shown}{' …' if frame.shape[1] > 12 else ''}. "
            + (hint or "Rename the column in the file or point params at the right column name.")
        )
