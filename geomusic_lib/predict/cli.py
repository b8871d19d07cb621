"""`geomusic predict`: run a trained model on new tracks from the shell (the checkpoint alone is enough).

```
geomusic predict --checkpoint runs/default/models/fcnn/checkpoint_best.pt \
    --input new_tracks.csv --top-k 5 --output predictions.csv
```
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from geomusic_lib.models.checkpoint import CheckpointError
from geomusic_lib.predict.inputs import PredictionError
from geomusic_lib.predict.predictor import Predictor

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geomusic predict",
        description="Predict the country of origin of tracks from their features with a trained checkpoint.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint_best.pt of a trained model")
    parser.add_argument("--input", required=True, type=Path,
                        help="features: .csv / .parquet (named columns) or .npy; for a frames model, the feature "
                             "folder written by the audio or spotify source")
    parser.add_argument("--top-k", type=int, default=5, help="how many countries to list per track (default 5)")
    parser.add_argument("--output", type=Path, default=None,
                        help=".csv or .parquet to write; the format follows the suffix (default: CSV to stdout)")
    parser.add_argument("--batch-size", type=int, default=1024, help="tracks per forward pass (default 1024)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of a CSV input (default utf-8)")
    parser.add_argument("--id-column", default=None,
                        help="input column carried into the output to name each row (default: track_id if "
                             "present, else the first column that is not a feature)")
    return parser


#: --output suffixes and what they write
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def check_output(output: Path, inputs: Sequence[Path]) -> None:
    """Refuse, before any work, an output path that would overwrite an input, has an unknown suffix
    (the format follows it) or cannot be written."""
    if any(output.resolve() == Path(p).resolve() for p in inputs):
        raise PredictionError(f"{output}: --output is the same file as an input; choose another output path.")
    if output.is_dir():
        raise PredictionError(f"{output}: --output is a folder; give a file name such as {output / 'predictions.csv'}")
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise PredictionError(f"{output}: --output must end in .csv or .parquet (got {output.suffix or 'no suffix'}); "
                              "the format follows the suffix.")
    folder = output.parent if str(output.parent) else Path(".")
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise PredictionError(f"{output}: cannot write there ({existing} is not a writable folder); choose another --output.")


def write_result(result: pd.DataFrame, output: Path) -> None:
    from geomusic_lib.core.fileio import atomic_write_csv, atomic_write_parquet

    if OUTPUT_FORMATS[output.suffix.lower()] == "parquet":
        atomic_write_parquet(result, output, index=False)
    else:
        atomic_write_csv(result, output)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.batch_size < 1:
            raise PredictionError(f"--batch-size must be at least 1, got {args.batch_size}")
        if args.output is not None:
            check_output(args.output, [args.input, args.checkpoint])
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
        result = predictor.predict(args.input, top_k=args.top_k, batch_size=args.batch_size, encoding=args.encoding,
                                   id_column=args.id_column)
        if args.output is None:
            result.to_csv(sys.stdout, index=False)
            return 0
        write_result(result, args.output)
    except (PredictionError, CheckpointError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0

