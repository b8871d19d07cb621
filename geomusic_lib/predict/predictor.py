"""Run a trained model on new tracks: the checkpoint alone is enough.

```
geomusic predict --checkpoint runs/default/models/fcnn/checkpoint_best.pt \
    --input new_tracks.csv --top-k 5 --output predictions.csv
```

The input is a CSV or parquet table whose columns are matched to the checkpoint's feature
names (any order, extra columns ignored, an optional `track_id` column is carried
through), or an `.npy` matrix with exactly the checkpoint's features in training order.
A model trained on frame sequences (`view: frames`) reads the feature folder that the
`audio` or `spotify` (audio-analysis) source wrote, or its `frames/` subfolder.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from geomusic_lib.data.views import Normalizer, ViewBatch, make_view, pad_frames
from geomusic_lib.predict.inference import resolve_device
from geomusic_lib.models.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from geomusic_lib.predict.inputs import PredictionError, feature_matrix, frame_sequences, run_frames

__all__ = ["Predictor", "PredictionError"]


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
    norm: Normalizer
    device: torch.device
    source: str = "<checkpoint>"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto") -> "Predictor":
        """Load `checkpoint_best.pt` (or any trainer checkpoint) with `weights_only=True`."""
        device = _device(device)
        checkpoint = load_checkpoint(path, map_location="cpu")
        return cls.from_dict(checkpoint, device=device, source=str(path))

    @classmethod
    def from_dict(cls, checkpoint: dict, device: str | torch.device = "auto", source: str = "<checkpoint>") -> "Predictor":
        """Build from an already loaded checkpoint dict (keys: see CONTRIBUTING.md)."""
        device = _device(device)
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
            norm=Normalizer.from_state(checkpoint),
            device=device,
            source=source,
        )

    # ------------------------------------------------------------------ input
    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def feature_matrix(self, data: Any, what: str = "input", encoding: str = "utf-8",
                       id_column: str | None = None) -> tuple[np.ndarray, pd.Series | None]:
        """Raw features `(N, F)` in the checkpoint's order, and the rows' ids (a Series named after their
        column: `id_column`, else `track_id`, else the first column that is not a feature)."""
        return feature_matrix(data, self.feature_names, self.model_name, what, encoding, id_column)

    def track_inputs(self, rows: pd.DataFrame, features_dir: str | Path) -> pd.DataFrame | dict[str, np.ndarray]:
        """What `predict` needs for these rows of a run's track table: their feature columns (with
        `track_id`), or, for a frames model, their frame sequences from the run's feature folder."""
        if self.view != "frames":
            return rows[["track_id", *self.feature_names]]
        return run_frames(rows, features_dir, self.model_name)

    def _inputs(self, data: Any, what: str = "input", encoding: str = "utf-8",
                id_column: str | None = None) -> tuple[ViewBatch, pd.Series | None]:
        """Normalised, view-shaped input and the rows' ids (when the input has them)."""
        if self.view == "frames":
            sequences, track_ids = frame_sequences(data, self.n_features, self.model_name, what)
            ids = None if track_ids is None else pd.Series(track_ids, name="track_id")
            return pad_frames([self.norm.transform(f) for f in sequences]), ids
        x, ids = self.feature_matrix(data, what, encoding, id_column)
        return make_view(self.view, self.norm.transform(x), grid_shape=self.grid_shape), ids

    def prepare(self, data) -> ViewBatch:
        """Normalised, view-shaped model input (on the CPU) for raw features (or frame sequences)."""
        return self._inputs(data)[0]

    # ------------------------------------------------------------------ inference
    def _batched(self, batch: ViewBatch, batch_size: int, fn) -> np.ndarray:
        if batch_size < 1:
            raise PredictionError(f"batch size must be at least 1, got {batch_size}")
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
        from geomusic_lib.predict.decision import distance_aware_predict

        try:
            idx = distance_aware_predict(proba, self.class_lat, self.class_lon)
        except ValueError as err:
            warnings.warn(f"{self.source}: no distance-aware choice ({err}).", stacklevel=2)
            return [None] * len(proba)
        return [self.classes[i] for i in idx]

    def predict(self, data: Any, top_k: int = 5, batch_size: int = 1024, encoding: str = "utf-8",
                id_column: str | None = None) -> pd.DataFrame:
        """Top-K countries with probabilities, the region of the top one, and the distance-aware choice;
        the first column carries the rows' ids (`id_column`, else `track_id`, else the first column of a
        table that is not a feature)."""
        if top_k < 1:
            raise PredictionError(f"top_k must be at least 1, got {top_k}")
        batch, ids = self._inputs(data, encoding=encoding, id_column=id_column)
        proba = self.predict_proba(batch, batch_size)
        k = min(top_k, len(self.classes))
        top = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        classes = np.asarray(self.classes, dtype=object)
        frame = pd.DataFrame(index=range(len(proba)))
        if ids is not None:
            frame[str(ids.name)] = ids.to_numpy()
        for j in range(k):
            frame[f"top{j + 1}"] = classes[top[:, j]]
        for j in range(k):
            frame[f"p{j + 1}"] = proba[np.arange(len(proba)), top[:, j]]
        frame["region"] = np.asarray(self.class_region, dtype=object)[top[:, 0]]
        frame["distance_aware"] = self.distance_aware(proba)
        return frame


def _device(device: str | torch.device) -> torch.device:
    try:
        return resolve_device(device)
    except RuntimeError as err:
        raise PredictionError(str(err).replace("device: auto or cpu", "--device auto or cpu")) from None
