"""What a network is built from before it trains: its data view, its config (sizes and TabM's bin
edges from the training rows), the classes' coordinates, the normalised input and the fingerprint
that decides whether a checkpoint can be resumed or reused."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from geomusic_lib.core.params import Params
from geomusic_lib.data import DataError, Normalizer, Split, TrackTable, ViewBatch, make_view
from geomusic_lib.data.note_tokens import NOTE_TOKENS
from geomusic_lib.data.store import build_class_table
from geomusic_lib.data.views import check_finite, pad_frames
from geomusic_lib.models import MODELS
from geomusic_lib.models.checkpoint import fingerprint
from geomusic_lib.models.fcnn import fcnn_statistics
from geomusic_lib.models.tabm import piecewise_bins

__all__ = ["model_view", "model_config", "class_coordinates", "prepare_inputs", "run_fingerprint", "token_vocab"]


def model_view(name: str, params: Params, grid_shape: Sequence[int] | None = None) -> str:
    """The data view (see `geomusic_lib.data.make_view`) that model `name` reads. `view: auto`
    means the grid where the source has a grid shape (`grid_shape`, UCI), else tokens."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if name in ("fcnn", "tabm"):
        return "vector"
    view = getattr(params.model, name).view
    if view == "auto":
        view = "grid" if grid_shape else "tokens"
    if name == "cnn":
        return view
    return "grid_sequence" if view == "grid" else view


def model_config(name: str, params: Params, x_train: torch.Tensor, n_classes: int) -> dict[str, Any]:
    """The model's config: its params section plus what the data decide (sizes; TabM's bin edges and
    the FCNN's robust scaling and bins, from the training rows only)."""
    x, hp = x_train, getattr(params.model, name).model_dump(exclude={"view"})
    if name == "fcnn":
        return {"in_features": int(np.prod(x.shape[1:])), "n_classes": n_classes, **hp, **fcnn_statistics(x, hp)}
    if name == "tabm":
        bins = piecewise_bins(x, hp["n_bins"]) if hp["embedding"] == "piecewise" else []
        return {"in_features": int(np.prod(x.shape[1:])), "n_classes": n_classes, **hp, "bins": bins}
    tokens = token_vocab(params, name)
    if hp.get("inputs", "floats") != "floats" and not tokens:
        raise ValueError(f"model.{name}.inputs: {hp['inputs']} needs note frames with viewpoint tokens "
                         f"(features.source: notes, model.{name}.view: frames); set model.{name}.inputs: floats")
    if name == "cnn":
        dims = 2 if x.dim() == 4 else 1
        return {"in_channels": int(x.shape[1] if dims == 2 else x.shape[2]), "n_classes": n_classes, "dims": dims, **hp,
                "token_vocab": tokens if dims == 1 else []}
    return {"in_channels": int(x.shape[2]), "n_classes": n_classes, **hp, "token_vocab": tokens}


def token_vocab(params: Params, name: str) -> list[int]:
    """Vocabulary sizes of the last, categorical channels network `name` reads: the notes source's
    viewpoint tokens when it reads note frames, else none."""
    on_frames = name in ("cnn", "rnn", "attention") and model_view(name, params) == "frames"
    return list(NOTE_TOKENS.values()) if params.features.source == "notes" and on_frames else []


def class_coordinates(table: TrackTable, classes: Sequence[str],
                      class_info: pd.DataFrame | None = None) -> tuple[list[float], list[float], list[str]]:
    """Latitude, longitude and region of each class (label-encoder order), from the run's
    `classes.csv` when given, else computed from the table."""
    info = (class_info if class_info is not None else build_class_table(table.frame)).set_index("class")
    info = info.loc[list(classes)]
    return (info["lat"].astype(float).tolist(), info["lon"].astype(float).tolist(),
            info["region"].fillna("").astype(str).tolist())


def prepare_inputs(table: TrackTable, split: Split, view: str, frames: Sequence[np.ndarray] | None,
                   n_tokens: int = 0) -> tuple[ViewBatch, Normalizer, list[str]]:
    """Normalise with statistics of the training rows only (the last `n_tokens` frame channels, token
    codes, stay as they are), then shape the chosen view."""
    ids = table.frame["track_id"].to_numpy()
    if view == "frames":
        if frames is None:
            raise ValueError("view 'frames' needs frame sequences: pass frames=… (one (T, C) array per table row)")
        if len(frames) != len(table.frame):
            raise ValueError(f"got {len(frames)} frame sequences for {len(table.frame)} tracks; pass one per table row")
        for i, f in enumerate(frames):
            check_finite(f[None], "frames", row_ids=[ids[i]])
        if n_tokens:
            check_token_channels([frames[i] for i in split.train], n_tokens)
        norm = Normalizer.fit([frames[i] for i in split.train], unscaled_last=n_tokens)
        batch = pad_frames([norm.transform(f) for f in frames])
        return batch, norm, [f"frame_c{c:02d}" for c in range(batch.x.shape[2])]
    x = table.features
    check_finite(x, "features", names=table.feature_names, row_ids=ids)
    norm = Normalizer.fit(x[split.train])
    return make_view(view, norm.transform(x), grid_shape=table.grid_shape), norm, list(table.feature_names)


def check_token_channels(frames: Sequence[np.ndarray], n_tokens: int) -> None:
    """The last `n_tokens` channels must hold viewpoint codes (whole numbers within their vocabularies);
    frames extracted before the notes source wrote them do not."""
    last = np.concatenate([f[:, -n_tokens:] for f in frames], axis=0)
    sizes = np.array(list(NOTE_TOKENS.values())[-n_tokens:])
    if last.shape[1] != n_tokens or not (np.all(last == np.round(last)) and np.all((last >= 0) & (last < sizes))):
        raise DataError(f"the note frames' last {n_tokens} channels are not viewpoint tokens: they were extracted "
                        "before geomusic wrote them; run 02_feature_extraction again (geomusic run --only 02,03,04,05,06)")


def run_fingerprint(name: str, params: Params, split: Split, feature_names: Sequence[str]) -> str:
    """The checkpoint fingerprint of network `name` trained with `params` on `split`."""
    train = params.train.model_dump(mode="json", exclude={"threads": True, "bagging": {"jobs"}})  # speed, not the model
    rows = {p: getattr(split, p) for p in ("train", "val", "test")}
    return fingerprint(name, getattr(params.model, name).model_dump(mode="json"), train, params.seed, split.fold, rows,
                       feature_names)
