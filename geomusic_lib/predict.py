"""Run a trained model on new tracks: the checkpoint alone is enough.

```
python -m geomusic_lib.predict --checkpoint runs/default/models/fcnn/checkpoint_best.pt \
    --input new_tracks.csv --top-k 5 --output predictions.csv
```

The input is a CSV or parquet table whose columns are matched to the checkpoint's feature
names (any order, extra columns ignored, an optional `track_id` column is carried
through), or an `.npy` matrix with exactly the checkpoint's features in training order.
A model trained on frame sequences (`view: frames`) reads the feature folder that the
`audio` or `spotify` (audio-analysis) source wrote, or its `frames/` subfolder.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from geomusic_lib.data.views import ViewBatch, make_view, pad_frames
from geomusic_lib.models.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint



class PredictionError(ValueError):
    """The input cannot be predicted with this checkpoint; the message says why and what to do."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` → CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PredictionError("device 'cuda' was requested but no CUDA GPU is available; use --device auto or cpu")
    return device


def read_features(path: str | Path) -> pd.DataFrame | np.ndarray:
    """Read a CSV, parquet or npy file of features (no other checks: see `Predictor.feature_matrix`)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: input file not found.")
    if path.stat().st_size == 0:
        raise PredictionError(f"{path}: the input file is empty (0 bytes); export the features again.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt", ".tsv"}:
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except pd.errors.EmptyDataError:
        raise PredictionError(f"{path}: the input file has no header and no rows.") from None
    except (ValueError, OSError) as err:
        raise PredictionError(f"{path}: cannot read it as {suffix[1:]} ({err}).") from None
    raise PredictionError(f"{path}: unknown input type {suffix!r}; use .csv, .parquet or .npy")


@dataclass
class Predictor:
    """A trained model with everything needed to turn raw features into countries."""

    model: nn.Module
    model_name: str
    classes: list[str]
    class_lat: np.ndarray
    class_lon: np.ndarray
    class_region: list[str]
    feature_names: list[str]
    view: str
    grid_shape: tuple[int, int] | None
    norm_mean: np.ndarray
    norm_std: np.ndarray
    device: torch.device
    source: str = "<checkpoint>"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto") -> "Predictor":
        """Load `checkpoint_best.pt` (or any trainer checkpoint) with `weights_only=True`."""
        device = resolve_device(device)
        checkpoint = load_checkpoint(path, map_location="cpu")
        return cls.from_dict(checkpoint, device=device, source=str(path))

    @classmethod
    def from_dict(cls, checkpoint: dict, device: str | torch.device = "auto", source: str = "<checkpoint>") -> "Predictor":
        """Build from an already loaded checkpoint dict (keys: see CONTRIBUTING.md)."""
        device = resolve_device(device)
        needed = ["model_name", "model_config", "state_dict", "classes", "class_lat", "class_lon",
                  "feature_names", "view", "norm_mean", "norm_std"]
        missing = [k for k in needed if k not in checkpoint]
        if missing:
            raise CheckpointError(f"{source}: not a geomusic model checkpoint (missing keys {missing}).")
        try:
            model = model_from_checkpoint(checkpoint, "cpu").to(device).eval()
        except (RuntimeError, ValueError) as err:
            raise CheckpointError(
                f"{source}: the weights do not fit model {checkpoint['model_name']!r} "
                f"({str(err).splitlines()[0][:200]}). The checkpoint is damaged or from another library version."
            ) from None
        grid = checkpoint.get("grid_shape")
        return cls(
            model=model,
            model_name=str(checkpoint["model_name"]),
            classes=[str(c) for c in checkpoint["classes"]],
            class_lat=np.asarray(checkpoint["class_lat"], dtype=float),
            class_lon=np.asarray(checkpoint["class_lon"], dtype=float),
            class_region=[str(r) for r in checkpoint.get("class_region") or [""] * len(checkpoint["classes"])],
            feature_names=[str(f) for f in checkpoint["feature_names"]],
            view=str(checkpoint["view"]),
            grid_shape=tuple(int(g) for g in grid) if grid else None,
            norm_mean=torch.as_tensor(checkpoint["norm_mean"]).numpy().astype(np.float32).ravel(),
            norm_std=torch.as_tensor(checkpoint["norm_std"]).numpy().astype(np.float32).ravel(),
            device=device,
            source=source,
        )

    # ------------------------------------------------------------------ input
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def _names_preview(self, names: Sequence[str], n: int = 8) -> str:
        names = list(names)
        return ", ".join(map(str, names[:n])) + (f", … ({len(names)} in all)" if len(names) > n else "")

    def feature_matrix(self, data, what: str = "input") -> tuple[np.ndarray, np.ndarray | None]:
        """Raw features `(N, F)` in the checkpoint's order, and the track ids if the input has them."""
        if isinstance(data, (str, Path)):
            what = str(data)
            data = read_features(data)
        track_ids = None
        if isinstance(data, pd.DataFrame):
            if len(data) == 0:
                raise PredictionError(f"{what}: no rows to predict.")
            columns = [str(c) for c in data.columns]
            data = data.set_axis(columns, axis=1)
            missing = [f for f in self.feature_names if f not in columns]
            if len(missing) == self.n_features:
                raise PredictionError(
                    f"{what}: none of the {self.n_features} features of this checkpoint are among the input's "
                    f"columns ({self._names_preview(columns, 5)}). The checkpoint was trained on another feature set "
                    f"({self._names_preview(self.feature_names, 5)}). Use a checkpoint trained on these features, or "
                    "save the matrix as .npy in the training order."
                )
            if missing:
                raise PredictionError(
                    f"{what}: {len(missing)} feature column(s) missing: {missing}. "
                    "Columns are matched by name; extract the same features as the training run."
                )
            frame = data[self.feature_names]
            non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
            if non_numeric:
                raise PredictionError(f"{what}: feature column(s) {non_numeric[:8]} are not numeric.")
            x = frame.to_numpy(dtype=np.float64)
            if "track_id" in columns:
                track_ids = data["track_id"].astype(str).to_numpy()
        else:
            x = np.asarray(data)
            if x.dtype == object or not np.issubdtype(x.dtype, np.number):
                raise PredictionError(f"{what}: expected a numeric matrix, got dtype {x.dtype}.")
            if x.ndim == 1 and x.shape[0] == self.n_features:
                x = x[None, :]
            if x.ndim != 2:
                raise PredictionError(f"{what}: expected a 2-D matrix (tracks × {self.n_features} features), "
                                      f"got shape {x.shape}.")
            if x.shape[0] == 0:
                raise PredictionError(f"{what}: no rows to predict.")
            if x.shape[1] != self.n_features:
                raise PredictionError(
                    f"{what}: {x.shape[1]} features per track, but model {self.model_name!r} was trained on "
                    f"{self.n_features} ({self._names_preview(self.feature_names, 5)}). A matrix must hold exactly "
                    "those features in that order; a CSV or parquet with named columns is matched by name."
                )
            x = x.astype(np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            rows, cols = np.nonzero(bad)
            bad_cols = sorted({self.feature_names[c] for c in cols})
            raise PredictionError(
                f"{what}: {int(bad.sum())} NaN or infinite value(s) in {len(set(rows))} track(s) (first at row "
                f"{rows[0]}), in feature(s) {bad_cols[:8]}{' …' if len(bad_cols) > 8 else ''}. "
                "Impute or drop those tracks first."
            )
        return x, track_ids

    def frame_sequences(self, data, what: str = "input") -> tuple[list[np.ndarray], np.ndarray | None]:
        """Raw frame sequences (frames × channels, one per track) for a `view: frames` model, and the
        track ids when known. `data`: a feature folder written by the audio or spotify source (or its
        `frames/` subfolder), a mapping track_id → array, or a list of arrays."""
        from geomusic_lib.features.base import FRAMES_DIR, FeatureError, load_frames

        if isinstance(data, (str, Path)):
            what, folder = str(data), Path(data)
            try:
                data = load_frames(folder.parent if folder.name == FRAMES_DIR else folder)
            except FeatureError as err:
                raise PredictionError(f"model {self.model_name!r} reads frame sequences: {err}") from None
        if isinstance(data, pd.DataFrame) or (isinstance(data, np.ndarray) and data.ndim == 2):
            raise PredictionError(f"{what}: model {self.model_name!r} reads frame sequences (view 'frames'), not one "
                                  "feature row per track. Pass the feature folder the audio or spotify source wrote.")
        track_ids = None
        if isinstance(data, Mapping):
            track_ids = np.asarray([str(t) for t in data], dtype=object)
            data = list(data.values())
        sequences = [np.asarray(f) for f in data]
        if not sequences:
            raise PredictionError(f"{what}: no tracks to predict.")
        for i, f in enumerate(sequences):
            name = track_ids[i] if track_ids is not None else f"#{i}"
            if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] != self.n_features:
                raise PredictionError(
                    f"{what}: track {name}: expected frames × {self.n_features} channels, got shape {f.shape}. "
                    "Extract the frames with the same source and settings as the training run.")
            if not np.issubdtype(f.dtype, np.number) or not np.isfinite(f).all():
                raise PredictionError(f"{what}: track {name}: frames with NaN, infinite or non-numeric values.")
        return [f.astype(np.float64) for f in sequences], track_ids

    def track_inputs(self, rows: pd.DataFrame, features_dir: str | Path) -> pd.DataFrame | dict[str, np.ndarray]:
        """What `predict` needs for these rows of a run's track table: their feature columns (with
        `track_id`), or, for a frames model, their frame sequences from the run's feature folder."""
        if self.view != "frames":
            return rows[["track_id", *self.feature_names]]
        from geomusic_lib.features.base import frames_for_tracks

        frames = frames_for_tracks(rows["track_id"], features_dir)
        if frames is None:
            raise PredictionError(f"{features_dir}: no frames for frames model {self.model_name!r}; "
                                  "rerun the feature stage (02) of this run")
        return dict(zip(rows["track_id"].astype(str), frames))

    def _inputs(self, data, what: str = "input") -> tuple[ViewBatch, np.ndarray | None]:
        """Normalised, view-shaped input and the track ids (when the input has them)."""
        if self.view == "frames":
            sequences, track_ids = self.frame_sequences(data, what)
            return pad_frames([((f - self.norm_mean) / self.norm_std).astype(np.float32) for f in sequences]), track_ids
        x, track_ids = self.feature_matrix(data, what)
        return self._view(x), track_ids

    def prepare(self, data) -> ViewBatch:
        """Normalised, view-shaped model input (on the CPU) for raw features (or frame sequences)."""
        return self._inputs(data)[0]

    def _view(self, x: np.ndarray) -> ViewBatch:
        normalised = ((x - self.norm_mean) / self.norm_std).astype(np.float32)
        return make_view(self.view, normalised, grid_shape=self.grid_shape)

    # ------------------------------------------------------------------ inference
    def _batched(self, batch: ViewBatch, batch_size: int, fn) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(batch), batch_size):
                part = batch.index(torch.arange(start, min(start + batch_size, len(batch)))).to(self.device)
                out.append(fn(part).float().cpu())
        return torch.cat(out).numpy().astype(np.float64)

    def predict_proba(self, data, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities `(N, K)` in the order of `self.classes`."""
        self.model.eval()
        batch = data if isinstance(data, ViewBatch) else self.prepare(data)
        return self._batched(batch, batch_size, lambda b: torch.softmax(self.model(b.x, b.mask).float(), dim=1))

    def embed(self, data, batch_size: int = 1024) -> np.ndarray:
        """Penultimate-layer representation `(N, D)` (for t-SNE and similar)."""
        self.model.eval()
        batch = data if isinstance(data, ViewBatch) else self.prepare(data)
        return self._batched(batch, batch_size, lambda b: self.model.embed(b.x, b.mask))

    def distance_aware(self, proba: np.ndarray) -> list[str | None]:
        """The class that minimises the expected great-circle distance, per row."""
        from geomusic_lib.decision import distance_aware_predict

        try:
            idx = distance_aware_predict(proba, self.class_lat, self.class_lon)
        except ValueError as err:
            warnings.warn(f"{self.source}: no distance-aware choice ({err}).", stacklevel=2)
            return [None] * len(proba)
        return [self.classes[i] for i in idx]

    def predict(self, data, top_k: int = 5, batch_size: int = 1024) -> pd.DataFrame:
        """Top-K countries with probabilities, the region of the top one, and the distance-aware choice."""
        if top_k < 1:
            raise PredictionError(f"top_k must be at least 1, got {top_k}")
        batch, track_ids = self._inputs(data)
        proba = self.predict_proba(batch, batch_size)
        k = min(top_k, len(self.classes))
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        classes = np.asarray(self.classes, dtype=object)
        frame = pd.DataFrame(index=range(len(proba)))
        if track_ids is not None:
            frame["track_id"] = track_ids
        for j in range(k):
            frame[f"top{j + 1}"] = classes[top[:, j]]
        for j in range(k):
            frame[f"p{j + 1}"] = proba[np.arange(len(proba)), top[:, j]]
        frame["region"] = np.asarray(self.class_region, dtype=object)[top[:, 0]]
        frame["distance_aware"] = self.distance_aware(proba)
        return frame


# --------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m geomusic_lib.predict",
        description="Predict the country of origin of tracks from their features with a trained checkpoint.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint_best.pt of a trained model")
    parser.add_argument("--input", required=True, type=Path,
                        help="features: .csv / .parquet (named columns) or .npy; for a frames model, the feature "
                             "folder written by the audio or spotify source")
    parser.add_argument("--top-k", type=int, default=5, help="how many countries to list per track (default 5)")
    parser.add_argument("--output", type=Path, default=None, help=".csv or .parquet to write (default: CSV to stdout)")
    parser.add_argument("--batch-size", type=int, default=1024, help="tracks per forward pass (default 1024)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        predictor = Predictor.from_checkpoint(args.checkpoint, device=args.device)
        result = predictor.predict(args.input, top_k=args.top_k, batch_size=args.batch_size)
    except (PredictionError, CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.output is None:
        result.to_csv(sys.stdout, index=False)
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() in {".parquet", ".pq"}:
        result.to_parquet(args.output, index=False)
    else:
        result.to_csv(args.output, index=False)
    print(f"wrote {len(result)} predictions to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
